"""The spectrum parameterisation, transparency maps, several views a step, and starting from a real clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stlens.engine import VisualizationSettings, visualize
from stlens.engine.render import Optimisation
from stlens.engine.param import FLOW_BOUND, MEAN_RANGE, SpectrumBasis, clip_param, penalty_filter
from stlens.models.spectra import power_law_spectra
from torch import nn

from .tiny_nets import (
    DEVICE, FLOW_SCALE, FRAMES, SIZE, TwoTowers, direction, load, pointwise, tiny_inputs, tiny_world_spectra,
)


def generators(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def weights(batch: int, tv_space: float = 0.0, tv_time: float = 0.0) -> torch.Tensor:
    return torch.tensor([[0.0, tv_space, tv_time]] * batch)


def test_no_amplitude_rises_above_the_natural_one_times_the_freedom():
    spec = tiny_inputs()["motion"]
    spectra = power_law_spectra(tiny_inputs())
    for freedom in (1.0, 2.0):
        param = clip_param("spectrum", "motion", spec, generators(0), torch.device("cpu"), spectra, weights(1), freedom=freedom)
        with torch.no_grad():
            param.basis.gain.fill_(50.0)  # as far up as it goes
        signal = param.basis().detach()
        amplitude = torch.fft.rfftn(signal, dim=(-3, -2, -1), norm="ortho").abs()[0]
        natural = torch.from_numpy(spectra.amplitude["motion"])
        assert torch.all(amplitude <= natural * freedom * 1.001 + 1e-6)
        # at the top: all of it but the imaginary parts irfftn drops (its self-conjugate coefficients)
        assert amplitude.sum() > 0.8 * freedom * natural.sum()


def test_rgb_freedom_moves_energy_between_frequencies_and_adds_none():
    spec = tiny_inputs()["appearance"]
    spectra = power_law_spectra(tiny_inputs())
    amplitude = spectra.amplitude["appearance"].astype(np.float64)  # (C, T, H, W // 2 + 1)
    natural_power = torch.from_numpy((amplitude**2 * column_shares(spec.shape[-1])).sum(axis=(1, 2, 3)))
    for freedom in (1.0, 2.0):
        param = clip_param("spectrum", "appearance", spec, generators(0), torch.device("cpu"), spectra, weights(1), freedom=freedom)
        with torch.no_grad():
            param.basis.gain.fill_(50.0)  # every amplitude as far up as it goes: the power is held
            param.basis.gain[..., : spec.shape[-1] // 4] = -50.0  # and the slow columns fall: it moves
        power = param.basis().detach()[0].double().square().sum(dim=(1, 2, 3))  # per channel
        if freedom == 1.0:  # phases only: the falls are falls, and nothing rises
            assert torch.all(power < 0.9 * natural_power)
        else:
            torch.testing.assert_close(power, natural_power, rtol=0.05, atol=0.0)  # (less the imaginary parts irfftn drops)


def column_shares(width: int) -> np.ndarray:
    """Each rfft column's share of a clip's power: the columns between the first and the Nyquist one hold
    their conjugates too."""
    shares = np.full(width // 2 + 1, 2.0)
    shares[0] = 1.0
    if width % 2 == 0:
        shares[-1] = 1.0
    return shares


def test_the_mean_colour_stays_in_the_ellipsoid_of_real_clips_mean_colours():
    # the tiny world's clips are grey grounds with a coloured bar: their mean colours vary mostly in
    # brightness, so a clip's mean may go further towards white than towards red
    spectra = tiny_world_spectra()
    factor = torch.from_numpy(spectra.mean_colour_factor())
    param = clip_param("spectrum", "appearance", tiny_inputs()["appearance"], generators(0), torch.device("cpu"),
                       spectra, weights(1))
    reached = {}
    for name, towards in {"red": [1.0, -1.0, -1.0], "white": [1.0, 1.0, 1.0]}.items():
        with torch.no_grad():
            param.mean_offset.copy_(torch.tensor(towards).view(1, 3, 1, 1, 1) * 100)  # as far as it goes
            offset = (param.mean() - param.natural_mean).flatten()
        spreads = torch.linalg.solve_triangular(factor, offset.view(3, 1), upper=False).norm()
        assert spreads <= MEAN_RANGE * 1.001
        reached[name] = float(offset.norm())
    assert reached["white"] > 1.5 * reached["red"]


def test_the_penalty_filter_is_one_without_penalties_and_shrinks_fast_change_more():
    none = penalty_filter((8, 16, 16), torch.tensor([[0.0, 0.0]]))
    assert torch.all(none == 1)
    slow = penalty_filter((8, 16, 16), torch.tensor([[0.0, 3.0]]))[0, 0, :, 0, 0]  # along temporal frequency
    assert slow[0] == 1 and torch.all(torch.diff(slow[:5]) < 0)


def test_spectrum_clips_stay_in_display_range():
    specs = tiny_inputs()
    spectra = power_law_spectra(specs)
    rgb = clip_param("spectrum", "appearance", specs["appearance"], generators(0, 1), torch.device("cpu"), spectra, weights(2))
    flow = clip_param("spectrum", "motion", specs["motion"], generators(0, 1), torch.device("cpu"), spectra, weights(2))
    with torch.no_grad():
        for p in (*rgb.parameters(), *flow.parameters()):
            p.mul_(1e4).add_(1e3)
    assert 0 <= rgb().min() and rgb().max() <= 1
    assert flow().norm(dim=1).max() <= FLOW_BOUND * FLOW_SCALE + 1e-4


def test_a_model_without_spectra_cannot_use_the_spectrum_parameterisation():
    with pytest.raises(ValueError, match="natural spectra"):
        clip_param("spectrum", "motion", tiny_inputs()["motion"], generators(0), torch.device("cpu"), None, weights(1))


@pytest.mark.parametrize("param", ["pixel", "fourier", "spectrum"])
def test_a_start_clip_is_where_the_optimisation_starts(param: str):
    model = load(TwoTowers(pointwise([[1.0, -0.5, -0.5]]), pointwise([direction(0)]), features=2))
    rng = np.random.default_rng(0)
    start = {
        "appearance": rng.uniform(0.2, 0.8, (FRAMES, SIZE, SIZE, 3)).astype(np.float32),
        "motion": rng.normal(0, 1.0, (FRAMES, SIZE, SIZE, 2)).astype(np.float32),
    }
    settings = VisualizationSettings(steps=1, lr=1e-6, param=param, transforms={"jitter": 0, "zoom": 0, "time_shift": 0})
    result = visualize(model, "logits", 0, settings, start=start)
    for stream, clip in start.items():
        np.testing.assert_allclose(result.inputs[stream][0], clip, atol=2e-3)


def test_a_start_clip_is_kept_near_by_its_weight():
    model = load(TwoTowers(nn.Sequential(pointwise([[1.0, -0.5, -0.5]]), nn.ReLU()), pointwise([direction(0)]), features=2))
    start = {"appearance": np.full((FRAMES, SIZE, SIZE, 3), 0.5, np.float32)}
    distance = []
    for weight in (0.0, 100.0):
        settings = VisualizationSettings(steps=32, param="spectrum", weights={"start": weight})
        result = visualize(model, "appearance.0", 0, settings, start=start)
        distance.append(float(np.abs(result.inputs["appearance"][0] - 0.5).mean()))
    assert distance[1] < 0.5 * distance[0], distance


def test_a_start_clips_slow_flow_is_kept_as_its_rgb_is():
    """A real video's flow is far smaller in model space than its RGB; the pull asks each stream for the
    same share of change, so a motion unit that wants the other way cannot reverse a slow clip's flow
    (it did when one weight pulled both streams in model space alike)."""
    model = load(TwoTowers(pointwise([[1.0, -0.5, -0.5]]), pointwise([direction(0)]), features=2))
    rng = np.random.default_rng(1)
    flow = np.zeros((FRAMES, SIZE, SIZE, 2), np.float32)
    flow[..., 0] = -0.2 * FLOW_SCALE * (1 + 0.3 * rng.standard_normal((FRAMES, SIZE, SIZE)))  # slowly left
    start = {"appearance": rng.uniform(0.3, 0.7, (FRAMES, SIZE, SIZE, 3)).astype(np.float32), "motion": flow}
    kept = []
    for weight in (0.0, 3.0):
        settings = VisualizationSettings(steps=64, param="spectrum", weights={"start": weight})
        result = visualize(model, "motion", 0, settings, start=start)  # the rightward unit
        moved = result.inputs["motion"][0]
        kept.append(float(np.corrcoef(moved.ravel(), flow.ravel())[0, 1]))
        if weight:
            assert moved[..., 0].mean() < 0.5 * flow[..., 0].mean()  # still leftwards, at least half as fast
    assert kept[0] < 0.5 < 0.9 < kept[1], kept


def test_a_start_clip_of_the_wrong_shape_is_refused():
    model = load(TwoTowers(pointwise([[1.0, 0.0, 0.0]]), pointwise([direction(0)]), features=2))
    with pytest.raises(ValueError, match="needs"):
        visualize(model, "appearance", 0, VisualizationSettings(steps=1), start={"appearance": np.zeros((2, 8, 8, 3))})
    with pytest.raises(ValueError, match="lacks the motion"):
        visualize(model, "logits", 0, VisualizationSettings(steps=1), start={"appearance": np.zeros((FRAMES, SIZE, SIZE, 3))})


class LeftHalf(nn.Module):
    """A red unit that looks only at the left half of the frame."""

    def __init__(self):
        super().__init__()
        self.colour = pointwise([[1.0, -0.5, -0.5]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = torch.zeros_like(x)
        seen[..., : x.shape[-1] // 2] = x[..., : x.shape[-1] // 2]
        return self.colour(seen)


def test_the_transparency_map_shows_where_the_unit_looks():
    model = load(TwoTowers(LeftHalf(), pointwise([direction(0)]), features=2))
    settings = VisualizationSettings(steps=16, transforms={"jitter": 0, "zoom": 0, "time_shift": 0})
    result = visualize(model, "appearance.colour", 0, settings)
    alpha = result.alpha["appearance"]
    assert alpha.shape == (1, FRAMES, SIZE, SIZE)
    assert 0 <= alpha.min() and alpha.max() <= 1
    assert alpha[..., : SIZE // 2].mean() > 0.5 and alpha[..., SIZE // 2 :].max() == 0


def test_several_views_a_step_average_the_objective():
    model = load(TwoTowers(nn.Sequential(pointwise([[1.0, -0.5, -0.5]]), nn.ReLU()), pointwise([direction(0)]), features=2))
    one = visualize(model, "appearance.0", 0, VisualizationSettings(steps=8))
    two = visualize(model, "appearance.0", 0, VisualizationSettings(steps=8, transforms={"views": 2}))
    assert not np.allclose(one.inputs["appearance"], two.inputs["appearance"])
    assert two.objective[0] > 0
    with pytest.raises(ValueError, match="diversity"):
        visualize(model, "appearance.0", [0, 0], VisualizationSettings(steps=1, diversity=1.0, transforms={"views": 2}))


def test_a_spectrum_basis_of_a_batch_keeps_each_item_to_its_seed():
    spec = tiny_inputs()["appearance"]
    spectra = power_law_spectra(tiny_inputs())
    alone = clip_param("spectrum", "appearance", spec, generators(1), DEVICE, spectra, weights(1))
    batched = clip_param("spectrum", "appearance", spec, generators(0, 1), DEVICE, spectra, weights(2))
    torch.testing.assert_close(batched()[1:], alone())
    assert isinstance(batched.basis, SpectrumBasis)


def test_the_engine_never_loads_a_judge():
    """The faithfulness measure is honest only if the judges stay out of the optimisation."""
    import subprocess
    import sys

    engine_only = "import sys, stlens.engine; print(sorted(m for m in sys.modules if m.startswith('stlens.')))"
    loaded = subprocess.run([sys.executable, "-c", engine_only], capture_output=True, text=True, check=True).stdout
    assert "stlens.models.judges" not in loaded and "stlens.analysis" not in loaded



def test_an_unset_freedom_is_one_at_the_class_logits_and_two_at_hidden_units():
    for layer, freedom in (("logits", 1.0), ("fusion.conv", 2.0), ("appearance.0", 2.0)):
        assert VisualizationSettings().for_layer(layer).freedom == freedom
        assert VisualizationSettings(freedom=3.0).for_layer(layer).freedom == 3.0
    assert VisualizationSettings(param="fourier").for_layer("fusion.conv").freedom == 1.0
    # and the engine fills it in itself: a hidden unit's amplitudes may rise to twice the natural ones
    model = load(TwoTowers(nn.Sequential(pointwise([[1.0, 0.0, 0.0]]), nn.ReLU()), pointwise([direction(0)]), features=2))
    optimisation = Optimisation(model, "appearance.0", [0], VisualizationSettings(steps=1))
    assert optimisation.params["appearance"].basis.log_freedom == pytest.approx(np.log(2.0))
