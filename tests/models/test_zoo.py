"""The zoo lists instantly, builds lazily, and each CPU-sized entry runs at its declared inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models import video as tv
from torchvision.models.video.mvit import MSBlockConfig, MViT

from stlens.engine import visualize
from stlens.engine.settings import VisualizationSettings
from stlens.models import zoo
from stlens.models.introspect import discover_layers
from stlens.models.registry import ModelRegistry, prepare
from stlens.models.spec import LOGITS, InputSpec, ModelSpec
from stlens.models.torchvision_video import VIDEO_ARCHITECTURES, VideoArchitecture, VideoClassifier, tokens_to_volume

SMALL_IDS = [
    "vgg16-twostream-small",
    "st-resnet-small",
    "i3d-kinetics400",
    "tv-r3d_18",
    "tv-mc3_18",
    "tv-r2plus1d_18",
    "tv-swin3d_t",
]
HEAVY_IDS = ["vgg16-twostream", "st-resnet50", "i3d-kinetics400-full", "tv-s3d", "tv-mvit_v2_s"]


def test_listing_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("listing the zoo built a model")

    for name in ("two_stream_i3d", "two_stream_vgg16", "spatiotemporal_resnet_small", "spatiotemporal_resnet50"):
        monkeypatch.setattr(zoo, name, refuse)
    monkeypatch.setattr(VideoArchitecture, "build", refuse)
    assert [e.spec.id for e in zoo.zoo_entries()] == SMALL_IDS
    assert sorted(e.spec.id for e in zoo.zoo_entries(include_heavy=True)) == sorted(SMALL_IDS + HEAVY_IDS)


def test_small_entries_are_cpu_sized_and_say_their_weights_are_random() -> None:
    for entry in zoo.zoo_entries():
        assert "random weights" in entry.spec.title
        for spec in entry.spec.inputs.values():
            assert spec.frames <= 8 and spec.height <= 112 and spec.width <= 112


@pytest.mark.parametrize("model_id", SMALL_IDS)
def test_each_small_entry_runs_at_its_declared_inputs(model_id: str) -> None:
    registry = ModelRegistry(zoo.zoo_entries(), torch.device("cpu"), max_resident=1)
    model = registry.get(model_id)
    spec = model.spec
    with torch.no_grad():
        logits = model.module(
            **{s: spec.inputs[s].to_model(torch.rand(1, *spec.inputs[s].shape)) for s in spec.streams}
        )
    assert logits.shape == (1, spec.num_classes)
    assert model.layers[-1].id == LOGITS and len(model.layers) > 3
    expected = {"appearance", "motion", "fusion"} if len(spec.streams) == 2 else {"appearance"}
    assert {layer.stream for layer in model.layers} == expected
    for layer in model.layers:
        assert len(layer.shape) in (1, 4) and layer.units == layer.shape[0]


def test_random_weights_are_seeded_so_ids_are_stable() -> None:
    (entry,) = [e for e in zoo.zoo_entries() if e.spec.id == "st-resnet-small"]
    first, second = entry.build(), entry.build()
    assert all(
        torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )


def test_a_trained_checkpoint_of_our_own_architectures_is_picked_up(cache_dir) -> None:
    (entry,) = [e for e in zoo.zoo_entries() if e.spec.id == "st-resnet-small"]
    trained = zoo.spatiotemporal_resnet_small(3)
    cache_dir.mkdir()
    torch.save(trained.state_dict(), cache_dir / "st-resnet-small.pt")
    (cache_dir / "st-resnet-small.labels.txt").write_text("a\nb\nc\n")
    (entry,) = [e for e in zoo.zoo_entries() if e.spec.id == "st-resnet-small"]
    assert entry.spec.labels == ("a", "b", "c") and "trained" in entry.spec.title
    assert torch.equal(entry.build().motion_head.fc.weight, trained.motion_head.fc.weight)


def test_transformer_blocks_are_shown_as_volumes() -> None:
    """MViT keeps tokens (class token first); its blocks' views are (N, C, T, H, W)."""
    torch.manual_seed(0)
    blocks = [
        MSBlockConfig(1, 96, 96, [3, 3, 3], [3, 3, 3], [1, 1, 1], [1, 4, 4]),
        MSBlockConfig(2, 96, 192, [3, 3, 3], [3, 3, 3], [1, 2, 2], [1, 2, 2]),
    ]
    # mvit_v2_s's design at two blocks and 4 x 32 x 32 (the builder fixes 16 x 224 x 224)
    net = MViT(
        (32, 32),
        4,
        blocks,
        residual_pool=True,
        residual_with_cls_embed=False,
        rel_pos_embed=True,
        proj_after_attn=True,
        num_classes=3,
    )
    arch = next(a for a in VIDEO_ARCHITECTURES if a.name == "mvit_v2_s")
    layers, views = arch.layers(net)
    model = VideoClassifier(net, layers, views).eval()
    spec = ModelSpec(
        id="mvit",
        title="mvit",
        inputs={"appearance": InputSpec(channels=3, frames=4, height=32, width=32)},
        labels=("a", "b", "c"),
    )
    found = discover_layers(model, spec)
    assert [layer.id for layer in found] == ["appearance.conv_proj", "views.block0", "views.block1", LOGITS]
    assert found[1].shape == (96, 2, 8, 8) and found[2].shape == (192, 2, 4, 4)
    tokens = torch.arange(2 * 5 * 3.0).view(1, 10, 3)[:, :5]  # class token + a 1x2x2 grid of 3 channels
    assert tokens_to_volume((tokens, [1, 2, 2]))[0, :, 0].tolist() == [
        [[3, 6], [9, 12]],
        [[4, 7], [10, 13]],
        [[5, 8], [11, 14]],
    ]


def test_s3d_layers_skip_the_pools() -> None:
    arch = next(a for a in VIDEO_ARCHITECTURES if a.name == "s3d")
    layers, views = arch.layers(tv.s3d())
    assert views == {} and layers == [f"features.{i}" for i in (0, 2, 3, 5, 6, 8, 9, 10, 11, 12, 14, 15)]


@pytest.mark.parametrize("model_id", HEAVY_IDS)
def test_each_heavy_entry_fits_its_declared_inputs(model_id: str) -> None:
    """Built on the meta device: shapes and the autograd graph without memory or computation."""
    (entry,) = [e for e in zoo.zoo_entries(include_heavy=True) if e.spec.id == model_id]
    with torch.device("meta"):
        layers = discover_layers(entry.build().eval(), entry.spec, "meta")
    assert layers[-1].id == LOGITS and layers[-1].units == entry.spec.num_classes
    expected = {"appearance", "motion", "fusion"} if len(entry.spec.streams) == 2 else {"appearance"}
    assert {layer.stream for layer in layers} == expected


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["tv-s3d", "tv-mvit_v2_s"])
def test_full_size_only_models_run_and_visualise_for_real(model_id: str) -> None:
    """S3D and MViT run only at 16 x 224: a real dry run and one engine step at that size, on the CPU."""
    (entry,) = [e for e in zoo.zoo_entries(include_heavy=True) if e.spec.id == model_id]
    model = prepare(entry, torch.device("cpu"))
    assert model.layers[-1].id == LOGITS and {layer.stream for layer in model.layers} == {"appearance"}
    first = model.layers[0]  # the forward pass stops there: one step stays cheap
    result = visualize(model, first.id, first.units - 1, VisualizationSettings(steps=1))
    assert result.inputs["appearance"].shape == (1, 16, 224, 224, 3)
    assert np.isfinite(result.objective[0])
