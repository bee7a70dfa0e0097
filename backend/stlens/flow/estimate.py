"""The optical-flow estimators of stlens, for the training clips and for uploaded videos alike.

A model's motion stream should see the flow it was trained on (``ModelSpec.flow``):

- ``dis``: OpenCV's DIS (dense inverse search, MEDIUM preset) on grey frames; the built-in models are
  trained on it. On real footage it lands close to TV-L1 at a small fraction of the time
  (docs/dataset.md has the measurement).
- ``tvl1``: OpenCV's dual TV-L1 (Zach, Pock, Bischof 2007) on grey frames, at its default parameters:
  the estimator of the paper's two-stream nets and of the public I3D checkpoints. About 0.5 s a frame
  pair at 224 px on a CPU core, so callers report progress and cache it per clip (analysis.clip).

Flow is returned in pixels of the given frames and each component is clipped to +-``FLOW_CLIP`` pixels,
as the paper clips flow to +-20.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..models.spec import FlowMethod

FLOW_CLIP = 20.0
MAX_FRAMES = 1024
MAX_SIDE = 1024
FLOW_METHODS: tuple[FlowMethod, ...] = ("dis", "tvl1")

Progress = Callable[[int, int], None]  # (fields done, fields in all)


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _estimator(method: FlowMethod) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    if method == "tvl1":
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda a, b: tvl1.calc(a, b, None)
    raise ValueError(f"unknown flow method {method!r}; choose among {FLOW_METHODS}")


def estimate_flow(frames: np.ndarray, method: FlowMethod = "dis", progress: Progress | None = None) -> np.ndarray:
    """Flow between consecutive frames: (T+1, H, W, 3) uint8 RGB -> (T, H, W, 2) float32 pixels (x, y).

    Field t maps frame t to frame t+1: a point at p in frame t is at p + flow[t, p] in frame t+1.
    ``progress`` is called after each field with (done, T).
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T+1, H, W, 3), got {frames.dtype} {frames.shape}")
    count, height, width, _ = frames.shape
    if not 2 <= count <= MAX_FRAMES + 1:
        raise ValueError(f"need 2 to {MAX_FRAMES + 1} frames, got {count}")
    if not (8 <= height <= MAX_SIDE and 8 <= width <= MAX_SIDE):
        raise ValueError(f"frame sides must be 8 to {MAX_SIDE} pixels, got {height}x{width}")
    calc = _estimator(method)
    grey = [_grey(f) for f in frames]
    fields = []
    for done, (a, b) in enumerate(zip(grey[:-1], grey[1:]), start=1):
        fields.append(calc(a, b))
        if progress is not None:
            progress(done, count - 1)
    return np.clip(np.stack(fields), -FLOW_CLIP, FLOW_CLIP).astype(np.float32, copy=False)
