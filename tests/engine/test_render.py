"""The loop's guarantees: determinism, cancellation, truncation, progress, batching, validation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from stlens.engine import (
    Cancelled,
    Progress,
    VisualizationSettings,
    objectives,
    visualize,
)
from stlens.engine.graphs import StepOutput, run_steps
from stlens.engine.transforms import Draw
from stlens.models.builtin import builtin_entries
from stlens.models.introspect import probe
from stlens.models.registry import prepare
from torch import nn

from .tiny_nets import DEVICE, FRAMES, SIZE, TwoTowers, direction, load, pointwise


def two_layer_towers(partial_inputs: bool = True) -> TwoTowers:
    appearance = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 4, 3, padding=1))
    motion = nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 4, 3, padding=1))
    torch.manual_seed(0)
    return TwoTowers(appearance, motion, features=8, partial_inputs=partial_inputs)


def flicker_unit() -> nn.Module:
    """Responds to x-flow that changes from one frame to the next: a temporal derivative."""
    conv = nn.Conv3d(2, 1, (2, 1, 1), bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[-1.0, 1.0], [0.0, 0.0]]).view(1, 2, 2, 1, 1))
    return nn.Sequential(conv, nn.ReLU())


def mean_temporal_derivative(clips: np.ndarray) -> np.ndarray:
    """Per batch item of (B, T, H, W, C) clips: mean |x[t+1] - x[t]|."""
    return np.abs(np.diff(clips, axis=1)).mean(axis=(1, 2, 3, 4))


def test_result_shapes_and_progress():
    model = load(two_layer_towers())
    seen: list[Progress] = []
    result = visualize(model, "logits", 1, VisualizationSettings(steps=5), progress=seen.append, progress_every=2)
    assert [p.step for p in seen] == [2, 4, 5]
    assert all(p.steps == 5 and np.isfinite(p.objective) for p in seen)
    assert seen[-1].inputs["appearance"].shape == (FRAMES, SIZE, SIZE, 3)
    assert seen[-1].inputs["motion"].shape == (FRAMES, SIZE, SIZE, 2)
    assert result.inputs["appearance"].shape == (1, FRAMES, SIZE, SIZE, 3)
    assert result.inputs["motion"].dtype == np.float32
    appearance = result.inputs["appearance"]
    assert appearance.min() >= 0 and appearance.max() <= 1
    assert result.steps == 5 and len(result.objective) == 1


def test_deterministic_for_a_seed():
    model = load(two_layer_towers())
    runs = [visualize(model, "appearance.2", 2, VisualizationSettings(steps=6, seed=seed)) for seed in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0].inputs["appearance"], runs[1].inputs["appearance"])
    assert runs[0].objective == runs[1].objective
    assert not np.allclose(runs[0].inputs["appearance"], runs[2].inputs["appearance"])


def test_cancel_stops_between_steps():
    model = load(two_layer_towers())
    cancel = threading.Event()
    steps: list[int] = []

    def on_progress(p: Progress) -> None:
        steps.append(p.step)
        if p.step == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        visualize(model, "motion.2", 0, VisualizationSettings(steps=50), progress=on_progress, cancel=cancel)
    assert steps == [1, 2, 3]
    assert not model.lock.locked()


def test_forward_stops_at_the_target_layer():
    module = two_layer_towers()
    model = load(module)
    calls = {"appearance.2": 0, "motion.0": 0, "head": 0}
    handles = [
        dict(module.named_modules())[name].register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
        for name in calls
    ]
    try:
        visualize(model, "appearance.0", 0, VisualizationSettings(steps=3))
    finally:
        for h in handles:
            h.remove()
    assert calls == {"appearance.2": 0, "motion.0": 0, "head": 0}


def test_model_without_partial_inputs_gets_a_neutral_other_stream():
    module = two_layer_towers(partial_inputs=False)
    model = load(module)
    seen: list[torch.Tensor] = []
    handle = module.appearance.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        result = visualize(model, "motion.0", 1, VisualizationSettings(steps=3))
    finally:
        handle.remove()
    assert set(result.inputs) == {"motion"}
    assert len(seen) == 4  # three steps and the final evaluation
    assert all(not x.requires_grad and torch.count_nonzero(x) == 0 for x in seen)


def test_stronger_temporal_weight_gives_slower_clips():
    model = load(TwoTowers(pointwise([[1.0, 0.0, 0.0]]), flicker_unit(), features=2))
    weights = [0.0, 0.3, 3.0, 30.0]
    batch = [VisualizationSettings(steps=48, weights={"tv_time": {"motion": w}}) for w in weights]
    result = visualize(model, "motion.0", 0, batch)
    derivative = mean_temporal_derivative(result.inputs["motion"])
    assert np.all(np.diff(derivative) < 0), derivative


def test_stronger_temporal_weight_gives_slower_clips_on_the_builtin_model():
    model = prepare(builtin_entries()[0], DEVICE)
    weights = [0.0, 3.0, 30.0]
    batch = [VisualizationSettings(steps=24, weights={"tv_time": {"appearance": w}}) for w in weights]
    result = visualize(model, "appearance.conv2", 5, batch)
    derivative = mean_temporal_derivative(result.inputs["appearance"])
    assert np.all(np.diff(derivative) < 0), derivative


def test_batch_of_units_matches_one_at_a_time():
    model = load(TwoTowers(pointwise([[1.0, -0.5, -0.5], [-0.5, 1.0, -0.5]]), pointwise([direction(0)]), features=3))
    settings = VisualizationSettings(steps=8)
    batched = visualize(model, "appearance", [0, 1], settings)
    for index, unit in enumerate([0, 1]):
        alone = visualize(model, "appearance", unit, settings)
        np.testing.assert_allclose(batched.inputs["appearance"][index], alone.inputs["appearance"][0], atol=1e-4)
        assert batched.objective[index] == pytest.approx(alone.objective[0], abs=1e-4)


def test_diversity_pushes_seeds_apart():
    model = load(two_layer_towers())
    spec = model.spec.inputs["appearance"]

    def similarity(diversity: float) -> float:
        """Mean cosine similarity of the two results' Gram matrices at the layer (1: alike)."""
        batch = [VisualizationSettings(steps=24, seed=seed, diversity=diversity) for seed in (0, 1)]
        clips = torch.from_numpy(visualize(model, "appearance.2", 0, batch).inputs["appearance"]).movedim(-1, 1)
        clips = clips.to(model.device)
        with torch.no_grad(), probe(model.module, "appearance.2") as run:
            return -float(objectives.diversity()(run({"appearance": spec.to_model(clips)})).mean())

    assert similarity(1.0) < 0.5 < similarity(0.0)


@pytest.mark.parametrize(
    ("layer", "units", "settings", "error"),
    [
        ("appearance.0", 4, VisualizationSettings(steps=2), ValueError),
        ("appearance.0", -1, VisualizationSettings(steps=2), ValueError),
        ("nope", 0, VisualizationSettings(steps=2), KeyError),
        ("appearance.0", [0, 1, 2], [VisualizationSettings(steps=2)] * 2, ValueError),
        ("appearance.0", 0, [VisualizationSettings(steps=2), VisualizationSettings(steps=3)], ValueError),
        ("appearance.0", list(range(4)) * 17, VisualizationSettings(steps=2), ValueError),
    ],
)
def test_invalid_requests_are_rejected(layer, units, settings, error):
    model = load(two_layer_towers())
    with pytest.raises(error):
        visualize(model, layer, units, settings)


@pytest.mark.parametrize("option", ["amp", "graphs"])
def test_gpu_options_are_refused_off_the_gpu(option: str):
    model = prepare(builtin_entries()[0], torch.device("cpu"))
    with pytest.raises(ValueError, match="CUDA"):
        visualize(model, "appearance.conv1", 0, VisualizationSettings(steps=1), **{option: True})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run with STLENS_TEST_DEVICE=cuda there)")
@pytest.mark.parametrize("amp", [True, False])
def test_the_builtin_model_runs_on_the_gpu(amp: bool):
    """The GPU path end to end, with bf16 autocast and in float32: both streams optimised, the
    unit's activation rises, the result stays finite and in display range."""
    model = prepare(builtin_entries()[0], torch.device("cuda"))
    start = visualize(model, "fusion.conv", 3, VisualizationSettings(steps=1), amp=amp)
    result = visualize(model, "fusion.conv", 3, VisualizationSettings(steps=48), amp=amp)
    assert set(result.inputs) == {"appearance", "motion"}
    assert result.objective[0] > start.objective[0] + 0.5
    rgb = result.inputs["appearance"]
    assert np.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    assert np.isfinite(result.inputs["motion"]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run with STLENS_TEST_DEVICE=cuda there)")
def test_a_replayed_step_sees_each_draw_and_updates_state_in_place():
    """The mechanism, exactly: every replay reads that step's draw and adds to the same state."""
    cuda = torch.device("cuda")
    state = torch.zeros(2, device=cuda)
    dummy = torch.zeros(1, device=cuda, requires_grad=True)
    optimizer = torch.optim.SGD([dummy], lr=0.0)

    def step(draw: Draw) -> StepOutput:
        state.add_(draw.zoom)
        return draw.shift_xy.sum(1) + draw.shift_t, {"motion": state.clone()}

    draws = [
        Draw(torch.full((2, 2), float(i), device=cuda), torch.full((2,), 0.5 * i, device=cuda), torch.full((2,), i, device=cuda))
        for i in range(8)
    ]
    seen = [(value.tolist(), clips["motion"].tolist()) for value, clips in run_steps(step, draws, optimizer, graph=True)]
    assert seen == [([3.0 * i] * 2, [0.25 * i * (i + 1)] * 2) for i in range(8)]  # 3 eager steps, then 5 replays


class _HostReadingUnit(nn.Module):
    """A unit whose forward reads a GPU value on the host, which a CUDA graph cannot record."""

    def __init__(self):
        super().__init__()
        self.conv = pointwise([direction(0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 2.0 if x.abs().max().item() > 1e9 else 1.0
        return self.conv(x) * scale


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run with STLENS_TEST_DEVICE=cuda there)")
def test_a_model_that_cannot_be_recorded_steps_eagerly(caplog: pytest.LogCaptureFixture):
    model = load(TwoTowers(pointwise([[1.0, 0.0, 0.0]]), _HostReadingUnit(), features=2), device=torch.device("cuda"))
    settings = VisualizationSettings(steps=12)
    graphed = visualize(model, "motion.conv", 0, settings, graphs=True)
    eager = visualize(model, "motion.conv", 0, settings, graphs=False)
    assert "stepping without a CUDA graph" in caplog.text
    np.testing.assert_allclose(graphed.objective, eager.objective, rtol=5e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run with STLENS_TEST_DEVICE=cuda there)")
@pytest.mark.parametrize("units", [[3], [3, 7, 11]])
def test_cuda_graph_replay_optimises_like_eager_steps(units: list[int]):
    """The engine with replayed steps against the same engine run step by step. GPU kernels
    chosen by cuDNN's benchmark are not bitwise reproducible, so two eager runs already differ
    (and Adam amplifies it); the objectives after 24 steps agree to well under 1%."""
    model = prepare(builtin_entries()[0], torch.device("cuda"))
    settings = VisualizationSettings(steps=24)
    reported: list[int] = []

    def on_progress(p: Progress) -> None:
        assert np.isfinite(p.objective)
        reported.append(p.step)

    start = visualize(model, "fusion.conv", units, VisualizationSettings(steps=1), amp=False, graphs=False)
    graphed = visualize(model, "fusion.conv", units, settings, amp=False, graphs=True, progress=on_progress)
    eager = visualize(model, "fusion.conv", units, settings, amp=False, graphs=False)
    assert reported == list(range(1, 25))
    assert np.all(np.array(graphed.objective) > np.array(start.objective) + 0.5)
    np.testing.assert_allclose(graphed.objective, eager.objective, rtol=5e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run with STLENS_TEST_DEVICE=cuda there)")
def test_two_models_record_and_replay_their_steps_from_two_threads_at_once():
    """As the server's job threads do: visualisations of two models on one GPU at the same time,
    each recording its CUDA graph while the other steps, copies and synchronises."""
    models = [prepare(entry, torch.device("cuda")) for entry in builtin_entries()[:2]]
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(visualize, model, "logits", 1, VisualizationSettings(steps=64)) for model in models]
        results = [run.result(timeout=300) for run in runs]
    for model, result in zip(models, results):
        alone = visualize(model, "logits", 1, VisualizationSettings(steps=64))
        np.testing.assert_allclose(result.objective, alone.objective, rtol=0.05)

