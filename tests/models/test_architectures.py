"""Each two-stream architecture builds, runs at its declared inputs, and lists its layers with the
streams that gradients confirm: appearance layers depend on RGB only, motion layers on flow only,
fusion layers (the logits included) on both."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from stlens.engine import VisualizationSettings, visualize
from stlens.models.i3d import TwoStreamI3D
from stlens.models.introspect import discover_layers, probe
from stlens.models.registry import ModelEntry, prepare
from stlens.models.resnet_twostream import SpatiotemporalResNet, spatiotemporal_resnet_small
from stlens.models.spec import LOGITS, InputSpec, LayerStream, ModelSpec
from stlens.models.vgg_twostream import VGG16_BLOCKS, two_stream_vgg16

from .conftest import gradient_dependence

CLASSES = 5


def two_stream_spec(frames: int, size: int) -> ModelSpec:
    return ModelSpec(
        id="test",
        title="test",
        inputs={
            "appearance": InputSpec(
                channels=3, frames=frames, height=size, width=size, mean=(0.5,) * 3, std=(0.25,) * 3
            ),
            "motion": InputSpec(channels=2, frames=frames, height=size, width=size, scale=20.0),
        },
        labels=tuple(f"c{i}" for i in range(CLASSES)),
    )


def vgg_expected(layer: str) -> LayerStream:
    return "appearance" if layer.startswith("appearance.") else "motion" if layer.startswith("motion.") else "fusion"


def resnet_expected(layer: str) -> LayerStream:
    """Motion feeds the appearance stream at every stage, so only the appearance stem is appearance alone."""
    if layer.startswith("motion"):
        return "motion"
    return "appearance" if layer == "appearance.stem" else "fusion"


ARCHITECTURES: dict[str, tuple[Callable[[], nn.Module], int, int, Callable[[str], LayerStream]]] = {
    "vgg16-twostream": (
        lambda: two_stream_vgg16(CLASSES, frames=4, fusion_frames=2, size=32, width=0.0625),
        4,
        32,
        vgg_expected,
    ),
    "st-resnet": (lambda: spatiotemporal_resnet_small(CLASSES, base_width=8), 4, 32, resnet_expected),
    "i3d": (lambda: TwoStreamI3D(CLASSES), 8, 32, vgg_expected),
}


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def built(request: pytest.FixtureRequest) -> tuple[str, nn.Module, ModelSpec]:
    make, frames, size, _ = ARCHITECTURES[request.param]
    torch.manual_seed(0)
    return request.param, make().eval(), two_stream_spec(frames, size)


def test_forward_gives_logits_at_the_declared_inputs(built: tuple[str, nn.Module, ModelSpec]) -> None:
    _, module, spec = built
    inputs = {s: torch.rand(2, *spec.inputs[s].shape) for s in spec.streams}
    with torch.no_grad():
        assert module(**inputs).shape == (2, CLASSES)


def test_layer_streams_agree_with_gradients_and_names(built: tuple[str, nn.Module, ModelSpec]) -> None:
    name, module, spec = built
    layers = discover_layers(module, spec)
    assert layers[-1].id == LOGITS and layers[-1].stream == "fusion"
    assert {layer.stream for layer in layers} == {"appearance", "motion", "fusion"}
    by_gradient = gradient_dependence(module, spec)
    expected = ARCHITECTURES[name][3]
    for layer in layers:
        inputs = {"appearance", "motion"} if layer.stream == "fusion" else {layer.stream}
        assert by_gradient[layer.id] == inputs, layer.id
        if layer.id != LOGITS:
            assert layer.stream == expected(layer.id), layer.id


def test_layers_are_in_forward_order_with_their_output_shapes(built: tuple[str, nn.Module, ModelSpec]) -> None:
    _, module, spec = built
    layers = discover_layers(module, spec)
    seen: list[str] = []
    hooks = [
        dict(module.named_modules())[layer.id].register_forward_hook(lambda _m, _i, _o, n=layer.id: seen.append(n))
        for layer in layers[:-1]
    ]
    with torch.no_grad():
        module(**{s: torch.zeros(1, *spec.inputs[s].shape) for s in spec.streams})
    for h in hooks:
        h.remove()
    assert [layer.id for layer in layers[:-1]] == list(dict.fromkeys(seen))
    for layer in layers:
        assert layer.units == layer.shape[0]


def test_a_stream_layer_runs_on_its_own_input(built: tuple[str, nn.Module, ModelSpec]) -> None:
    """The engine passes only the inputs a layer depends on (``partial_inputs``)."""
    _, module, spec = built
    assert getattr(module, "partial_inputs", False)
    for layer in discover_layers(module, spec):
        if layer.stream == "fusion":
            continue
        with probe(module, layer.id) as p, torch.no_grad():
            out = p({layer.stream: torch.zeros(1, *spec.inputs[layer.stream].shape)})
        assert tuple(out.shape[1:]) == layer.shape


def test_vgg_has_the_papers_layers() -> None:
    module = two_stream_vgg16(CLASSES, frames=4, fusion_frames=2, size=32, width=0.0625)
    per_stream = [f"conv{b}_{i}" for b, widths in enumerate(VGG16_BLOCKS, 1) for i in range(1, len(widths) + 1)]
    assert per_stream[0] == "conv1_1" and per_stream[-1] == "conv5_3" and len(per_stream) == 13
    assert module.stlens_layers == [f"{s}.{n}" for s in ("appearance", "motion") for n in per_stream] + [
        "fusion.conv",
        "fusion.fc6",
        "fusion.fc7",
    ]


def test_vgg_motion_stream_stacks_each_snippets_flow_on_channels() -> None:
    module = two_stream_vgg16(CLASSES, frames=6, fusion_frames=2, size=32, width=0.0625)
    flow = torch.arange(2 * 6, dtype=torch.float32).view(1, 2, 6, 1, 1).expand(1, 2, 6, 32, 32)
    stacked = module.motion_snippets(flow)[0, :, :, 0, 0]  # (2L, K)
    # snippet 0 holds frames 0..2 as x0, y0, x1, y1, x2, y2; x is flow[0, 0, t] = t, y is 6 + t
    assert stacked[:, 0].tolist() == [0, 6, 1, 7, 2, 8]
    assert stacked[:, 1].tolist() == [3, 9, 4, 10, 5, 11]
    assert module.appearance_snippets(flow[:, :1].expand(1, 3, 6, 32, 32))[0, 0, :, 0, 0].tolist() == [1, 4]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": 5, "fusion_frames": 2}, "equal snippets"),
        ({"size": 40}, "multiple of 16"),
        ({"fusion_frames": 1, "frames": 4}, "equal snippets"),
    ],
)
def test_vgg_rejects_sizes_it_cannot_fuse(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        two_stream_vgg16(CLASSES, **{"frames": 4, "fusion_frames": 2, "size": 32, "width": 0.0625, **kwargs})


def test_resnet50_has_the_resnet50_depth_and_a_small_variant() -> None:
    full = SpatiotemporalResNet(CLASSES, base_width=4)  # ResNet-50's blocks at a tiny width
    assert [len(stage) for stage in full.appearance.stages] == [3, 4, 6, 3]
    assert full.appearance.out_channels == 4 * 8 * 4
    with pytest.raises(ValueError, match="four stages"):
        SpatiotemporalResNet(CLASSES, blocks=(1, 1, 1))


def test_the_engine_visualises_a_unit_of_each_stream_kind(built: tuple[str, nn.Module, ModelSpec]) -> None:
    """Two optimisation steps on a stream layer and on the logits: only the inputs they depend on come back."""
    name, module, spec = built
    model = prepare(ModelEntry(spec=spec, build=lambda: module), torch.device("cpu"))
    stream_layer = next(layer for layer in model.layers if layer.stream == "motion")
    for layer, inputs in ((stream_layer.id, {"motion"}), (LOGITS, {"appearance", "motion"})):
        result = visualize(model, layer, 1, VisualizationSettings(steps=2))
        assert set(result.inputs) == inputs, (name, layer)
        assert all(np.isfinite(clip).all() for clip in result.inputs.values())
