"""Labelled splits of the synthetic world, with flow computed once and optionally cached as npz.

Clip ``index`` of split ``split`` under ``seed`` is a pure function of those three numbers; its class is
``index % num_classes``, so every split is balanced. Splits:

- ``train`` and ``test``: the normal world (the biased class always in the boxing ring, nobody else);
- ``debiased``: the same actions with the bias broken (the biased class never in the ring, the others
  in it one time in five).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from ..flow.estimate import estimate_flow
from ..models.builtin import small_inputs
from ..models.small_twostream import FRAMES, SIZE
from .actions import LABELS
from .scene import ClipParams, SceneKind, render_clip, sample_params

Split = Literal["train", "test", "debiased"]
SPLITS: dict[Split, tuple[int, SceneKind]] = {
    "train": (0, "normal"),
    "test": (1, "normal"),
    "debiased": (2, "debiased"),
}
DATASET_VERSION = 4  # bump when the world changes, so stale caches are not reused
MAX_PER_CLASS = 5000
MAX_CLIP_FRAMES = 64
MAX_REPLAY_SPEED = 8.0


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray  # (FRAMES + 1, SIZE, SIZE, 3) uint8 RGB
    label: int


@dataclass(frozen=True)
class SplitData:
    """A split held in memory: the model's frames, their flow and the labels."""

    frames: np.ndarray  # (N, FRAMES, SIZE, SIZE, 3) uint8
    flow: np.ndarray  # (N, FRAMES, SIZE, SIZE, 2) float16, pixels
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: np.ndarray | slice) -> dict[str, torch.Tensor]:
        """Model inputs for the clips at ``index``: display space -> the built-in models' input space."""
        specs = small_inputs()
        appearance = torch.from_numpy(self.frames[index]).float().div_(255).permute(0, 4, 1, 2, 3)
        motion = torch.from_numpy(self.flow[index].astype(np.float32)).permute(0, 4, 1, 2, 3)
        return {
            "appearance": specs["appearance"].to_model(appearance),
            "motion": specs["motion"].to_model(motion),
        }


def _drawn(seed: int, split: Split, index: int) -> tuple[ClipParams, np.random.Generator]:
    """Clip ``index``'s nuisances, and the generator it goes on to draw its noise from."""
    if index < 0:
        raise ValueError("clip indices start at 0")
    code, kind = SPLITS[split]
    rng = np.random.default_rng([seed, code, index])
    return sample_params(rng, index % len(LABELS), SIZE, kind), rng


def clip_params(seed: int, split: Split, index: int) -> ClipParams:
    """What makes clip ``index`` of ``split`` (its shirt, direction, speed...), without rendering it."""
    return _drawn(seed, split, index)[0]


def make_clip(seed: int, split: Split, index: int, frames: int = FRAMES + 1, speed: float = 1.0) -> Clip:
    """Render clip ``index`` of ``split``. The models take FRAMES + 1 frames (flow gives FRAMES fields);
    longer clips (for export) continue the same motion around the same middle frame. ``speed`` replays
    the same clip faster or slower (actor, travel and camera alike; stlens.analysis.speed)."""
    if not 2 <= frames <= MAX_CLIP_FRAMES:
        raise ValueError(f"frames must be 2 to {MAX_CLIP_FRAMES}, got {frames}")
    if not 1 / MAX_REPLAY_SPEED <= speed <= MAX_REPLAY_SPEED:
        raise ValueError(f"speed must be 1/{MAX_REPLAY_SPEED:g} to {MAX_REPLAY_SPEED:g}, got {speed}")
    params, rng = _drawn(seed, split, index)
    if speed != 1.0:
        params = replace(
            params,
            speed=params.speed * speed,
            travel=params.travel * speed,
            pan=(params.pan[0] * speed, params.pan[1] * speed),
        )
    return Clip(frames=render_clip(params, frames, SIZE, noise_seed=int(rng.integers(2**31))), label=params.label)


def build_split(seed: int, split: Split, per_class: int, progress: bool = True) -> SplitData:
    """Render and estimate flow for ``per_class`` clips of every class."""
    if not 1 <= per_class <= MAX_PER_CLASS:
        raise ValueError(f"per_class must be 1 to {MAX_PER_CLASS}, got {per_class}")
    count = per_class * len(LABELS)
    frames = np.empty((count, FRAMES, SIZE, SIZE, 3), np.uint8)
    flow = np.empty((count, FRAMES, SIZE, SIZE, 2), np.float16)
    labels = np.empty(count, np.int64)
    for i in tqdm(range(count), desc=f"{split} clips", unit="clip", disable=not progress):
        clip = make_clip(seed, split, i)
        frames[i] = clip.frames[:FRAMES]
        flow[i] = estimate_flow(clip.frames)
        labels[i] = clip.label
    return SplitData(frames=frames, flow=flow, labels=labels)


def load_split(seed: int, split: Split, per_class: int, cache_dir: Path | None, progress: bool = True) -> SplitData:
    """``build_split`` through an npz cache in ``cache_dir`` (none: no cache)."""
    if cache_dir is None:
        return build_split(seed, split, per_class, progress)
    path = cache_dir / f"synth-v{DATASET_VERSION}-{split}-seed{seed}-{per_class}x{len(LABELS)}.npz"
    if path.exists():
        with np.load(path) as stored:
            return SplitData(frames=stored["frames"], flow=stored["flow"], labels=stored["labels"])
    data = build_split(seed, split, per_class, progress)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, frames=data.frames, flow=data.flow, labels=data.labels)
    partial.replace(path)
    return data
