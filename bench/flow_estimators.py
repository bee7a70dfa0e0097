"""DIS vs TV-L1 on real footage: end-point error of DIS against TV-L1 (the paper's estimator) and time a field.

Run: python bench/flow_estimators.py [--side 64] ; figures go in docs/dataset.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import cv2
import numpy as np

SAMPLES = Path("/work/shared/data/samples")


def read_frames(path: Path, count: int, side: int) -> np.ndarray:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            crop = min(h, w)
            rgb = rgb[(h - crop) // 2 : (h + crop) // 2, (w - crop) // 2 : (w + crop) // 2]
            frames.append(cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA))
            if len(frames) == count:
                break
    return np.stack(frames)


def flows(frames: np.ndarray, estimator) -> tuple[np.ndarray, float]:
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    start = time.perf_counter()
    out = np.stack([estimator.calc(a, b, None) for a, b in zip(grey[:-1], grey[1:])])
    return out, (time.perf_counter() - start) / (len(grey) - 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--frames", type=int, default=17)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    estimators = {
        "tvl1": cv2.optflow.DualTVL1OpticalFlow_create(),
        "dis-medium": cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
        "dis-fast": cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST),
    }
    print(f"side {args.side}px, {args.frames - 1} fields a video, 1 thread")
    for path in sorted(SAMPLES.glob("*")):
        frames = read_frames(path, args.frames, args.side)
        reference, ref_time = flows(frames, estimators["tvl1"])
        mean_motion = np.linalg.norm(reference, axis=-1).mean()
        line = f"{path.name}: tvl1 {ref_time * 1e3:.1f} ms/field, mean |flow| {mean_motion:.2f}px"
        for name in ("dis-medium", "dis-fast"):
            estimate, t = flows(frames, estimators[name])
            epe = np.linalg.norm(estimate - reference, axis=-1).mean()
            line += f"; {name} {t * 1e3:.2f} ms/field, EPE vs tvl1 {epe:.2f}px"
        print(line)


if __name__ == "__main__":
    main()
