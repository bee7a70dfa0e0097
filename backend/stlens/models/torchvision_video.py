"""torchvision's Kinetics-400 video classifiers as single-stream (appearance) models.

The torchvision module becomes the ``appearance`` submodule, so its state dict keys, and so its
published checkpoints, are unchanged apart from that prefix. Transformers (MViT, Swin3D) keep
their features as tokens or channels-last; a :class:`VolumeView` fed by a forward hook shows
each block's output as an (N, C, T, H, W) volume, so every layer is visualised the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn
from torchvision.models import WeightsEnum
from torchvision.models import video as tv

from .downloads import Checkpoint
from .seeded import seeded

VolumeConvert = Callable[[Any], torch.Tensor]


def tokens_to_volume(output: tuple[torch.Tensor, list[int]]) -> torch.Tensor:
    """MViT block output ``(tokens (N, 1 + T*H*W, C), (T, H, W))`` -> (N, C, T, H, W), class token dropped."""
    tokens, thw = output
    return tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *thw)


def channels_last_to_volume(output: torch.Tensor) -> torch.Tensor:
    """Swin3D stage output (N, T, H, W, C) -> (N, C, T, H, W)."""
    return output.permute(0, 4, 1, 2, 3)


class VolumeView(nn.Module):
    """A parameter-free view of another module's output; its own output exists for layer probes."""

    def __init__(self, convert: VolumeConvert):
        super().__init__()
        self.convert = convert

    def forward(self, output: object) -> torch.Tensor:
        return self.convert(output)


def _feeder(view: VolumeView) -> Callable[[nn.Module, object, object], None]:
    """A forward hook that passes a module's output to ``view`` and leaves the output unchanged."""

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        view(output)

    return hook


class VideoClassifier(nn.Module):
    """``forward(appearance=(N, 3, T, H, W))`` -> logits, around a torchvision video classifier."""

    def __init__(self, net: nn.Module, layers: list[str], views: dict[str, tuple[str, VolumeConvert]]):
        super().__init__()
        self.appearance = net
        self.views = nn.ModuleDict()
        modules = dict(net.named_modules())
        for name, (source, convert) in views.items():
            view = VolumeView(convert)
            self.views[name] = view
            modules[source].register_forward_hook(_feeder(view))
        self.stlens_layers = [f"appearance.{n}" for n in layers] + [f"views.{n}" for n in views]

    def forward(self, appearance: torch.Tensor) -> torch.Tensor:
        return self.appearance(appearance)


def _resnet3d_layers(net: nn.Module) -> tuple[list[str], dict[str, tuple[str, VolumeConvert]]]:
    blocks = [f"layer{i}.{b}" for i in range(1, 5) for b in range(len(getattr(net, f"layer{i}")))]
    return ["stem", *blocks], {}


def _s3d_layers(net: nn.Module) -> tuple[list[str], dict[str, tuple[str, VolumeConvert]]]:
    features = net.get_submodule("features").named_children()
    return [f"features.{n}" for n, m in features if not isinstance(m, nn.MaxPool3d)], {}


def _mvit_layers(net: nn.Module) -> tuple[list[str], dict[str, tuple[str, VolumeConvert]]]:
    blocks = net.get_submodule("blocks").children()
    views: dict[str, tuple[str, VolumeConvert]] = {
        f"block{i}": (f"blocks.{i}", tokens_to_volume) for i, _ in enumerate(blocks)
    }
    return ["conv_proj"], views


def _swin3d_layers(net: nn.Module) -> tuple[list[str], dict[str, tuple[str, VolumeConvert]]]:
    views: dict[str, tuple[str, VolumeConvert]] = {"patch_embed": ("patch_embed", channels_last_to_volume)}
    stages = [n for n, m in net.get_submodule("features").named_children() if isinstance(m, nn.Sequential)]
    views |= {f"stage{k + 1}": (f"features.{n}", channels_last_to_volume) for k, n in enumerate(stages)}
    return [], views


@dataclass(frozen=True)
class VideoArchitecture:
    """One torchvision video classifier: its builder, Kinetics-400 weights, input size and layers."""

    name: str
    title: str
    builder: Callable[..., nn.Module]
    weights: WeightsEnum
    frames: int
    size: int
    layers: Callable[[nn.Module], tuple[list[str], dict[str, tuple[str, VolumeConvert]]]]
    heavy: bool

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint.from_url(self.weights.url)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.weights.meta["categories"])

    @property
    def mean(self) -> tuple[float, float, float]:
        return tuple(self.weights.transforms().mean)  # type: ignore[return-value]

    @property
    def std(self) -> tuple[float, float, float]:
        return tuple(self.weights.transforms().std)  # type: ignore[return-value]

    def build(self, state_dict: dict[str, torch.Tensor] | None = None) -> VideoClassifier:
        """The classifier with the given Kinetics-400 state dict (strict), or seeded random weights."""
        net = seeded(partial(self.builder, weights=None, num_classes=len(self.labels)))
        if state_dict is not None:
            net.load_state_dict(state_dict, strict=True)
        layers, views = self.layers(net)
        return VideoClassifier(net, layers, views)


# Input sizes: the 18-layer ResNets were trained at 112 px and convolve any clip length, so 8
# frames keep them interactive on a CPU; Swin3D pads to its windows and runs at 112 px too.
# S3D (VALID 2x7x7 pool) and MViT (fixed positional grid) need their training size, 16 x 224.
VIDEO_ARCHITECTURES: tuple[VideoArchitecture, ...] = (
    VideoArchitecture("r3d_18", "R3D-18", tv.r3d_18, tv.R3D_18_Weights.KINETICS400_V1, 8, 112, _resnet3d_layers, False),
    VideoArchitecture("mc3_18", "MC3-18", tv.mc3_18, tv.MC3_18_Weights.KINETICS400_V1, 8, 112, _resnet3d_layers, False),
    VideoArchitecture(
        "r2plus1d_18",
        "R(2+1)D-18",
        tv.r2plus1d_18,
        tv.R2Plus1D_18_Weights.KINETICS400_V1,
        8,
        112,
        _resnet3d_layers,
        False,
    ),
    VideoArchitecture(
        "swin3d_t", "Swin3D-T", tv.swin3d_t, tv.Swin3D_T_Weights.KINETICS400_V1, 8, 112, _swin3d_layers, False
    ),
    VideoArchitecture("s3d", "S3D", tv.s3d, tv.S3D_Weights.KINETICS400_V1, 16, 224, _s3d_layers, True),
    VideoArchitecture(
        "mvit_v2_s", "MViT-v2-S", tv.mvit_v2_s, tv.MViT_V2_S_Weights.KINETICS400_V1, 16, 224, _mvit_layers, True
    ),
)
