"""Issue 15: the Explain page says when a clip does not look like the model's training data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stlens.analysis.clip import clip_inputs, to_tensor
from stlens.analysis.familiarity import Familiarity, familiarity
from stlens.analysis.samples import sample_frames, sample_names
from stlens.analysis.video import decode_video
from stlens.models.registry import LoadedModel

from .conftest import SAMPLES, moving_square


def judged(model: LoadedModel, frames: np.ndarray) -> Familiarity:
    clip = clip_inputs(frames, model.spec.inputs)
    with model.lock:
        return familiarity(model, {s: to_tensor(x) for s, x in clip.streams.items()})


def test_the_synthetic_samples_look_like_the_training_world(conv_fusion: LoadedModel) -> None:
    verdicts = [judged(conv_fusion, sample_frames(name)) for name in sample_names()]
    assert all(v.measured and v.references == 100 for v in verdicts)
    assert sum(v.familiar for v in verdicts) >= len(verdicts) - 2  # calibrated to flag 1 in 20 test clips


def test_clips_from_outside_the_synthetic_world_are_flagged(conv_fusion: LoadedModel) -> None:
    rng = np.random.default_rng(0)
    for frames in (moving_square(17), (rng.random((17, 64, 64, 3)) * 255).astype(np.uint8)):
        verdict = judged(conv_fusion, frames)
        assert verdict.measured and verdict.familiar is False
        assert "does not look like what the model was trained on" in verdict.detail


def test_real_footage_is_flagged(conv_fusion: LoadedModel) -> None:
    path = SAMPLES / "ucf101_CricketShot_g04_c01_rgb.gif"
    if not path.exists():
        pytest.skip(f"{path} is missing (the shared sample data)")
    assert judged(conv_fusion, decode_video(path.read_bytes()).frames).familiar is False


def test_a_model_without_reference_clips_is_not_measured(conv_fusion: LoadedModel) -> None:
    other = LoadedModel(
        spec=conv_fusion.spec.model_copy(update={"labels": tuple(f"class {i}" for i in range(10))}),
        module=conv_fusion.module, layers=conv_fusion.layers, weights_hash="other", device=torch.device("cpu"),
    )
    verdict = judged(other, sample_frames("synth-walk"))
    assert not verdict.measured and verdict.familiar is None and "no clips" in verdict.detail
