"""Frame arrays for display: uint8, enlarged, laid out side by side."""

from __future__ import annotations

import numpy as np

DISPLAY_SIDE = 192  # clips are tiny (64 px); media are enlarged to at least this height
STRIP_GAP = 4


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Display-space RGB in [0, 1] (T, H, W, 3) -> uint8."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"RGB frames must be (T, H, W, 3), got {frames.shape}")
    return (np.clip(np.nan_to_num(frames), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def display_factor(height: int, side: int = DISPLAY_SIDE) -> int:
    """The integer enlargement that brings ``height`` to about ``side`` (at least 1)."""
    return max(1, round(side / max(height, 1)))


def enlarge(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of (T, H, W, C) by an integer factor: pixels stay crisp."""
    if factor == 1:
        return frames
    return frames.repeat(factor, axis=1).repeat(factor, axis=2)


def strip(frames: np.ndarray, gap: int = STRIP_GAP, background: int = 255) -> np.ndarray:
    """(T, H, W, C) -> one (H, T*W + (T-1)*gap, C) image, frames left to right."""
    count, height, width, channels = frames.shape
    out = np.full((height, count * width + (count - 1) * gap, channels), background, dtype=frames.dtype)
    for t in range(count):
        out[:, t * (width + gap) : t * (width + gap) + width] = frames[t]
    return out
