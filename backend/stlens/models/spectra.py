"""Natural spectra: the colour statistics and the space-time amplitude spectra of a model's inputs.

The ``spectrum`` parameterisation (stlens.engine.param) keeps each stream's amplitude spectrum at what
the model's training clips have and optimises only the phase (MACO, Fel et al. 2023, carried to
space-time), so a visualisation has the energy distribution of real clips and its structure has to come
from where things are, not from how much texture there is.

A :class:`NaturalSpectra` holds, per stream, the RMS amplitude of every ``rfftn`` coefficient over
(T, H, W) with ``norm="ortho"`` (so a clip made from it has the data's average power spectrum), and for
RGB the colour statistics it is measured in: the data's mean colour and the square root of its colour
covariance (``colour``, 3x3: decorrelated coordinates -> RGB). RGB amplitudes are of the decorrelated
channels, as in MACO; flow amplitudes are of model-space flow (pixels / the model's scale), per component.
The DC coefficient is zero: the mean colour is a parameter of its own.

Where they come from: the built-in models ship theirs (``weights/<id>.spectra.npz``, measured by
``stlens train`` from their training clips); other models get :func:`power_law_spectra`, a power law in
space and time fitted to real footage (docs/faithfulness.md); a model file may name a spectra file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .spec import InputSpec, Stream

MAX_SPECTRA_BYTES = 16 * 2**20


@dataclass(frozen=True)
class NaturalSpectra:
    """Amplitude spectra per stream, (C, T, H, W // 2 + 1) float32, and RGB's colour statistics."""

    amplitude: dict[Stream, np.ndarray]
    mean_colour: np.ndarray  # (3,) RGB in [0, 1]
    colour: np.ndarray  # (3, 3): decorrelated coordinates -> RGB offsets from the mean colour
    source: str  # what they were measured on, in words
    statistics: dict[str, float]  # :func:`clip_statistics` of the same clips (their means)
    # how much clips' means vary: the spread of a clip's mean colour (display units) and of its mean
    # flow (model space), which the spectrum parameterisation's free means are pulled back within
    mean_spread: dict[Stream, float]
    # per statistic, the (low, high) bounds of the middle RANGE_SHARE of the same clips (NaN where a file
    # made before ranges were kept has none): what a clip's own statistics are judged against
    statistics_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    # (3, 3) lower-triangular: the Cholesky factor of the covariance of the clips' mean colours (display
    # units); None where it is not known (a file made before it was kept, the power law)
    mean_colour_spread: np.ndarray | None = None

    def for_stream(self, stream: Stream, spec: InputSpec) -> torch.Tensor:
        """The amplitude of ``stream`` at ``spec``'s shape (resampled if the file was made at another)."""
        if stream not in self.amplitude:
            raise ValueError(f"no natural spectrum for the {stream} stream")
        amplitude = torch.from_numpy(np.asarray(self.amplitude[stream], np.float32))
        shape = (spec.channels, spec.frames, spec.height, spec.width // 2 + 1)
        if tuple(amplitude.shape) != shape:
            raise ValueError(f"the {stream} spectrum is {tuple(amplitude.shape)}, the model's input needs {shape}")
        return amplitude

    def mean_colour_factor(self) -> np.ndarray:
        """(3, 3): maps a vector of spreads to an offset of a clip's mean colour. Real clips' mean colours
        vary together (a brighter clip is brighter in every channel, correlation about 0.6 in the
        synthetic world), so the factor of their covariance; where it is not known, the one spread in
        every direction."""
        if self.mean_colour_spread is not None:
            return self.mean_colour_spread
        return np.eye(3, dtype=np.float32) * np.float32(self.mean_spread["appearance"])

    def range_of(self, statistic: str) -> tuple[float, float]:
        """The middle RANGE_SHARE of the clips for ``statistic``; (NaN, NaN) where it is not known."""
        return self.statistics_range.get(statistic, (float("nan"), float("nan")))

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {f"amplitude_{s}": a.astype(np.float16) for s, a in self.amplitude.items()}
        if self.mean_colour_spread is not None:
            arrays["mean_colour_spread"] = self.mean_colour_spread
        np.savez_compressed(
            path,
            mean_colour=self.mean_colour,
            colour=self.colour,
            source=np.array(self.source),
            statistics=np.array([self.statistics[k] for k in STATISTICS], np.float64),
            mean_spread=np.array([self.mean_spread["appearance"], self.mean_spread["motion"]], np.float64),
            statistics_range=np.array([self.range_of(k) for k in STATISTICS], np.float64),
            **arrays,
        )


def load_spectra(path: Path) -> NaturalSpectra:
    """Read a spectra file (``save``'s npz: no pickles); ValueError for a malformed one."""
    if path.stat().st_size > MAX_SPECTRA_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_SPECTRA_BYTES // 2**20} MiB")
    with np.load(path, allow_pickle=False) as stored:
        amplitude: dict[Stream, np.ndarray] = {}
        for stream in ("appearance", "motion"):
            key = f"amplitude_{stream}"
            if key in stored:
                a = stored[key].astype(np.float32)
                if a.ndim != 4 or not np.isfinite(a).all() or (a < 0).any():
                    raise ValueError(f"{path.name}: {key} must be a finite, non-negative (C, T, H, W//2+1) array")
                amplitude[stream] = a  # type: ignore[index]
        mean_colour = stored["mean_colour"].astype(np.float32)
        colour = stored["colour"].astype(np.float32)
        source = str(stored["source"]) if "source" in stored else path.name
        values = stored["statistics"].astype(np.float64) if "statistics" in stored else np.full(len(STATISTICS), np.nan)
        spread = stored["mean_spread"].astype(np.float64) if "mean_spread" in stored else np.array(DEFAULT_SPREAD)
        factor = stored["mean_colour_spread"].astype(np.float32) if "mean_colour_spread" in stored else None
        bounds = (
            stored["statistics_range"].astype(np.float64) if "statistics_range" in stored
            else np.full((len(STATISTICS), 2), np.nan)
        )
    if mean_colour.shape != (3,) or colour.shape != (3, 3) or values.shape != (len(STATISTICS),):
        raise ValueError(f"{path.name}: mean_colour must be (3,), colour (3, 3), statistics ({len(STATISTICS)},)")
    if spread.shape != (2,) or not (np.isfinite(spread).all() and (spread > 0).all()):
        raise ValueError(f"{path.name}: mean_spread must be two positive numbers")
    if bounds.shape != (len(STATISTICS), 2) or (bounds[:, 0] > bounds[:, 1]).any():
        raise ValueError(f"{path.name}: statistics_range must be ({len(STATISTICS)}, 2) low-high pairs")
    if factor is not None and (factor.shape != (3, 3) or not np.isfinite(factor).all()):
        raise ValueError(f"{path.name}: mean_colour_spread must be a finite (3, 3) matrix")
    statistics = {k: float(v) for k, v in zip(STATISTICS, values)}
    return NaturalSpectra(
        amplitude=amplitude,
        mean_colour=mean_colour,
        colour=colour,
        source=source,
        statistics=statistics,
        mean_spread={"appearance": float(spread[0]), "motion": float(spread[1])},
        statistics_range={k: (float(low), float(high)) for k, (low, high) in zip(STATISTICS, bounds)},
        mean_colour_spread=factor,
    )


STATISTICS = ("rgb_slope", "saturation", "speed_median", "speed_p90")
DEFAULT_SPREAD = (0.1, 0.1)
RANGE_SHARE = 0.9  # a statistic's range: the middle 90% of the clips, from the 5th to the 95th percentile


def statistics_range(per_clip: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """The (5th, 95th) percentiles of each statistic over clips' :func:`clip_statistics`."""
    tail = 50 * (1 - RANGE_SHARE)
    out = {}
    for k in STATISTICS:
        values = np.array([c[k] for c in per_clip], np.float64)
        low, high = np.percentile(values, [tail, 100 - tail]) if np.isfinite(values).all() else (np.nan, np.nan)
        out[k] = (float(low), float(high))
    return out


def spatial_slope(power: np.ndarray) -> float:
    """The slope of log amplitude against log spatial frequency of a power spectrum (..., H, W // 2 + 1)
    averaged over everything before the last two axes, fitted over 2 cycles per image to Nyquist
    (natural images: about -1 to -1.2; white noise: 0; a blur: steeper)."""
    height, half = power.shape[-2:]
    width = 2 * (half - 1)
    radius = np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.rfftfreq(width)[None, :] ** 2)
    mean_power = power.reshape(-1, height, half).mean(0)
    keep = (radius >= 2 / max(height, width)) & (radius <= 0.5)
    slope = np.polyfit(np.log(radius[keep]), 0.5 * np.log(mean_power[keep] + 1e-20), 1)[0]
    return float(slope)


def clip_statistics(rgb: np.ndarray | None, flow: np.ndarray | None) -> dict[str, float]:
    """Statistics that tell a natural clip from an optimised texture: the spectral slope of the grey
    level and the mean HSV saturation of RGB (T, H, W, 3) in [0, 1], and the median and 90th percentile
    speed of flow (T, H, W, 2) in pixels a frame. A missing stream gives NaN for its entries."""
    out = dict.fromkeys(STATISTICS, float("nan"))
    if rgb is not None:
        grey = rgb.astype(np.float64).mean(-1)
        power = np.abs(np.fft.rfft2(grey - grey.mean(), norm="ortho")) ** 2
        out["rgb_slope"] = spatial_slope(power)
        high, low = rgb.max(-1), rgb.min(-1)
        out["saturation"] = float(np.mean((high - low) / np.maximum(high, 1e-6)))
    if flow is not None:
        speed = np.sqrt((flow.astype(np.float64) ** 2).sum(-1))
        out["speed_median"] = float(np.median(speed))
        out["speed_p90"] = float(np.percentile(speed, 90))
    return out


def colour_statistics(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour and the square root of the colour covariance (eigenvectors times root eigenvalues,
    as Lucid's decorrelation) of RGB frames (..., 3) in [0, 1]."""
    pixels = frames.reshape(-1, 3).astype(np.float64)
    mean = pixels.mean(0)
    covariance = np.cov(pixels - mean, rowvar=False)
    values, vectors = np.linalg.eigh(covariance)
    order = values.argsort()[::-1]
    root = vectors[:, order] * np.sqrt(np.maximum(values[order], 1e-8))
    return mean.astype(np.float32), root.astype(np.float32)


def rms_amplitude(clips: Iterable[np.ndarray]) -> np.ndarray:
    """RMS over clips of |rfftn| over (T, H, W), ortho norm, DC zeroed: clips (C, T, H, W) float."""
    total, count = None, 0
    for clip in clips:
        power = np.abs(np.fft.rfftn(clip, axes=(1, 2, 3), norm="ortho")) ** 2
        total = power if total is None else total + power
        count += 1
    if total is None:
        raise ValueError("no clips to measure")
    amplitude = np.sqrt(total / count).astype(np.float32)
    amplitude[:, 0, 0, 0] = 0.0
    return amplitude


def _covariance_factor(samples: np.ndarray) -> np.ndarray:
    """The lower-triangular Cholesky factor of the covariance of ``samples`` (N, 3), float32."""
    covariance = np.cov(samples, rowvar=False) + 1e-8 * np.eye(samples.shape[1])  # never singular
    return np.linalg.cholesky(covariance).astype(np.float32)


def measure_spectra(frames: np.ndarray, flow: np.ndarray, flow_scale: float, source: str) -> NaturalSpectra:
    """The natural spectra of a set of clips: frames (N, T, H, W, 3) uint8 RGB, flow (N, T, H, W, 2) pixels."""
    rgb = frames.astype(np.float32) / 255
    mean, colour = colour_statistics(rgb)
    unmix = np.linalg.inv(colour)
    decorrelated = ((rgb - mean) @ unmix.T).transpose(0, 4, 1, 2, 3)  # (N, 3, T, H, W)
    model_flow = (flow.astype(np.float32) / flow_scale).transpose(0, 4, 1, 2, 3)
    per_clip = [clip_statistics(r, f) for r, f in zip(rgb, flow)]
    means = rgb.mean(axis=(1, 2, 3))  # (N, 3): each clip's mean colour
    spread: dict[Stream, float] = {
        "appearance": float(means.std(0).mean()),
        "motion": float(model_flow.mean(axis=(2, 3, 4)).std(0).mean()),
    }
    return NaturalSpectra(
        mean_spread=spread,
        amplitude={"appearance": rms_amplitude(decorrelated), "motion": rms_amplitude(model_flow)},
        mean_colour=mean,
        colour=colour,
        source=source,
        statistics={k: float(np.mean([c[k] for c in per_clip])) for k in STATISTICS},
        statistics_range=statistics_range(per_clip),
        mean_colour_spread=_covariance_factor(means.astype(np.float64)),
    )


# The power law fitted to real footage by bench/natural_spectrum.py (docs/faithfulness.md): 16-frame
# clips at 112 x 112 of the three sample videos, RGB in the footage's decorrelated colour basis, TV-L1
# flow in pixels. log A = c - alpha_s log max(f_s, 1/side) - alpha_t log max(f_t, 1/frames).
POWER_LAW_SIDE = 112
POWER_LAW = {
    "appearance": {"c": -4.7128, "alpha_s": 1.4017, "alpha_t": 0.5717},
    "motion": {"c": -3.4480, "alpha_s": 1.6097, "alpha_t": 0.0313},  # flow in pixels at 112 px
}
POWER_LAW_MEAN_COLOUR = (0.4263, 0.4268, 0.3808)
POWER_LAW_COLOUR = ((-0.2220, -0.0378, -0.0263), (-0.2143, -0.0145, 0.0358), (-0.2093, 0.0549, -0.0087))
POWER_LAW_STATISTICS = {"rgb_slope": -1.6701, "saturation": 0.205, "speed_median": 0.9182, "speed_p90": 2.5924}
POWER_LAW_RANGE = {  # the middle 90% of the same clips
    "rgb_slope": (-2.0533, -1.2795), "saturation": (0.0668, 0.4318), "speed_median": (0.0267, 6.4112),
    "speed_p90": (0.1731, 9.0773),
}
POWER_LAW_SPREAD = {"appearance": 0.1, "motion": 0.5}  # motion: pixels at 112 px


def _power_law(spec: InputSpec, c: float, alpha_s: float, alpha_t: float, gain: float) -> np.ndarray:
    frames, height, width = spec.frames, spec.height, spec.width
    fs = np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.rfftfreq(width)[None, :] ** 2)
    ft = np.abs(np.fft.fftfreq(frames))[:, None, None]
    spatial = alpha_s * np.log(np.maximum(fs, 1 / max(height, width)))[None]
    temporal = alpha_t * np.log(np.maximum(ft, 1 / frames))
    shape = (spec.channels, frames, height, width // 2 + 1)
    amplitude = np.broadcast_to(np.exp(c - spatial - temporal) * gain, shape).astype(np.float32)
    amplitude[:, 0, 0, 0] = 0.0
    return amplitude


def power_law_spectra(inputs: dict[Stream, InputSpec]) -> NaturalSpectra:
    """Natural spectra for any input shapes from :data:`POWER_LAW`: flow amplitudes grow with the
    frame size (a motion spans more pixels in a larger frame) and are divided by the model's scale."""
    amplitude: dict[Stream, np.ndarray] = {}
    statistics = dict(POWER_LAW_STATISTICS)
    bounds = dict(POWER_LAW_RANGE)
    spread: dict[Stream, float] = {"appearance": POWER_LAW_SPREAD["appearance"], "motion": POWER_LAW_SPREAD["motion"]}
    for stream, spec in inputs.items():
        law = POWER_LAW[stream]
        gain = 1.0
        if stream == "motion":
            size = max(spec.height, spec.width) / POWER_LAW_SIDE
            gain = size / (spec.scale or 1.0)
            for key in ("speed_median", "speed_p90"):
                statistics[key] *= size
                bounds[key] = (bounds[key][0] * size, bounds[key][1] * size)
            spread["motion"] *= gain
        amplitude[stream] = _power_law(spec, law["c"], law["alpha_s"], law["alpha_t"], gain)
    return NaturalSpectra(
        amplitude=amplitude,
        mean_colour=np.array(POWER_LAW_MEAN_COLOUR, np.float32),
        colour=np.array(POWER_LAW_COLOUR, np.float32),
        source="a power law fitted to real footage (bench/natural_spectrum.py)",
        statistics=statistics,
        mean_spread=spread,
        statistics_range=bounds,
    )


def default_spectra(inputs: dict[Stream, InputSpec]) -> NaturalSpectra | None:
    """The power law for models whose inputs are RGB (3 channels) and flow (2); None for any other."""
    standard = {"appearance": 3, "motion": 2}
    if any(spec.channels != standard[stream] for stream, spec in inputs.items()):
        return None
    return power_law_spectra(inputs)


def check_spectra(spectra: NaturalSpectra, inputs: dict[Stream, InputSpec]) -> None:
    """ValueError unless ``spectra`` has an amplitude of the right shape for every stream of ``inputs``."""
    for stream, spec in inputs.items():
        spectra.for_stream(stream, spec)
