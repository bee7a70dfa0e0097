from __future__ import annotations

import numpy as np
import pytest
import torch
from stlens.analysis.clip import clip_inputs, to_tensor
from stlens.analysis.gradcam import gradcam, spacetime_layers
from stlens.analysis.predict import predict
from stlens.analysis.units import top_units
from stlens.models.registry import LoadedModel

from .conftest import moving_square


def _display(model: LoadedModel) -> dict[str, torch.Tensor]:
    clip = clip_inputs(moving_square(), model.spec.inputs)
    return {s: to_tensor(x) for s, x in clip.streams.items()}


@pytest.mark.parametrize("fixture", ["conv_fusion", "late_fusion"])
def test_prediction_per_stream_and_fused(fixture: str, request: pytest.FixtureRequest) -> None:
    model: LoadedModel = request.getfixturevalue(fixture)
    display = _display(model)
    result = predict(model, display, top=3)
    assert set(result.top) == {"fused", "appearance", "motion"}
    fused = result.top["fused"]
    assert [c.probability for c in fused] == sorted((c.probability for c in fused), reverse=True)
    logits = model.module(**{s: model.spec.inputs[s].to_model(x) for s, x in display.items()})[0]
    assert fused[0].index == int(logits.argmax())
    assert fused[0].label == model.spec.labels[fused[0].index]
    assert result.top["appearance"] != result.top["motion"]


def test_a_stream_alone_is_the_clip_with_the_other_stream_neutral(late_fusion: LoadedModel) -> None:
    """On a clip without motion, the appearance-only prediction is the fused one, and differs otherwise."""
    display = _display(late_fusion)
    still = {"appearance": display["appearance"], "motion": torch.zeros_like(display["motion"])}
    result = predict(late_fusion, still, top=3)
    assert result.top["appearance"] == result.top["fused"]
    assert predict(late_fusion, display, top=3).top["appearance"] == result.top["appearance"]
    assert predict(late_fusion, display, top=3).top["fused"] != result.top["fused"]


def test_gradcam_maps_cover_each_input_and_follow_the_class(conv_fusion: LoadedModel) -> None:
    display = _display(conv_fusion)
    maps = gradcam(conv_fusion, display, 0)
    assert set(maps) == {"appearance", "motion"}
    for heat in maps.values():
        assert heat.shape == (8, 64, 64)
        assert 0.0 <= heat.min() and heat.max() <= 1.0
    other = gradcam(conv_fusion, display, 1)
    assert not np.allclose(maps["motion"], other["motion"])
    assert spacetime_layers(conv_fusion, "motion")[-1].id == "motion.conv3"
    with pytest.raises(ValueError):
        gradcam(conv_fusion, display, conv_fusion.spec.num_classes)


def test_gradcam_is_zero_where_a_stream_is_blind() -> None:
    """Heat lies where the features the class uses are: none where the motion input is empty."""
    from stlens.models.builtin import small_inputs
    from stlens.models.introspect import discover_layers
    from stlens.models.registry import LoadedModel as Loaded
    from stlens.models.spec import ModelSpec

    class LeftOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.appearance = torch.nn.Conv3d(3, 4, 1)
            self.motion = torch.nn.Conv3d(2, 4, 1, bias=False)

        def forward(self, appearance: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
            a = torch.relu(self.appearance(appearance)).mean((2, 3, 4))
            m = torch.relu(self.motion(motion)).mean((2, 3, 4))
            return torch.cat([a.sum(1, keepdim=True) + m.sum(1, keepdim=True), -a.sum(1, keepdim=True)], 1)

    torch.manual_seed(0)
    module = LeftOnly().eval()
    spec = ModelSpec(id="left", title="left", inputs=small_inputs(), labels=("a", "b"))
    model = Loaded(
        spec=spec, module=module, layers=discover_layers(module, spec), weights_hash="x", device=torch.device("cpu")
    )
    motion = torch.randn(1, 2, 8, 64, 64) * 3
    motion[..., 32:] = 0
    display = {"appearance": torch.rand(1, 3, 8, 64, 64), "motion": motion}
    heat = gradcam(model, display, 0)["motion"]
    assert heat[..., :30].max() > 0.5
    assert heat[..., 33:].max() == 0.0


def test_top_units_are_ranked_channel_means(conv_fusion: LoadedModel) -> None:
    display = _display(conv_fusion)
    units = top_units(conv_fusion, display, "motion.conv2", k=5)
    assert len(units) == 5
    out = conv_fusion.module.motion.conv2(
        conv_fusion.module.motion.conv1(conv_fusion.spec.inputs["motion"].to_model(display["motion"]))
    )
    means = out.mean((2, 3, 4))[0]
    assert [u.unit for u in units] == means.topk(5).indices.tolist()
    assert units[0].activation == pytest.approx(float(means.max()), rel=1e-4)
    with pytest.raises(ValueError):
        top_units(conv_fusion, display, "motion.conv2", k=0)


def test_many_layers_in_one_pass_match_one_at_a_time(conv_fusion: LoadedModel) -> None:
    from stlens.analysis.units import layer_activations, many_layer_activations

    display = _display(conv_fusion)
    inputs = {s: conv_fusion.spec.inputs[s].to_model(x) for s, x in display.items()}
    names = ["appearance.conv2", "motion.conv3", "fusion.fc6", "logits"]
    together = many_layer_activations(conv_fusion, names, inputs)
    for name in names:
        assert torch.allclose(together[name], layer_activations(conv_fusion, name, inputs), atol=1e-6)


def test_gradcam_passes_over_a_layer_that_is_a_side_view() -> None:
    """A layer that the forward pass computes but does not use further has no gradient: Grad-CAM uses the
    deepest layer that has one, and a stream with none gets no map."""
    from stlens.models.builtin import small_inputs
    from stlens.models.introspect import discover_layers
    from stlens.models.registry import LoadedModel as Loaded
    from stlens.models.spec import ModelSpec

    class SideView(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.appearance = torch.nn.Conv3d(3, 4, 1)
            self.motion = torch.nn.Conv3d(2, 4, 1)
            self.motion_view = torch.nn.Conv3d(4, 4, 1)
            self.stlens_layers = ["appearance", "motion", "motion_view"]

        def forward(self, appearance: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
            m = self.motion(motion)
            self.motion_view(m)  # exposed for visualisation only
            a = self.appearance(appearance)
            return torch.cat([a, m], 1).mean((2, 3, 4))

    module = SideView().eval()
    spec = ModelSpec(id="side", title="side", inputs=small_inputs(), labels=tuple("abcdefgh"))
    model = Loaded(
        spec=spec, module=module, layers=discover_layers(module, spec), weights_hash="x", device=torch.device("cpu")
    )
    display = {"appearance": torch.rand(1, 3, 8, 64, 64), "motion": torch.randn(1, 2, 8, 64, 64)}
    maps = gradcam(model, display, 0)
    assert set(maps) == {"appearance", "motion"}  # motion falls back from motion_view to motion
    module.stlens_layers = ["appearance", "motion_view"]
    model = Loaded(
        spec=spec, module=module, layers=discover_layers(module, spec), weights_hash="x", device=torch.device("cpu")
    )
    assert set(gradcam(model, display, 0)) == {"appearance"}
