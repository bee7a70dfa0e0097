"""Fit the power-law natural-video spectrum that models without spectra of their own get.

Real footage (../shared/data/samples: the UCF101 cricket clip, bikes, carphone), 16-frame clips at
112 x 112 (shorter side resized, centre crop), RGB in the footage's own decorrelated colour basis and
TV-L1 flow (the paper's estimator, on grey frames). The RMS amplitude of every rfftn coefficient is
averaged over clips, and log amplitude is fitted by least squares, per stream, as

    log A(f) = c - alpha_s * log(max(f_s, 1/S)) - alpha_t * log(max(f_t, 1/T))

with f_s the spatial frequency in cycles per pixel and f_t the temporal one in cycles per frame. The
printed constants are stlens.models.spectra.POWER_LAW and its statistics (the clips' means and middle
90%). Run: python bench/natural_spectrum.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import cv2
import numpy as np

from stlens.models.spectra import STATISTICS, clip_statistics, colour_statistics, rms_amplitude, statistics_range

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"
FRAMES, SIDE = 16, 112


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    out = []
    for f in frames:
        h, w = f.shape[:2]
        scale = SIDE / min(h, w)
        f = cv2.resize(f, (max(SIDE, round(w * scale)), max(SIDE, round(h * scale))), interpolation=cv2.INTER_AREA)
        y, x = (f.shape[0] - SIDE) // 2, (f.shape[1] - SIDE) // 2
        out.append(f[y : y + SIDE, x : x + SIDE])
    return np.stack(out)


def tvl1(frames: np.ndarray) -> np.ndarray:
    estimator = cv2.optflow.DualTVL1OpticalFlow_create()
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    return np.stack([estimator.calc(a, b, None) for a, b in zip(grey[:-1], grey[1:])])


def fit(amplitude: np.ndarray) -> dict[str, float]:
    """Least-squares power law over every nonzero coefficient of a (C, T, H, W//2+1) amplitude."""
    _, t, h, half = amplitude.shape
    w = 2 * (half - 1)
    fs = np.sqrt(np.fft.fftfreq(h)[None, :, None] ** 2 + np.fft.rfftfreq(w)[None, None, :] ** 2)
    ft = np.abs(np.fft.fftfreq(t))[:, None, None]
    log_fs = np.log(np.maximum(np.broadcast_to(fs, (t, h, half)), 1 / max(h, w)))
    log_ft = np.log(np.maximum(np.broadcast_to(ft, (t, h, half)), 1 / t))
    mean = np.sqrt((amplitude**2).mean(0))  # the channels' RMS
    keep = mean > 0
    design = np.stack([np.ones(keep.sum()), -log_fs[keep], -log_ft[keep]], 1)
    (c, alpha_s, alpha_t), *_ = np.linalg.lstsq(design, np.log(mean[keep]), rcond=None)
    residual = np.log(mean[keep]) - design @ np.array([c, alpha_s, alpha_t])
    fitted = {"c": float(c), "alpha_s": float(alpha_s), "alpha_t": float(alpha_t)}
    return {**fitted, "rms_log_residual": float(residual.std())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=8, help="frames between clip starts")
    args = parser.parse_args()
    videos = {p.name: decode(p) for p in sorted(SAMPLES.glob("*")) if p.suffix in (".mp4", ".gif")}
    rgb_clips, flow_clips = [], []
    for name, frames in videos.items():
        flow = tvl1(frames)
        for start in range(0, len(frames) - FRAMES - 1, args.stride):
            rgb_clips.append(frames[start : start + FRAMES].astype(np.float32) / 255)
            flow_clips.append(flow[start : start + FRAMES])
        print(f"{name}: {len(frames)} frames", flush=True)
    rgb = np.stack(rgb_clips)
    mean, colour = colour_statistics(rgb)
    decorrelated = ((rgb - mean) @ np.linalg.inv(colour).T).transpose(0, 4, 1, 2, 3)
    flow = np.stack(flow_clips).transpose(0, 4, 1, 2, 3)
    per_clip = [clip_statistics(r, f) for r, f in zip(rgb_clips, flow_clips)]  # at 112 px; speeds in px a frame
    result = {
        "clips": len(rgb_clips),
        "size": [FRAMES, SIDE, SIDE],
        "mean_colour": [round(float(v), 4) for v in mean],
        "colour": [[round(float(v), 4) for v in row] for row in colour],
        "appearance": fit(rms_amplitude(decorrelated)),
        "motion_px": fit(rms_amplitude(flow)),
        "statistics": {k: round(float(np.mean([c[k] for c in per_clip])), 4) for k in STATISTICS},
        "statistics_range": {k: [round(v, 4) for v in bounds] for k, bounds in statistics_range(per_clip).items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
