"""The pca parameterisation: eigenclips of a model's training clips, the basis on their sphere, and the default."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stlens.engine import VisualizationSettings, visualize
from stlens.engine import eigenclips as eigenclips_module
from stlens.engine.eigenclips import cache_dir, eigenclips_of, measure_eigenclips
from stlens.engine.param import EigenclipBasis, SpectrumBasis, clip_param
from stlens.engine.render import LayerRunner, Optimisation, step_together
from stlens.request import InvalidRequest, settings_for
from torch import nn

from .tiny_nets import DEVICE, TwoTowers, direction, load, pointwise


def colour_net() -> nn.Module:
    """Class 0: red over the other colours, everywhere; class 1: the opposite (pooled to logits)."""
    net = TwoTowers(pointwise([[1.0, -0.5, -0.5]]), pointwise([direction(0)]), features=2)
    with torch.no_grad():
        net.head.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        net.head.bias.zero_()
    return net


def test_the_eigenclips_of_clips_made_of_three_patterns_are_those_patterns():
    generator = torch.Generator().manual_seed(0)
    patterns = torch.randn(3, 2 * 4 * 8 * 8, generator=generator)
    patterns -= patterns.view(3, 2, -1).mean(2, keepdim=True).repeat_interleave(4 * 8 * 8, 2).view(3, -1)
    clips = (torch.randn(40, 3, generator=generator) @ patterns).view(40, 2, 4, 8, 8)
    found = measure_eigenclips(clips, count=3)
    assert found.kept > 0.999
    torch.testing.assert_close(found.components @ found.components.T, torch.eye(3), atol=1e-4, rtol=0)
    assert torch.all(found.spread[:-1] >= found.spread[1:])
    # each clip's mean is not part of it: a clip that is only a constant has no component
    assert measure_eigenclips(clips + 5.0, count=3).kept > 0.999
    assert measure_eigenclips(clips[:3], count=8).count == 2  # at most N - 1


def test_a_pca_clip_lies_in_the_span_with_a_real_clips_spread():
    model = load(colour_net(), natural_clips=True)
    eigenclips = eigenclips_of(model, "appearance")
    spec = model.spec.inputs["appearance"]
    generators = [torch.Generator().manual_seed(s) for s in (0, 1)]
    still = torch.zeros(2, 3)  # no penalty shrinks a component
    param = clip_param("pca", "appearance", spec, generators, DEVICE, model.spectra, still, eigenclips=eigenclips)
    assert isinstance(param.basis, EigenclipBasis)
    signal = param.basis().detach().flatten(1)
    coefficients = signal @ eigenclips.components.T
    torch.testing.assert_close(coefficients @ eigenclips.components, signal, atol=1e-4, rtol=1e-4)  # in the span
    whitened = (coefficients / eigenclips.spread).norm(dim=1)
    torch.testing.assert_close(whitened, torch.full((2,), float(np.sqrt(eigenclips.count))), rtol=1e-3, atol=0)
    clip = param().detach()
    assert clip.min() >= 0 and clip.max() <= 1
    with pytest.raises(ValueError, match="eigenclips"):
        clip_param("pca", "appearance", spec, generators, DEVICE, model.spectra, still)
    with pytest.raises(ValueError, match="cannot start"):
        start = torch.full((2, *spec.shape), 0.5)
        clip_param("pca", "appearance", spec, generators, DEVICE, model.spectra, still, start, eigenclips=eigenclips)


def test_an_unset_param_is_pca_at_the_class_logits_of_a_model_with_natural_clips():
    unset = VisualizationSettings()
    assert unset.param is None
    assert unset.for_layer("logits", eigenclips=True).param == "pca"
    assert unset.for_layer("logits", eigenclips=True).freedom == 1.0
    assert unset.for_layer("logits").param == "spectrum"  # a model without natural clips
    assert unset.for_layer("logits", eigenclips=True, start=True).param == "spectrum"
    assert unset.for_layer("fusion.conv", eigenclips=True).param == "spectrum"
    assert VisualizationSettings(param="fourier").for_layer("logits", eigenclips=True).param == "fourier"
    model = load(colour_net(), natural_clips=True)
    logits = Optimisation(model, "logits", [0], VisualizationSettings(steps=1))
    hidden = Optimisation(model, "appearance", [0], VisualizationSettings(steps=1))
    assert isinstance(logits.params["appearance"].basis, EigenclipBasis)
    assert isinstance(hidden.params["appearance"].basis, SpectrumBasis)


def test_pca_finds_the_colour_a_class_logit_wants():
    model = load(colour_net(), natural_clips=True)
    settings = VisualizationSettings(steps=48, transforms={"jitter": 0, "zoom": 0, "time_shift": 0})
    result = visualize(model, "logits", [0, 1], settings)
    red, green, blue = result.inputs["appearance"].mean(axis=(1, 2, 3)).T
    assert red[0] > green[0] + 0.1 and red[0] > blue[0] + 0.1  # class 0 wants red
    assert red[1] < green[1] - 0.1 and red[1] < blue[1] - 0.1  # class 1 wants anything but red
    assert result.objective[0] > 0 and result.objective[1] > 0


def test_pca_runs_stepped_together_make_their_clips_in_one_product_and_each_follows_its_own_run(monkeypatch):
    monkeypatch.setattr(EigenclipBasis, "forward", lambda self: pytest.fail("a basis made its clips alone"))
    model = load(colour_net(), natural_clips=True)
    asked = [(0, {"steps": 6}), (1, {"steps": 6, "seed": 4}), (0, {"steps": 6, "seed": 2, "param": "spectrum"})]
    optimisations = [Optimisation(model, "logits", u, VisualizationSettings.model_validate(s)) for u, s in asked]
    bases = [o.params["appearance"].basis for o in optimisations[:2]]
    assert all(isinstance(b, EigenclipBasis) for b in bases) and bases[0].components is bases[1].components
    for index, together in enumerate(EigenclipBasis.together(bases)):  # type: ignore[arg-type]
        alone = (bases[index].weighted() @ bases[index].components).view_as(together)
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    runner = LayerRunner(model, "logits", None)
    try:
        while not optimisations[0].done:
            step_together(runner, optimisations)  # two pca runs and a spectrum one: one batch
        monkeypatch.undo()  # the results and the runs alone make their clips as one run does
        results = [o.result(runner) for o in optimisations]
    finally:
        runner.close()
    for (unit, settings), together in zip(asked, results):
        alone = visualize(model, "logits", unit, VisualizationSettings.model_validate(settings))
        for stream, clip in alone.inputs.items():
            np.testing.assert_allclose(together.inputs[stream], clip, atol=1e-3)


def test_pca_is_refused_where_a_model_or_a_start_cannot_run_it():
    without = load(colour_net())
    with pytest.raises(InvalidRequest, match="natural clips"):
        settings_for(without, "logits", VisualizationSettings(param="pca"))
    assert settings_for(without, "logits", VisualizationSettings()).param == "spectrum"
    with_clips = load(colour_net(), natural_clips=True)
    with pytest.raises(InvalidRequest, match="cannot start"):
        settings_for(with_clips, "logits", VisualizationSettings(param="pca"), start=True)
    assert settings_for(with_clips, "logits", VisualizationSettings(), start=True).param == "spectrum"
    assert settings_for(with_clips, "logits", VisualizationSettings()).param == "pca"


def test_eigenclips_are_stored_for_the_next_process_and_a_damaged_file_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("STLENS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(eigenclips_module, "_computed", {})
    model = load(colour_net(), natural_clips=True)
    first = eigenclips_of(model, "motion")
    stored = sorted(p.name for p in cache_dir().iterdir())
    assert len(stored) == 2 and all(name.startswith("tiny-world-") for name in stored)  # both streams at once

    def unreachable():
        raise AssertionError("the clips were loaded again")

    monkeypatch.setattr(eigenclips_module, "_computed", {})  # a new process: only the files are left
    monkeypatch.setattr(model, "natural_clips", type(model.natural_clips)(model.natural_clips.name, unreachable))
    again = eigenclips_of(model, "motion")
    torch.testing.assert_close(again.components, first.components, atol=2e-3, rtol=0)  # float16 on disk
    torch.testing.assert_close(again.spread, first.spread)

    for path in cache_dir().iterdir():
        path.write_bytes(b"not a tensor file")
    monkeypatch.setattr(eigenclips_module, "_computed", {})
    reloaded = load(colour_net(), natural_clips=True)
    torch.testing.assert_close(eigenclips_of(reloaded, "motion").components, first.components, atol=1e-5, rtol=0)


def test_a_larger_temporal_weight_makes_a_slower_pca_clip():
    """The fast <-> slow sweep: tv_time shrinks the components that change fast."""
    model = load(colour_net(), natural_clips=True)
    weights = [0.0, 3.0, 100.0]
    settings = [VisualizationSettings(steps=32, weights={"tv_time": {"appearance": w, "motion": w}}) for w in weights]
    result = visualize(model, "logits", [0] * len(weights), settings)
    change = [np.abs(np.diff(clip, axis=0)).mean() for clip in result.inputs["appearance"]]
    assert change[0] > change[1] > change[2] and change[2] < 0.6 * change[0], change
