"""The engine's parts on their own: parameterisations, transforms, regularisers, objectives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from stlens.engine import objectives, regularizers
from stlens.engine.param import FLOW_BOUND, clip_param
from stlens.engine.transforms import Draw, SpacetimeJitter, _gather_time, _roll_time

from .tiny_nets import FLOW_SCALE, tiny_inputs


def generators(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def draw(shift_xy: list[list[float]], zoom: list[float], shift_t: list[int]) -> Draw:
    return Draw(torch.tensor(shift_xy), torch.tensor(zoom), torch.tensor(shift_t))


def test_warp_matches_an_affine_grid_sample():
    clip = torch.rand(2, 3, 4, 16, 20)
    d = draw([[2.0, -1.0], [0.0, 3.0]], [1.1, 0.9], [0, 0])
    ours = SpacetimeJitter(3, 0.1, 0).apply(clip, d, is_flow=False)
    theta = torch.zeros(2, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / d.zoom
    theta[:, :, 2] = -d.shift_xy * 2 / torch.tensor([20.0, 16.0])
    grid = F.affine_grid(theta, [2, 12, 16, 20], align_corners=False)
    reference = F.grid_sample(clip.view(2, 12, 16, 20), grid, padding_mode="border", align_corners=False)
    torch.testing.assert_close(ours, reference.view_as(clip), atol=1e-5, rtol=0)


def test_integer_shift_moves_content_and_flow_scales_with_zoom():
    clip = torch.rand(1, 2, 3, 12, 12)
    shifted = SpacetimeJitter(2, 0.0, 0).apply(clip, draw([[2.0, 1.0]], [1.0], [0]), is_flow=False)
    torch.testing.assert_close(shifted[..., 1:, 2:], clip[..., :-1, :-2])
    flow = torch.ones(1, 2, 3, 12, 12)
    zoomed = SpacetimeJitter(0, 0.2, 0).apply(flow, draw([[0.0, 0.0]], [1.2], [0]), is_flow=True)
    torch.testing.assert_close(zoomed, flow * 1.2)


def test_time_shift_is_circular_per_item():
    clip = torch.arange(2 * 4, dtype=torch.float32).view(2, 1, 4, 1, 1).expand(2, 1, 4, 2, 2)
    out = SpacetimeJitter(0, 0.0, 1).apply(clip, draw([[0.0, 0.0]] * 2, [1.0, 1.0], [1, -1]), is_flow=False)
    assert out[0, 0, :, 0, 0].tolist() == [3, 0, 1, 2]
    assert out[1, 0, :, 0, 0].tolist() == [5, 6, 7, 4]


@pytest.mark.parametrize("shift_t", [[1, -1], [2, 2], [0, -3]])
def test_gather_time_shift_matches_the_roll(shift_t: list[int]):
    """The GPU's gather (offsets never read by the host) and the CPU's roll shift alike."""
    clip = torch.rand(2, 3, 4, 5, 6)
    shift = torch.tensor(shift_t)
    torch.testing.assert_close(_gather_time(clip, shift), _roll_time(clip, shift), rtol=0, atol=0)


def test_draws_sampled_up_front_equal_draws_sampled_each_step():
    jitter = SpacetimeJitter(3, 0.1, 2)
    up_front = jitter.sample_steps(generators(4, 5), frames=4, steps=6, device=torch.device("cpu"))
    one_by_one = generators(4, 5)
    for d in up_front:
        expected = jitter.sample(one_by_one, frames=4)
        for name in ("shift_xy", "zoom", "shift_t"):
            assert torch.equal(getattr(d, name), getattr(expected, name))


def test_sampled_draws_stay_in_range():
    jitter = SpacetimeJitter(3, 0.1, 2)
    for _ in range(20):
        d = jitter.sample(generators(1, 2), frames=3)
        assert d.shift_xy.abs().max() <= 3 and (d.zoom - 1).abs().max() <= 0.1 + 1e-6
        assert d.shift_t.abs().max() <= 2


@pytest.mark.parametrize("kind", ["pixel", "fourier"])
def test_params_are_in_display_range_and_seeded_per_item(kind: str):
    specs = tiny_inputs()
    rgb = clip_param(kind, "appearance", specs["appearance"], generators(0, 1), torch.device("cpu"))
    flow = clip_param(kind, "motion", specs["motion"], generators(0, 1), torch.device("cpu"))
    with torch.no_grad():
        for p in (*rgb.parameters(), *flow.parameters()):
            p.mul_(1e4)  # far outside any range
    assert 0 <= rgb().min() and rgb().max() <= 1
    assert flow().norm(dim=1).max() <= FLOW_BOUND * FLOW_SCALE + 1e-4
    alone = clip_param(kind, "appearance", specs["appearance"], generators(1), torch.device("cpu"))
    batched = clip_param(kind, "appearance", specs["appearance"], generators(0, 1), torch.device("cpu"))
    torch.testing.assert_close(batched()[1:], alone())


def test_fourier_init_is_smooth_in_space_and_time():
    spec = tiny_inputs(frames=8, size=32)["motion"]
    fourier = clip_param("fourier", "motion", spec, generators(0), torch.device("cpu"))().detach()
    pixel = clip_param("pixel", "motion", spec, generators(0), torch.device("cpu"))().detach()

    def relative_change(x: torch.Tensor, dim: int) -> float:
        return float(x.diff(dim=dim).abs().mean() / x.abs().mean())

    for dim in (2, 3, 4):  # time, y, x
        assert relative_change(fourier, dim) < 0.7 * relative_change(pixel, dim)


@pytest.mark.parametrize("vectors", [False, True])
def test_penalty_gradient_matches_autograd_of_the_values(vectors: bool):
    clip = torch.randn(2, 2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([[0.3, 1.0, 2.0], [0.0, 0.5, 0.1]], dtype=torch.float64)
    plain = weights[:, 0] * regularizers.range_norm(clip, vectors) + weights[:, 1] * regularizers.tv_space(clip)
    plain = plain + weights[:, 2] * regularizers.tv_time(clip)
    (expected,) = torch.autograd.grad(plain.sum(), clip)
    torch.testing.assert_close(regularizers.penalty_gradient(clip.detach(), weights, vectors), expected)


def test_regularizer_values():
    ramp = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(1, 1, 4, 2, 2)  # 0, 1, 2, 3 over time, flat in space
    assert regularizers.tv_space(ramp).item() == 0
    assert regularizers.tv_time(ramp).item() == pytest.approx((1 + 1 + 1 + 9) / 4)  # the wrap 3 -> 0 counts
    assert regularizers.tv_time(ramp[:, :, :1]).item() == 0
    assert regularizers.range_norm(torch.full((1, 1, 1, 2, 2), 2.0)).item() == pytest.approx(2.0**6)
    axis, diagonal = torch.tensor([1.0, 0.0]), torch.tensor([0.5**0.5, 0.5**0.5])
    as_flow = [v.view(1, 2, 1, 1, 1) for v in (axis, diagonal)]
    assert regularizers.range_norm(as_flow[0], vectors=True) == pytest.approx(regularizers.range_norm(as_flow[1], vectors=True))


def test_objectives_and_their_algebra():
    output = torch.zeros(2, 3, 3, 5, 5)
    output[:, 1, 1, 2, 2] = 10.0  # the centre of channel 1
    output[:, 2] = 1.0
    assert objectives.channel(2)(output).tolist() == [1.0, 1.0]
    assert objectives.neuron([1, 2])(output).tolist() == [10.0, 1.0]
    assert objectives.channel([1, 2])(output) == pytest.approx([10 / 75, 1.0])
    combined = 2 * objectives.channel(2) - objectives.neuron(1) + 1
    assert combined(output).tolist() == [-7.0, -7.0]
    assert (-objectives.channel(2))(output).tolist() == [-1.0, -1.0]
    assert objectives.class_logit([0, 1])(torch.tensor([[1.0, 2.0], [3.0, 4.0]])).tolist() == [1.0, 4.0]
    with pytest.raises(ValueError):
        objectives.channel(3)(output)
    with pytest.raises(ValueError):
        objectives.channel([0, 1, 2])(output)


def test_diversity_is_lowest_for_identical_items():
    same = torch.rand(1, 4, 6, 6).expand(3, 4, 6, 6)
    different = torch.rand(3, 4, 6, 6)
    assert objectives.diversity()(same) == pytest.approx([-1.0] * 3)
    assert (objectives.diversity()(different) > -1.0).all()
    assert objectives.diversity()(different[:1]).tolist() == [0.0]
    assert np.isfinite(objectives.diversity()(torch.rand(2, 5)).numpy()).all()
