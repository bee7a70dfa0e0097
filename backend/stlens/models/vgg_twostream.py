"""Two-stream VGG-16 with conv5 fusion, the network the paper visualises (Feichtenhofer et al. 2016/2020).

The clip of ``frames`` frames is cut into ``fusion_frames`` equal snippets. For each snippet the
appearance stream sees its middle RGB frame and the motion stream its flow fields stacked on
channels (x1, y1, x2, y2, ...). Both streams are VGG-16 conv1_1 .. conv5_3, run per snippet
(kernels 1x3x3, so the time axis stays in the tensor and every layer has a (C, T, H, W) output).
conv5_3 of both streams is concatenated and fused by a 3x3x3 conv and a 2x2x2 max-pool over the
snippets ("conv5_fusion"), then fc6, fc7 and the class layer.
"""

from __future__ import annotations

import torch
from torch import nn

VGG16_BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
FC_WIDTH = 4096
SPATIAL_STRIDE = 16  # four 2x2 pools before conv5


def _scaled(channels: int, width: float) -> int:
    return max(8, round(channels * width))


class FrameConvReLU(nn.Sequential):
    """A VGG 3x3 conv applied to each snippet separately, then ReLU (the visualised output)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv3d(in_channels, out_channels, (1, 3, 3), padding=(0, 1, 1)), nn.ReLU())


class VGGStream(nn.Module):
    """conv1_1 .. conv5_3 of VGG-16 with 2x2 max-pools between the blocks (no pool5: fusion follows)."""

    def __init__(self, in_channels: int, width: float = 1.0):
        super().__init__()
        channels = in_channels
        for block, widths in enumerate(VGG16_BLOCKS, start=1):
            if block > 1:
                self.add_module(f"pool{block - 1}", nn.MaxPool3d((1, 2, 2)))
            for index, out in enumerate(widths, start=1):
                out = _scaled(out, width)
                self.add_module(f"conv{block}_{index}", FrameConvReLU(channels, out))
                channels = out
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self.children():
            x = child(x)
        return x

    def layer_names(self) -> list[str]:
        return [name for name, _ in self.named_children() if name.startswith("conv")]


class Conv5Fusion(nn.Module):
    """3D conv + 3D max-pool over the concatenated conv5_3 features, then fc6, fc7 and the classes."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pooled: tuple[int, int, int],
        hidden: int,
        num_classes: int,
        dropout: float,
    ):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv3d(in_channels, out_channels, 3, padding=1), nn.ReLU())
        self.pool = nn.MaxPool3d(2)
        self.fc6 = nn.Sequential(nn.Linear(out_channels * pooled[0] * pooled[1] * pooled[2], hidden), nn.ReLU())
        self.fc7 = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU())
        self.fc8 = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv(x)).flatten(1)
        return self.fc8(self.fc7(self.fc6(x)))


class TwoStreamVGG16(nn.Module):
    """Appearance and motion VGG-16 streams fused at conv5 (see the module docstring)."""

    partial_inputs = True

    def __init__(
        self,
        num_classes: int,
        frames: int = 20,
        fusion_frames: int = 4,
        size: int = 224,
        width: float = 1.0,
        dropout: float = 0.5,
    ):
        super().__init__()
        if fusion_frames < 2 or frames % fusion_frames:
            raise ValueError(f"frames ({frames}) must split into fusion_frames ({fusion_frames}) >= 2 equal snippets")
        if size % SPATIAL_STRIDE or size < 2 * SPATIAL_STRIDE:
            raise ValueError(f"size must be a multiple of {SPATIAL_STRIDE}, at least {2 * SPATIAL_STRIDE}; got {size}")
        self.frames, self.fusion_frames, self.size = frames, fusion_frames, size
        self.snippet = frames // fusion_frames
        self.appearance = VGGStream(3, width)
        self.motion = VGGStream(2 * self.snippet, width)
        conv5 = self.appearance.out_channels
        side = size // SPATIAL_STRIDE // 2
        self.fusion = Conv5Fusion(
            2 * conv5, conv5, (fusion_frames // 2, side, side), _scaled(FC_WIDTH, width), num_classes, dropout
        )
        self.stlens_layers = [f"{s}.{n}" for s in ("appearance", "motion") for n in self.appearance.layer_names()]
        self.stlens_layers += ["fusion.conv", "fusion.fc6", "fusion.fc7"]  # fusion.fc8 is the logits

    def _check(self, x: torch.Tensor, channels: int) -> None:
        expected = (channels, self.frames, self.size, self.size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected input (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")

    def appearance_snippets(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) -> (N, 3, K, H, W): the middle frame of each snippet."""
        self._check(rgb, 3)
        middle = torch.arange(self.fusion_frames, device=rgb.device) * self.snippet + self.snippet // 2
        return rgb.index_select(2, middle)

    def motion_snippets(self, flow: torch.Tensor) -> torch.Tensor:
        """(N, 2, T, H, W) -> (N, 2L, K, H, W): each snippet's L flow fields stacked as x1, y1, x2, y2, ..."""
        self._check(flow, 2)
        n, c, _, h, w = flow.shape
        stacked = flow.reshape(n, c, self.fusion_frames, self.snippet, h, w).permute(0, 3, 1, 2, 4, 5)
        return stacked.reshape(n, self.snippet * c, self.fusion_frames, h, w)

    def forward(self, appearance: torch.Tensor | None = None, motion: torch.Tensor | None = None) -> torch.Tensor:
        a = self.appearance(self.appearance_snippets(appearance)) if appearance is not None else None
        m = self.motion(self.motion_snippets(motion)) if motion is not None else None
        if a is None or m is None:
            raise ValueError("the fusion layers and the class logits need both streams")
        return self.fusion(torch.cat([a, m], dim=1))


def two_stream_vgg16(
    num_classes: int, frames: int = 20, fusion_frames: int = 4, size: int = 224, width: float = 1.0
) -> TwoStreamVGG16:
    """The paper's network; ``width`` < 1 scales every layer's channels for a CPU-sized variant."""
    return TwoStreamVGG16(num_classes, frames=frames, fusion_frames=fusion_frames, size=size, width=width)
