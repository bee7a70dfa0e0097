"""Parameterisations: the learnable tensors behind a clip, and the map to display space.

A clip is (B, C, T, H, W). A *basis* turns the learnable tensor into an unconstrained signal
(pixels directly, a free spectrum over space AND time, or only the phases of a spectrum whose
amplitudes are the model's natural ones); an *output map* turns that signal into display space:
RGB in [0, 1] through decorrelated colour and a sigmoid, flow in pixels with its vectors' length
squashed below FLOW_BOUND model-space units (never colour-decorrelated: its two channels are a
vector, not correlated colours). Bounding both in the parameterisation keeps every unit's result in
the data's range whatever the scale of its objective; the norm penalty only shapes it inside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from ..models.spec import InputSpec, Stream
from ..models.spectra import NaturalSpectra

if TYPE_CHECKING:
    from .eigenclips import Eigenclips

ParamKind = Literal["pixel", "fourier", "spectrum", "pca"]

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

    scale: torch.Tensor  # a buffer (register_buffer), declared for the type checker

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


# the pull towards the natural amplitudes that the penalties are weighed against: tv_time 1 (the default)
# shrinks the fastest change by a third, the speed sweep's x100 by 40 times (tests/engine/test_spectrum.py)
NATURAL_PULL = 10.0
# the spectrum and eigenclip bases' clip mean stays within 3 spreads of real clips' means: the flow's in
# length, the colour's in the ellipsoid of real clips' mean colours (NaturalSpectra.mean_colour_factor)
MEAN_RANGE = 3.0


class SpectrumBasis(nn.Module):
    """Phases of a (T, H, W) spectrum whose amplitudes stay near the model's natural ones (MACO in space-time).

    The phase of each coefficient is free; its amplitude may move from the natural one by at most a
    factor ``freedom`` (``log A = log A_natural + log(freedom) tanh(g)``, g learnable), so the clip keeps
    about the power spectrum of the model's training clips and a unit is driven mostly by *where* things
    are, not by piling up texture (``freedom = 1``: phases only, as MACO). Some freedom lets a unit that
    needs it (an oriented edge, a colour) shift energy between frequencies and channels.

    With ``keep_power`` (RGB, where the freedom lets amplitudes rise) each channel's total power is held
    at its natural power, so the freedom can only *move* energy between frequencies: a unit gets contrast
    where it wants it (an edge unit's orientation) but no more contrast overall, which in RGB only pushes
    the clip into the display's bounds. Without it every amplitude rose together and an edge unit's clip
    kept every orientation; capping the power without holding it leant less (docs/engine.md, "The
    oriented edge"). The held level may fall (``fall``), so a unit that wants a flat colour gets one. The
    flow's power is not held: it is speed, which a unit may want.

    The paper's penalties act on the amplitudes through a fixed filter per batch item: with the
    amplitudes (nearly) fixed, a clip's spatial and temporal variation would be (nearly) fixed too and
    ``tv_space`` / ``tv_time`` could do little, so each amplitude is shrunk by
    ``1 / (1 + (tv_time d_t(f) + tv_space d_s(f)) / NATURAL_PULL)``, where d is the power response of the
    difference the penalty squares (4 sin^2(pi f) per axis): the amplitude that minimises the penalty plus
    a pull of weight NATURAL_PULL towards the natural amplitude. A larger ``tv_time`` makes a slower clip,
    as in the paper's sweep; at the default weights the clip keeps nearly the natural spectrum.
    """

    amplitude: torch.Tensor  # buffers (register_buffer), declared for the type checker
    power_share: torch.Tensor
    natural_power: torch.Tensor | None
    fall: nn.Parameter | None

    def __init__(
        self, amplitude: torch.Tensor, phase: torch.Tensor, shape: tuple[int, int, int], weights: torch.Tensor,
        freedom: float, keep_power: bool = False,
    ):
        """``amplitude``: (C, T, H, W // 2 + 1), or one per item (B, C, ...); ``phase``: the starting phases,
        (B, C, T, H, W // 2 + 1); ``weights``: (B, 2) tv_space and tv_time of each item."""
        super().__init__()
        device = phase.device
        self.shape = shape
        filtered = amplitude.to(device) * penalty_filter(shape, weights.to(device))  # (B, C, T, H, W // 2 + 1)
        self.register_buffer("amplitude", filtered, persistent=False)
        # each coefficient's share of the clip's power: the half spectrum holds the columns between the
        # first and the Nyquist one for their conjugates too
        columns = torch.full((filtered.shape[-1],), 2.0, device=device)
        columns[0] = 1.0
        if shape[-1] % 2 == 0:
            columns[-1] = 1.0
        self.register_buffer("power_share", columns, persistent=False)
        self.register_buffer("natural_power", self.power(filtered) if keep_power else None, persistent=False)
        self.phase = nn.Parameter(phase)
        self.log_freedom = math.log(freedom)
        self.gain = nn.Parameter(torch.zeros_like(phase))  # at the natural amplitudes (starting at e^-2 of them
        # and growing transferred worse: docs/faithfulness.md)
        # with the power held, its level may still fall (a flat colour wants less contrast, not a spot to put
        # it in): exp(-l^2) of it, at most 1, never stuck (Adam moves l from its small start either way)
        self.fall = nn.Parameter(torch.full((*phase.shape[:2], 1, 1, 1), 1e-3, device=device)) if keep_power else None

    def forward(self) -> torch.Tensor:
        # log gain: up to log(freedom) above the natural amplitude, without bound below it
        log_gain = torch.where(self.gain > 0, self.log_freedom * torch.tanh(self.gain), self.gain)
        amplitude = self.amplitude * log_gain.exp()
        if self.natural_power is not None and self.fall is not None:  # the power held, or let fall: the
            # freedom moves energy and adds none
            amplitude = amplitude * (self.natural_power / self.power(amplitude)).sqrt() * (-self.fall.square()).exp()
        spectrum = torch.polar(amplitude, self.phase)
        return torch.fft.irfftn(spectrum, s=self.shape, dim=(-3, -2, -1), norm="ortho")

    def power(self, amplitude: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, 1, 1): each item's power per channel (the clip's sum of squares)."""
        return (amplitude.square() * self.power_share).sum(dim=(-3, -2, -1), keepdim=True).clamp(min=1e-12)


class EigenclipBasis(nn.Module):
    """A clip made of the model's eigenclips (stlens.engine.eigenclips) with a real clip's spread: the
    coefficients, in units of the training clips' spread along each component, stay on the sphere of
    radius sqrt(K), where a real clip's whitened coefficients lie; only the direction on it is free,
    as only the phases are in the ``spectrum`` basis.

    The paper's penalties act as they do there: each component's spread is shrunk by
    ``1 / (1 + (tv_time d_t + tv_space d_s) / NATURAL_PULL)``, d being the sum of the squared differences
    the penalty takes of that (unit) component, so a larger ``tv_time`` makes a slower clip; their
    gradients (regularizers.penalty_gradient) act besides, through the span and the sphere."""

    components: torch.Tensor  # buffers (register_buffer), declared for the type checker
    spread: torch.Tensor

    def __init__(
        self, eigenclips: Eigenclips, coefficients: torch.Tensor, shape: tuple[int, ...], weights: torch.Tensor
    ):
        """``coefficients``: the starting directions (B, K); ``shape``: (C, T, H, W); ``weights``: (B, 2)
        tv_space and tv_time of each item."""
        super().__init__()
        d_time, d_space = eigenclips.variation
        weights = weights.to(d_time.device)
        shrink = 1 + (weights[:, 1:2] * d_time + weights[:, 0:1] * d_space) / NATURAL_PULL  # (B, K)
        self.register_buffer("components", eigenclips.components, persistent=False)
        self.register_buffer("spread", eigenclips.spread / shrink, persistent=False)
        self.coefficients = nn.Parameter(coefficients)
        self.shape = shape

    def forward(self) -> torch.Tensor:
        return (self.weighted() @ self.components).view(-1, *self.shape)

    def weighted(self) -> torch.Tensor:
        """(B, K): each component's weight in the clips, the direction on the sphere times the spread."""
        radius = math.sqrt(self.coefficients.shape[1])
        on_sphere = self.coefficients * (radius / self.coefficients.norm(dim=1, keepdim=True).clamp(min=1e-6))
        return on_sphere * self.spread

    @staticmethod
    def together(bases: Sequence[EigenclipBasis]) -> list[torch.Tensor]:
        """Each basis's clips, as ``forward`` makes them, for bases of one set of components in one
        product: the (K, D) components are read once for all, not once a basis (a class of 30 runs
        at the class logits read them 30 times a step: docs/benchmarks.md)."""
        weighted = torch.cat([basis.weighted() for basis in bases])
        signal = (weighted @ bases[0].components).view(-1, *bases[0].shape)
        return list(signal.split([basis.coefficients.shape[0] for basis in bases]))


def penalty_filter(shape: tuple[int, int, int], weights: torch.Tensor) -> torch.Tensor:
    """(B, 1, T, H, W // 2 + 1): 1 / (1 + (tv_time d_t + tv_space d_s) / NATURAL_PULL) for each item's
    (tv_space, tv_time)."""
    frames, height, width = shape
    device = weights.device
    d_t = (4 * torch.sin(math.pi * torch.fft.fftfreq(frames, device=device)) ** 2).view(-1, 1, 1)
    d_y = (4 * torch.sin(math.pi * torch.fft.fftfreq(height, device=device)) ** 2).view(1, -1, 1)
    d_x = (4 * torch.sin(math.pi * torch.fft.rfftfreq(width, device=device)) ** 2).view(1, 1, -1)
    tv_space = weights[:, 0].view(-1, 1, 1, 1, 1)
    tv_time = weights[:, 1].view(-1, 1, 1, 1, 1)
    return 1 / (1 + (tv_time * d_t + tv_space * (d_y + d_x)) / NATURAL_PULL)


def _bound_vectors(signal: torch.Tensor, bound: float) -> torch.Tensor:
    """Squash each (x, y) vector's length through bound * tanh(length / bound), keeping its
    direction (a per-component bound would bend saturated flow towards the diagonals)."""
    length = signal.square().sum(1, keepdim=True).add(1e-12).sqrt()
    return signal * (torch.tanh(length / bound) * bound / length)


RGB_SLOPE = 4.0  # natural-colour RGB: display = sigmoid(RGB_SLOPE * (x - 0.5)), slope 1 at mid-grey


class ClipParam(nn.Module):
    """A batch of clips of one stream; ``forward()`` returns them in display space.

    RGB of the ``pixel`` and ``fourier`` bases is Lucid's decorrelated colour through a sigmoid; RGB of
    the ``spectrum`` basis is the model's own colour statistics: a learnable mean colour plus the
    decorrelated channels mixed by the data's colour matrix, softly bounded to [0, 1].
    """

    # buffers (register_buffer) of the spectrum and eigenclip bases only (mean_factor: of their RGB),
    # declared for the type checker
    natural_mean: torch.Tensor
    mean_factor: torch.Tensor

    def __init__(self, basis: nn.Module, stream: Stream, spec: InputSpec, spectra: NaturalSpectra | None = None):
        super().__init__()
        self.basis = basis
        self.stream = stream
        device = next(basis.parameters()).device
        self.natural = spectra is not None
        self.colour: torch.Tensor | None = None
        if spectra is not None:  # the spectrum basis has no DC: the mean colour / the mean flow are free
            batch = next(basis.parameters()).shape[0]
            if stream == "appearance":
                self.colour = torch.from_numpy(spectra.colour).to(device)
                mean = torch.from_numpy(spectra.mean_colour).to(device).view(1, 3, 1, 1, 1).repeat(batch, 1, 1, 1, 1)
            else:
                mean = torch.zeros(batch, spec.channels, 1, 1, 1, device=device)
            # the mean colour / mean flow moves at most MEAN_RANGE spreads of real clips' means from the data's
            self.register_buffer("natural_mean", mean, persistent=False)
            self.mean_range = MEAN_RANGE * spectra.mean_spread[stream]
            if stream == "appearance":
                # the offset is bounded in length in display units (one spread: mean_spread), then shaped by
                # the covariance of real clips' mean colours; a bound per channel let every channel go its
                # own way and gave whole frames of saturated colour (docs/engine.md)
                factor = torch.from_numpy(spectra.mean_colour_factor()) / spectra.mean_spread["appearance"]
                self.register_buffer("mean_factor", factor.to(device), persistent=False)
            self.mean_offset = nn.Parameter(torch.zeros_like(mean))
        elif stream == "appearance" and spec.channels == 3:
            self.colour = COLOR_DECORRELATION.to(device)
        self.flow_px = spec.scale or 1.0  # near zero, one unit of signal = one model-space unit of flow

    def forward(self) -> torch.Tensor:
        return self.display(self.basis())

    def display(self, signal: torch.Tensor) -> torch.Tensor:
        """The display-space clips of the basis's ``signal`` (what ``forward`` makes of ``self.basis()``)."""
        if self.stream == "motion":
            if self.natural:
                signal = signal + self.mean()
            return _bound_vectors(signal, FLOW_BOUND) * self.flow_px
        if self.colour is not None:
            signal = (self.colour @ signal.flatten(2)).view_as(signal)  # mix the channels at every pixel
        if self.natural:
            return torch.sigmoid(RGB_SLOPE * (signal + self.mean() - 0.5))
        return torch.sigmoid(signal)

    def mean(self) -> torch.Tensor:
        """The clip's mean colour (display units) or mean flow (model space), (B, C, 1, 1, 1): within
        MEAN_RANGE spreads of the data's, in length for the flow vector, in the ellipsoid of real clips'
        mean colours for RGB."""
        offset = _bound_vectors(self.mean_offset, self.mean_range)
        if self.stream == "motion":
            return self.natural_mean + offset
        return self.natural_mean + (self.mean_factor @ offset.flatten(1).T).T.view_as(offset)


def _unbound_vectors(flow: torch.Tensor, bound: float) -> torch.Tensor:
    """The inverse of :func:`_bound_vectors` (lengths kept a little inside the bound)."""
    length = flow.square().sum(1, keepdim=True).add(1e-12).sqrt()
    inside = length.clamp(max=0.98 * bound)
    return flow * (torch.atanh(inside / bound) * bound / length)


START_MARGIN = 0.01  # a start clip's RGB is kept this far inside (0, 1): the sigmoid never reaches the ends


def signal_of(param_kind: ParamKind, stream: Stream, spec: InputSpec, display: torch.Tensor,
              spectra: NaturalSpectra | None) -> torch.Tensor:
    """The unconstrained signal whose output map gives the display-space clip ``display`` (B, C, T, H, W):
    how a visualisation starts from a real clip. For ``spectrum`` RGB it is the decorrelated offset from
    the clip's mean colour plus that mean (the caller splits them)."""
    if stream == "motion":
        return _unbound_vectors(display / (spec.scale or 1.0), FLOW_BOUND)
    rgb = display.clamp(START_MARGIN, 1 - START_MARGIN)
    if param_kind == "spectrum":
        assert spectra is not None
        x = torch.logit(rgb) / RGB_SLOPE + 0.5
        unmix = torch.linalg.inv(torch.from_numpy(spectra.colour).to(rgb))
        return (unmix @ x.flatten(2)).view_as(x)
    logits = torch.logit(rgb)
    if spec.channels == 3:
        logits = (torch.linalg.inv(COLOR_DECORRELATION.to(rgb)) @ logits.flatten(2)).view_as(logits)
    return logits


def _init(shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device) -> torch.Tensor:
    """Per batch item noise from that item's own generator, so an item's start depends only on its seed."""
    noise = [torch.randn(*shape, generator=g) * INIT_SD for g in generators]
    return torch.stack(noise).to(device)


def _random_phase(
    shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device
) -> torch.Tensor:
    phases = [(torch.rand(*shape, generator=g) * 2 - 1) * math.pi for g in generators]
    return torch.stack(phases).to(device)


def clip_param(
    kind: ParamKind,
    stream: Stream,
    spec: InputSpec,
    generators: Sequence[torch.Generator],
    device: torch.device,
    spectra: NaturalSpectra | None = None,
    weights: torch.Tensor | None = None,
    start: torch.Tensor | None = None,
    freedom: float = 1.0,
    eigenclips: Eigenclips | None = None,
) -> ClipParam:
    """A parameterised batch of ``len(generators)`` clips of ``stream``'s input shape; ``spectrum``
    needs the model's natural ``spectra`` and each item's (norm, tv_space, tv_time) ``weights``, (B, 3).

    ``start`` (B, C, T, H, W), display space: begin at this real clip instead of noise (feature
    accentuation). The ``spectrum`` basis then keeps the clip's own amplitudes, not the natural ones,
    and its phases start at the clip's, so the start is exactly the clip. ``pca`` needs the stream's
    ``eigenclips`` (and the spectra, for the colour) and cannot start from a clip: a real clip does not
    lie in their span."""
    channels, frames, height, width = spec.shape
    shape = (frames, height, width)
    if kind in ("spectrum", "pca") and spectra is None:
        raise ValueError(f"the {kind} parameterisation needs the model's natural spectra")
    if kind == "pca":
        if eigenclips is None:
            raise ValueError("the pca parameterisation needs the model's eigenclips")
        if start is not None:
            raise ValueError("the pca parameterisation cannot start from a clip: use spectrum")
        if weights is None:
            raise ValueError("the pca parameterisation needs the penalty weights of each item")
        directions = torch.stack([torch.randn(eigenclips.count, generator=g) for g in generators]).to(device)
        eigen = EigenclipBasis(eigenclips, directions, tuple(spec.shape), weights[:, 1:])
        return ClipParam(eigen, stream, spec, spectra)
    signal = signal_of(kind, stream, spec, start.to(device), spectra) if start is not None else None
    if kind == "pixel":
        basis: nn.Module = PixelBasis(signal if signal is not None else _init(spec.shape, generators, device))
    elif kind == "fourier":
        if signal is not None:
            scale = spacetime_scale(*shape).to(device)
            spectrum = torch.fft.rfftn(signal, dim=(-3, -2, -1), norm="ortho") / scale
            init = torch.view_as_real(spectrum) * scale.square().mean().sqrt()  # FourierBasis divides it back
        else:
            init = _init((channels, frames, height, width // 2 + 1, 2), generators, device)
        basis = FourierBasis(init, shape)
    elif kind == "spectrum":
        assert spectra is not None
        if weights is None:
            raise ValueError("the spectrum parameterisation needs the penalty weights of each item")
        mean = None
        keep_power = stream == "appearance" and freedom > 1  # RGB's contrast moves, not grows (SpectrumBasis)
        if signal is not None:
            mean = signal.mean(dim=(2, 3, 4), keepdim=True)
            spectrum = torch.fft.rfftn(signal - mean, dim=(-3, -2, -1), norm="ortho")
            basis = SpectrumBasis(
                spectrum.abs(), spectrum.angle(), shape, torch.zeros_like(weights[:, 1:]), freedom, keep_power,
            )
        else:
            amplitude = spectra.for_stream(stream, spec)
            phase = _random_phase(amplitude.shape, generators, device)
            basis = SpectrumBasis(amplitude, phase, shape, weights[:, 1:], freedom, keep_power)
        param = ClipParam(basis, stream, spec, spectra)
        if mean is not None:  # a start clip's mean is where its mean starts and stays near
            param.natural_mean.copy_(mean if param.colour is None else (param.colour @ mean.flatten(2)).view_as(mean))
        return param
    else:
        raise ValueError(f"unknown parameterisation {kind!r}")
    return ClipParam(basis, stream, spec)
