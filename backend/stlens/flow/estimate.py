"""The one optical-flow estimator of stlens, used for the training clips and for uploaded videos alike.

OpenCV's DIS (dense inverse search, MEDIUM preset) on grey frames. On real footage it lands close to
TV-L1, the paper's estimator, at a small fraction of the time (docs/dataset.md has the measurement).
Flow is returned in pixels of the given frames and each component is clipped to +-``FLOW_CLIP`` pixels,
as the paper clips flow to +-20.
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_CLIP = 20.0
MAX_FRAMES = 1024
MAX_SIDE = 1024


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def estimate_flow(frames: np.ndarray) -> np.ndarray:
    """Flow between consecutive frames: (T+1, H, W, 3) uint8 RGB -> (T, H, W, 2) float32 pixels (x, y).

    Field t maps frame t to frame t+1: a point at p in frame t is at p + flow[t, p] in frame t+1.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T+1, H, W, 3), got {frames.dtype} {frames.shape}")
    count, height, width, _ = frames.shape
    if not 2 <= count <= MAX_FRAMES + 1:
        raise ValueError(f"need 2 to {MAX_FRAMES + 1} frames, got {count}")
    if not (8 <= height <= MAX_SIDE and 8 <= width <= MAX_SIDE):
        raise ValueError(f"frame sides must be 8 to {MAX_SIDE} pixels, got {height}x{width}")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [_grey(f) for f in frames]
    flow = np.stack([dis.calc(a, b, None) for a, b in zip(grey[:-1], grey[1:])])
    return np.clip(flow, -FLOW_CLIP, FLOW_CLIP).astype(np.float32, copy=False)
