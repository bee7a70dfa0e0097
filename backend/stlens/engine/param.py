"""Parameterisations: the learnable tensors behind a clip, and the map to display space.

A clip is (B, C, T, H, W). A *basis* turns the learnable tensor into an unconstrained signal
(pixels directly, or a spectrum over space AND time); an *output map* turns that signal into
display space: RGB in [0, 1] through decorrelated colour and a sigmoid, flow in pixels with its
vectors' length squashed below FLOW_BOUND model-space units (never colour-decorrelated: its two
channels are a vector, not correlated colours). Bounding both in the parameterisation keeps
every unit's result in the data's range whatever the scale of its objective; the norm penalty
only shapes it inside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from ..models.spec import InputSpec, Stream

ParamKind = Literal["pixel", "fourier"]

INIT_SD = 0.07  # spread of the starting signal, both bases: near mid-grey RGB and still flow, but
# uneven enough that ReLU units deep in a network are alive (a flatter start can leave them dead)
FLOW_BOUND = 3.0  # |flow| / scale stays below this: about the range of normalised training flow

# Square root of the colour covariance of natural images (ImageNet statistics, as in Lucid's
# feature visualisation): optimising in its coordinates makes the colour channels independent.
_COLOR_CORRELATION_SQRT = torch.tensor(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float32
)
COLOR_DECORRELATION = _COLOR_CORRELATION_SQRT / _COLOR_CORRELATION_SQRT.norm(dim=0).max()

TIME_DECAY = 2.0  # amplitude falls as (1 + cycles per clip)^-2: few frames, mostly slow change


def spacetime_scale(frames: int, height: int, width: int, decay: float = 1.0) -> torch.Tensor:
    """Amplitude of each rfftn coefficient of a (T, H, W) clip: 1/|f|^decay in space (f in cycles
    per pixel, as natural images) times a steep fall-off in temporal frequency, so a clip starts
    and stays smooth in time unless the unit asks for change. Lowest frequencies get sqrt(N)."""
    fy = torch.fft.fftfreq(height).view(-1, 1)
    fx = torch.fft.rfftfreq(width).view(1, -1)
    lowest = 1.0 / max(height, width)
    space = (lowest / torch.sqrt(fy**2 + fx**2).clamp(min=lowest)) ** decay
    cycles_per_clip = torch.fft.fftfreq(frames).abs().view(-1, 1, 1) * frames
    time = (1 + cycles_per_clip) ** -TIME_DECAY
    return space * time * math.sqrt(frames * height * width)


class PixelBasis(nn.Module):
    """One free value per pixel and frame."""

    def __init__(self, init: torch.Tensor):
        super().__init__()
        self.raw = nn.Parameter(init)

    def forward(self) -> torch.Tensor:
        return self.raw


class FourierBasis(nn.Module):
    """A spectrum over (T, H, W) scaled by :func:`spacetime_scale`.

    With the scaling an Adam step moves each frequency in proportion to its share in natural
    video, so clips come out smooth in space and time from the parameterisation itself, not only
    from penalties. The scale is sqrt(N) at the lowest frequencies, so a step moves the clip's
    mean as much as a pixel step moves a pixel and one learning rate suits both bases. The FFT
    always runs in float32.
    """

    def __init__(self, init: torch.Tensor, shape: tuple[int, int, int], decay: float = 1.0):
        """``init``: white noise of the signal's starting spread, (B, C, T, H, W // 2 + 1, 2)."""
        super().__init__()
        scale = spacetime_scale(*shape, decay=decay).to(init.device)
        self.register_buffer("scale", scale, persistent=False)
        self.shape = shape
        self.spectrum = nn.Parameter(init / scale.square().mean().sqrt())  # same spread after scaling

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        return torch.fft.irfftn(spectrum, s=self.shape, dim=(-3, -2, -1), norm="ortho")


def _bound_vectors(signal: torch.Tensor, bound: float) -> torch.Tensor:
    """Squash each (x, y) vector's length through bound * tanh(length / bound), keeping its
    direction (a per-component bound would bend saturated flow towards the diagonals)."""
    length = signal.square().sum(1, keepdim=True).add(1e-12).sqrt()
    return signal * (torch.tanh(length / bound) * bound / length)


class ClipParam(nn.Module):
    """A batch of clips of one stream; ``forward()`` returns them in display space."""

    def __init__(self, basis: nn.Module, stream: Stream, spec: InputSpec):
        super().__init__()
        self.basis = basis
        self.stream = stream
        device = next(basis.parameters()).device
        self.colour = COLOR_DECORRELATION.to(device) if stream == "appearance" and spec.channels == 3 else None
        self.flow_px = spec.scale or 1.0  # near zero, one unit of signal = one model-space unit of flow

    def forward(self) -> torch.Tensor:
        signal = self.basis()
        if self.stream == "motion":
            return _bound_vectors(signal, FLOW_BOUND) * self.flow_px
        if self.colour is not None:
            signal = (self.colour @ signal.flatten(2)).view_as(signal)  # mix the channels at every pixel
        return torch.sigmoid(signal)


def _init(shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device) -> torch.Tensor:
    """Per batch item noise from that item's own generator, so an item's start depends only on its seed."""
    noise = [torch.randn(*shape, generator=g) * INIT_SD for g in generators]
    return torch.stack(noise).to(device)


def clip_param(
    kind: ParamKind,
    stream: Stream,
    spec: InputSpec,
    generators: Sequence[torch.Generator],
    device: torch.device,
) -> ClipParam:
    """A parameterised batch of ``len(generators)`` clips of ``stream``'s input shape."""
    channels, frames, height, width = spec.shape
    if kind == "pixel":
        basis: nn.Module = PixelBasis(_init((channels, frames, height, width), generators, device))
    elif kind == "fourier":
        init = _init((channels, frames, height, width // 2 + 1, 2), generators, device)
        basis = FourierBasis(init, (frames, height, width))
    else:
        raise ValueError(f"unknown parameterisation {kind!r}")
    return ClipParam(basis, stream, spec)
