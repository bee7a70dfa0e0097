"""Turn decoded frames into a model's inputs, the way the training clips were made.

Each stream's frames are cut from the middle of the video (square centre crop, resized to the
stream's size); the motion input is the flow between T + 1 consecutive sampled frames, estimated at
the model's resolution by the estimator the model was trained on (``ModelSpec.flow``, stlens.flow.estimate),
in pixels. Flow is kept per clip (the exact frames and the estimator): TV-L1 takes seconds, and the same
clip is often explained again for another class or layer.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..flow.estimate import Progress, estimate_flow
from ..models.spec import FlowMethod, InputSpec, ModelSpec, Stream

MIN_STRIDE = 0.25
MAX_STRIDE = 8.0
FLOW_CACHE_BYTES = 64 * 1024 * 1024


class FlowCache:
    """The flow of recent clips, keyed by their frames' content and the estimator, at most ``max_bytes``."""

    def __init__(self, max_bytes: int = FLOW_CACHE_BYTES):
        self.max_bytes = max_bytes
        self._flows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(frames: np.ndarray, method: FlowMethod) -> str:
        digest = hashlib.sha256(f"{method}:{frames.shape}:".encode())
        digest.update(np.ascontiguousarray(frames).data)
        return digest.hexdigest()

    def flow(self, frames: np.ndarray, method: FlowMethod, progress: Progress | None = None) -> np.ndarray:
        """The flow of ``frames`` by ``method``: from the cache, or estimated (reporting progress) and kept."""
        key = self.key(frames, method)
        with self._lock:
            if key in self._flows:
                self._flows.move_to_end(key)
                return self._flows[key].copy()  # a caller's own array: the kept one stays as estimated
        flow = estimate_flow(frames, method, progress)
        with self._lock:
            if key not in self._flows:
                self._flows[key] = flow.copy()
                self._bytes += flow.nbytes
                while self._bytes > self.max_bytes and len(self._flows) > 1:
                    self._bytes -= self._flows.popitem(last=False)[1].nbytes
        return flow

    def __len__(self) -> int:
        return len(self._flows)


flow_cache = FlowCache()


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


def clip_inputs(
    frames: np.ndarray,
    inputs: Mapping[Stream, InputSpec],
    stride: float = 1.0,
    flow: FlowMethod = "dis",
    progress: Progress | None = None,
    cache: FlowCache | None = flow_cache,
) -> ClipInputs:
    """The model inputs for the middle of ``frames`` ((N, H, W, 3) uint8 RGB), sampling every
    ``stride``-th frame (below 1: slow motion by repeating frames); the motion input by the ``flow``
    estimator, ``progress`` called as its fields are done (not at all when the clip's flow is in
    ``cache``; None estimates it afresh)."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}")
    streams: dict[Stream, np.ndarray] = {}
    for stream, spec in inputs.items():
        # as in training (stlens.synth.dataset): T + 1 frames, flow between them, the first T as RGB
        picked = crop_resize(frames[frame_indices(len(frames), spec.frames + 1, stride)], spec.height, spec.width)
        if stream == "motion":
            streams[stream] = (
                cache.flow(picked, flow, progress) if cache is not None else estimate_flow(picked, flow, progress)
            )
        else:
            streams[stream] = picked[:-1].astype(np.float32) / 255.0
    return ClipInputs(streams)


def model_clip_inputs(
    frames: np.ndarray, spec: ModelSpec, stride: float = 1.0, progress: Progress | None = None
) -> ClipInputs:
    """:func:`clip_inputs` for a model: its input shapes and the flow it was trained on."""
    return clip_inputs(frames, spec.inputs, stride, spec.flow, progress)
