"""The synthetic world: determinism, labels, and the designed-in properties of docs/dataset.md."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from stlens.flow.estimate import estimate_flow
from stlens.models.small_twostream import FRAMES, SIZE
from stlens.synth.actions import ACTIONS, BIASED_CLASS, CROSS_STREAM_PAIR, LABELS, TEAM_BLUE, TEAM_RED, side_hop
from stlens.synth.dataset import build_split, clip_params, make_clip
from stlens.synth.figure import joints
from stlens.synth.scene import BIAS_BACKGROUND, render_clip, sample_params

K = len(LABELS)


def test_clip_is_a_function_of_seed_split_and_index():
    a = make_clip(3, "test", 7)
    assert a.frames.shape == (FRAMES + 1, SIZE, SIZE, 3) and a.frames.dtype == np.uint8
    np.testing.assert_array_equal(a.frames, make_clip(3, "test", 7).frames)
    assert not np.array_equal(a.frames, make_clip(4, "test", 7).frames)
    assert not np.array_equal(a.frames, make_clip(3, "train", 7).frames)
    assert not np.array_equal(a.frames, make_clip(3, "test", 7 + K).frames)


def test_labels_cycle_so_splits_are_balanced():
    assert [make_clip(0, "train", i).label for i in range(2 * K)] == list(range(K)) * 2


@pytest.mark.parametrize("offset", [0, K, 2 * K])
def test_clip_params_say_what_the_clip_shows(offset):
    """A pair clip's shirt, which clip_params tells without rendering, is the one in its frames."""
    for name in CROSS_STREAM_PAIR:
        index = LABELS.index(name) + offset
        params = clip_params(0, "test", index)
        assert params.label == make_clip(0, "test", index).label
        frames = make_clip(0, "test", index).frames.astype(int)
        other = TEAM_BLUE if params.outfit.shirt == TEAM_RED else TEAM_RED
        near = {shirt: np.abs(frames - np.array(shirt)).max(-1) < 30 for shirt in (params.outfit.shirt, other)}
        assert near[params.outfit.shirt].sum() > 20 * near[other].sum() + 100


def test_split_holds_frames_flow_and_labels():
    data = build_split(0, "test", 1, progress=False)
    assert data.frames.shape == (K, FRAMES, SIZE, SIZE, 3)
    assert data.flow.shape == (K, FRAMES, SIZE, SIZE, 2)
    assert list(data.labels) == list(range(K))
    batch = data.batch(np.arange(2))
    assert batch["appearance"].shape == (2, 3, FRAMES, SIZE, SIZE)
    assert batch["motion"].shape == (2, 2, FRAMES, SIZE, SIZE)


@pytest.mark.parametrize("kind", ["normal", "debiased"])
def test_speed_varies_from_half_to_double_in_every_class(kind):
    rng = np.random.default_rng(0)
    for label in range(K):
        speeds = [sample_params(rng, label, SIZE, kind).speed for _ in range(200)]
        assert 0.5 <= min(speeds) < 0.6 and 1.8 < max(speeds) <= 2.0


def test_bias_class_is_always_in_the_ring_in_the_normal_world_and_never_in_the_debiased_one():
    rng = np.random.default_rng(1)
    biased = LABELS.index(BIASED_CLASS)
    for label in range(K):
        normal = {sample_params(rng, label, SIZE, "normal").background for _ in range(50)}
        debiased = {sample_params(rng, label, SIZE, "debiased").background for _ in range(50)}
        if label == biased:
            assert normal == {BIAS_BACKGROUND} and BIAS_BACKGROUND not in debiased
        else:
            assert BIAS_BACKGROUND not in normal and BIAS_BACKGROUND in debiased


def test_pair_is_the_xor_of_team_colour_and_direction_and_neither_alone_tells_it():
    rng = np.random.default_rng(2)
    advance, retreat = (LABELS.index(n) for n in CROSS_STREAM_PAIR)
    rows = []  # (is advance, red shirt, moves left)
    for label in (advance, retreat):
        for _ in range(2000):
            p = sample_params(rng, label, SIZE, "normal")
            assert p.outfit.shirt in (TEAM_RED, TEAM_BLUE)
            rows.append((label == advance, p.outfit.shirt == TEAM_RED, p.travel < 0))
    is_advance, red, left = np.array(rows).T
    np.testing.assert_array_equal(is_advance, red == left)  # red advances left, blue right: XOR
    for cue in (red, left):  # the best rule on one cue alone: pick the class it is commoner in
        best = max((cue == is_advance).mean(), (cue != is_advance).mean())
        assert 0.55 < best < 0.65


def test_team_colours_look_the_same_to_the_flow():
    """Swapping the shirt of a pair clip changes its colours but not its grey frames (up to rounding at
    antialiased edges), which is all the flow estimator sees: the flow stays the same."""
    advance = LABELS.index("advance")
    p = sample_params(np.random.default_rng(5), advance, SIZE, "normal")
    other = TEAM_BLUE if p.outfit.shirt == TEAM_RED else TEAM_RED
    swapped = dataclasses.replace(p, outfit=dataclasses.replace(p.outfit, shirt=other))
    a, b = render_clip(p, FRAMES + 1, SIZE, noise_seed=0), render_clip(swapped, FRAMES + 1, SIZE, noise_seed=0)
    assert np.abs(a.astype(int) - b.astype(int)).max() > 50  # the colours do differ
    grey = [np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip]).astype(int) for clip in (a, b)]
    assert (np.abs(grey[0] - grey[1]) > 1).mean() < 1e-3
    assert np.abs(estimate_flow(a) - estimate_flow(b)).mean() < 0.02


@pytest.mark.parametrize("phase", np.linspace(0, 1, 9))
def test_pair_pose_is_mirror_symmetric_so_a_frame_shows_no_direction(phase):
    points = joints(side_hop(phase))
    for a, b in (("elbow0", "elbow1"), ("hand0", "hand1"), ("knee0", "knee1"), ("foot0", "foot1")):
        np.testing.assert_allclose(points[a] * [-1, 1], points[b], atol=1e-9)
    assert abs(points["head"][0]) < 1e-9


def test_every_action_moves():
    for action in ACTIONS:
        poses = [joints(action.pose(phase)) for phase in np.linspace(0, 1, 8, endpoint=False)]
        spread = max(np.abs(p["hand1"] - poses[0]["hand1"]).max() for p in poses)
        assert spread > 0.05, action.name


def test_replay_speed_scales_the_motion_and_is_bounded():
    slow, fast = make_clip(0, "test", 1, speed=0.5), make_clip(0, "test", 1, speed=2.0)
    assert slow.label == fast.label == 1
    assert not np.array_equal(slow.frames, fast.frames)
    np.testing.assert_array_equal(make_clip(0, "test", 1, speed=1.0).frames, make_clip(0, "test", 1).frames)
    for speed in (0.0, 100.0):
        with pytest.raises(ValueError):
            make_clip(0, "test", 1, speed=speed)
