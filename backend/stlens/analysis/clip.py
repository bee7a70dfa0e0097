"""Turn decoded frames into a model's inputs, the way the training clips were made.

Each stream's frames are cut from the middle of the video (square centre crop, resized to the
stream's size); the motion input is the flow between T + 1 consecutive sampled frames, estimated at
the model's resolution by the same estimator as training (stlens.flow.estimate), in pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..flow.estimate import estimate_flow
from ..models.spec import InputSpec, ModelSpec, Stream

MIN_STRIDE = 0.25
MAX_STRIDE = 8.0


@dataclass(frozen=True)
class ClipInputs:
    """One clip in display space: appearance (T, H, W, 3) in [0, 1], motion (T, H, W, 2) flow pixels."""

    streams: dict[Stream, np.ndarray]

    def batch(self, spec: ModelSpec, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Model-space tensors (1, C, T, H, W) for ``spec``'s streams."""
        return {s: spec.inputs[s].to_model(to_tensor(self.streams[s], device)) for s in spec.streams}


def to_tensor(frames: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Display-space (T, H, W, C) -> (1, C, T, H, W) float32."""
    return torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).permute(3, 0, 1, 2).unsqueeze(0).to(device)


def frame_indices(total: int, count: int, stride: float) -> np.ndarray:
    """``count`` indices around the middle of ``total`` frames, ``stride`` source frames apart (nearest
    frame; clamped at the ends, so a short video repeats its first or last frame)."""
    if not MIN_STRIDE <= stride <= MAX_STRIDE:
        raise ValueError(f"stride must be {MIN_STRIDE} to {MAX_STRIDE}, got {stride}")
    middle = (total - 1) / 2
    offsets = (np.arange(count) - (count - 1) / 2) * stride
    return np.clip(np.floor(middle + offsets + 0.5), 0, total - 1).astype(int)


def crop_resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre crop to the target aspect ratio, then area-resize: (N, h, w, 3) -> (N, height, width, 3)."""
    _, h, w, _ = frames.shape
    target = width / height
    if w / h > target:
        cw, ch = max(1, round(h * target)), h
    else:
        cw, ch = w, max(1, round(w / target))
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.stack(
        [cv2.resize(f[y : y + ch, x : x + cw], (width, height), interpolation=cv2.INTER_AREA) for f in frames]
    )


def _stream_input(frames: np.ndarray, stream: Stream, spec: InputSpec, stride: float) -> np.ndarray:
    # as in training (stlens.synth.dataset): T + 1 frames, flow between them, the first T as RGB
    picked = crop_resize(frames[frame_indices(len(frames), spec.frames + 1, stride)], spec.height, spec.width)
    if stream == "motion":
        return estimate_flow(picked)
    return picked[:-1].astype(np.float32) / 255.0


def clip_inputs(frames: np.ndarray, inputs: Mapping[Stream, InputSpec], stride: float = 1.0) -> ClipInputs:
    """The model inputs for the middle of ``frames`` ((N, H, W, 3) uint8 RGB), sampling every
    ``stride``-th frame (below 1: slow motion by repeating frames)."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}")
    return ClipInputs({s: _stream_input(frames, s, spec, stride) for s, spec in inputs.items()})
