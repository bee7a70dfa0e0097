"""Spatiotemporal residual network (Feichtenhofer, Pinz, Wildes, NIPS 2016): two ResNet-50 streams
with residual connections from the motion stream into the appearance stream.

Each stream is a ResNet-50 run over every frame (spatial kernels 1xkxk) with temporal 3x1x1
kernels in the first conv of the bottlenecks of the later stages. At the start of each stage the
motion stream's features are added into the residual branch of the appearance stream's first
block, ``x_a <- x_a + F(x_a + x_m)``, so the appearance stream from there on is a fusion of both.
Each stream ends in its own classifier; the class logits are their sum.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .heads import PooledHead

RESNET50_BLOCKS = (3, 4, 6, 3)
EXPANSION = 4


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck in 3D; ``cross`` is added to the residual branch's input only."""

    def __init__(self, in_channels: int, width: int, stride: int, temporal: bool):
        super().__init__()
        kt = 3 if temporal else 1
        out_channels = width * EXPANSION
        self.conv1 = nn.Conv3d(in_channels, width, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = nn.Conv3d(width, width, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = nn.Conv3d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x: torch.Tensor, cross: torch.Tensor | None = None) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = x if cross is None else x + cross
        out = self.relu(self.bn1(self.conv1(out)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetStream(nn.Module):
    """One ResNet-50 stream: stem, max-pool, layer1 .. layer4 of bottlenecks, per frame."""

    def __init__(
        self, in_channels: int, stem_frames: int, base_width: int, blocks: Sequence[int], temporal_stages: Sequence[int]
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(
                in_channels,
                base_width,
                (stem_frames, 7, 7),
                stride=(1, 2, 2),
                padding=(stem_frames // 2, 3, 3),
                bias=False,
            ),
            nn.BatchNorm3d(base_width),
            nn.ReLU(),
        )
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        channels = base_width
        self.stages = nn.ModuleList()
        for stage, count in enumerate(blocks, start=1):
            width = base_width * 2 ** (stage - 1)
            layer = nn.ModuleList()
            for index in range(count):
                stride = 2 if stage > 1 and index == 0 else 1
                layer.append(Bottleneck(channels, width, stride, temporal=stage in temporal_stages))
                channels = width * EXPANSION
            self.stages.append(layer)
        self.out_channels = channels

    def forward(
        self, x: torch.Tensor, cross: Sequence[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns the stream's output and each stage's input (what the other stream adds in)."""
        x = self.pool(self.stem(x))
        stage_inputs = []
        for stage, layer in enumerate(self.stages):
            stage_inputs.append(x)
            first, *rest = layer.children()
            x = first(x, cross[stage] if cross is not None else None)
            for block in rest:
                x = block(x)
        return x, stage_inputs

    def layer_names(self) -> list[str]:
        blocks = [f"stages.{s}.{b}" for s, layer in enumerate(self.stages) for b, _ in enumerate(layer.children())]
        return ["stem", *blocks]


class SpatiotemporalResNet(nn.Module):
    """Two ResNet streams, motion-to-appearance connections at every stage, summed class logits."""

    partial_inputs = True

    def __init__(
        self,
        num_classes: int,
        blocks: Sequence[int] = RESNET50_BLOCKS,
        base_width: int = 64,
        flow_stack: int = 5,
        temporal_stages: Sequence[int] = (3, 4),
        dropout: float = 0.5,
    ):
        super().__init__()
        if len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"blocks must give four stages of at least one block each, got {tuple(blocks)}")
        if flow_stack < 1 or flow_stack % 2 == 0:
            raise ValueError(f"flow_stack must be odd and positive (a centred temporal kernel), got {flow_stack}")
        self.appearance = ResNetStream(3, 1, base_width, blocks, temporal_stages)
        self.motion = ResNetStream(2, flow_stack, base_width, blocks, temporal_stages)
        self.appearance_head = PooledHead(self.appearance.out_channels, num_classes, dropout, pool="mean")
        self.motion_head = PooledHead(self.motion.out_channels, num_classes, dropout, pool="mean")
        self.stlens_layers = [f"{s}.{n}" for s in ("appearance", "motion") for n in self.appearance.layer_names()]
        self.stlens_layers += ["appearance_head.fc", "motion_head.fc"]

    def forward(self, appearance: torch.Tensor | None = None, motion: torch.Tensor | None = None) -> torch.Tensor:
        if motion is None:
            if appearance is not None:
                # Alone, appearance reaches only the stem (a layer probe stops there); every later
                # appearance layer comes after a cross connection and needs the motion stream.
                self.appearance.stem(appearance)
            raise ValueError("only the appearance stem runs without the motion stream")
        m, motion_stage_inputs = self.motion(motion)
        motion_logits = self.motion_head(m)
        if appearance is None:
            raise ValueError("the appearance stream and the class logits need both streams")
        a, _ = self.appearance(appearance, motion_stage_inputs)
        return self.appearance_head(a) + motion_logits


def spatiotemporal_resnet50(num_classes: int, flow_stack: int = 5) -> SpatiotemporalResNet:
    """Two full ResNet-50 streams, as in the paper."""
    return SpatiotemporalResNet(num_classes, RESNET50_BLOCKS, base_width=64, flow_stack=flow_stack)


def spatiotemporal_resnet_small(num_classes: int, base_width: int = 16, flow_stack: int = 3) -> SpatiotemporalResNet:
    """The same design at one bottleneck a stage and a quarter of the width, for a CPU."""
    return SpatiotemporalResNet(num_classes, (1, 1, 1, 1), base_width=base_width, flow_stack=flow_stack)
