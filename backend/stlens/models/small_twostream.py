"""Small two-stream 3D conv nets that train and visualise quickly on a CPU.

Two variants, as in the paper's comparison of where to fuse:
- late fusion: each stream ends in its own classifier and the class logits are summed
  (the streams meet only at the logits, like two-stream I3D);
- conv fusion: the conv3 features of both streams are concatenated and a 3D conv + 3D pooling
  fuses them (the paper's "conv5 fusion", scaled down), followed by fc layers.

As in the paper's two-stream VGG-16, the appearance stream sees one frame at a time (its kernels span
one frame) and only the motion stream and the fusion layers combine time steps; so appearance units
respond to what is in a frame, and anything about motion comes from the flow or from fusion.
Both towers keep all 8 time steps, so every input frame gets a gradient in every layer.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .heads import PooledHead

FRAMES = 8
SIZE = 64
APPEARANCE_MEAN = (0.45, 0.45, 0.45)
APPEARANCE_STD = (0.225, 0.225, 0.225)
FLOW_SCALE = 4.0  # flow pixels -> model input; synthetic motion is a few pixels a frame at 64 px


class ConvBlock(nn.Sequential):
    """Conv3d + BatchNorm + ReLU; the block's output (after the ReLU) is the visualised layer."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        padding = (kernel[0] // 2, kernel[1] // 2, kernel[2] // 2)
        super().__init__(
            nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm3d(cout),
            nn.ReLU(inplace=False),
        )


class StreamTower(nn.Module):
    """conv1 .. conv3 of one stream: (N, C, 8, 64, 64) -> (N, 64, 8, 8, 8).

    ``temporal=False`` gives every kernel a temporal extent of 1 (a per-frame 2D net).
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int] = (16, 32, 64), temporal: bool = True):
        super().__init__()
        w1, w2, w3 = widths
        kt = 3 if temporal else 1
        self.conv1 = ConvBlock(in_channels, w1, (kt, 5, 5), (1, 2, 2))
        self.conv2 = ConvBlock(w1, w2, (kt, 3, 3), (1, 2, 2))
        self.conv3 = ConvBlock(w2, w3, (kt, 3, 3), (1, 2, 2))
        self.out_channels = w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))


def late_fusion_head(channels: int, num_classes: int, dropout: float) -> PooledHead:
    """Global max-pool one stream's features and classify them.

    Max, not mean: the actor fills a small part of the clip, and a mean over all positions dilutes its
    features so much that training stalls (measured: docs/dataset.md).
    """
    return PooledHead(channels, num_classes, dropout, pool="max")


class ConvFusion(nn.Module):
    """3D conv over the concatenated stream features, global 3D max-pool, then fc6/fc7-style layers.

    The fusion conv is strided ((N, 2C, 8, 8, 8) -> (N, width, 4, 4, 4)): at full resolution it would cost
    more than both towers together.
    """

    def __init__(self, channels: int, num_classes: int, width: int, hidden: int, dropout: float):
        super().__init__()
        self.conv = ConvBlock(channels, width, (3, 3, 3), (2, 2, 2))
        self.fc6 = nn.Linear(width, hidden)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).amax(dim=(2, 3, 4))
        return self.fc(self.dropout(self.relu(self.fc6(x))))


class SmallTwoStream(nn.Module):
    """A two-stream net on 8 frames of 64x64 RGB and 8 flow fields.

    ``forward`` accepts either stream alone (``partial_inputs``); the logits need both.
    """

    partial_inputs = True

    def __init__(
        self,
        num_classes: int,
        fusion: Literal["late", "conv"] = "conv",
        widths: tuple[int, int, int] = (16, 32, 64),
        fusion_width: int = 64,
        hidden: int = 64,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.fusion_kind = fusion
        self.appearance = StreamTower(3, widths, temporal=False)
        self.motion = StreamTower(2, widths, temporal=True)
        channels = self.appearance.out_channels
        if fusion == "late":
            self.appearance_head = late_fusion_head(channels, num_classes, dropout)
            self.motion_head = late_fusion_head(channels, num_classes, dropout)
        elif fusion == "conv":
            self.fusion = ConvFusion(2 * channels, num_classes, fusion_width, hidden, dropout)
        else:
            raise ValueError(f"unknown fusion {fusion!r}")
        self.stlens_layers = [f"{s}.conv{i}" for s in ("appearance", "motion") for i in (1, 2, 3)]
        if fusion == "late":
            self.stlens_layers += ["appearance_head.fc", "motion_head.fc"]
        else:
            self.stlens_layers += ["fusion.conv", "fusion.fc6"]  # fusion.fc is the logits

    def forward(self, appearance: torch.Tensor | None = None, motion: torch.Tensor | None = None) -> torch.Tensor:
        a = self.appearance(appearance) if appearance is not None else None
        m = self.motion(motion) if motion is not None else None
        if self.fusion_kind == "late":
            a = self.appearance_head(a) if a is not None else None
            m = self.motion_head(m) if m is not None else None
        if a is None or m is None:
            raise ValueError("the class logits need both streams")
        if self.fusion_kind == "late":
            return a + m
        return self.fusion(torch.cat([a, m], dim=1))


def small_late_fusion(num_classes: int) -> SmallTwoStream:
    return SmallTwoStream(num_classes, fusion="late")


def small_conv_fusion(num_classes: int) -> SmallTwoStream:
    return SmallTwoStream(num_classes, fusion="conv")


class SmallSingleStream(nn.Module):
    """One tower of :class:`SmallTwoStream` with its own pooled classifier: the appearance-only and
    motion-only baselines that show what each stream can tell apart alone."""

    def __init__(
        self,
        num_classes: int,
        stream: Literal["appearance", "motion"],
        widths: tuple[int, int, int] = (16, 32, 64),
        dropout: float = 0.3,
    ):
        super().__init__()
        if stream not in ("appearance", "motion"):
            raise ValueError(f"unknown stream {stream!r}")
        self.stream = stream
        self.tower = StreamTower(3 if stream == "appearance" else 2, widths, temporal=stream == "motion")
        self.head = late_fusion_head(self.tower.out_channels, num_classes, dropout)

    def forward(self, appearance: torch.Tensor | None = None, motion: torch.Tensor | None = None) -> torch.Tensor:
        x = appearance if self.stream == "appearance" else motion
        if x is None:
            raise ValueError(f"this baseline needs the {self.stream} input")
        return self.head(self.tower(x))


def small_single_stream(num_classes: int, stream: Literal["appearance", "motion"]) -> SmallSingleStream:
    return SmallSingleStream(num_classes, stream)
