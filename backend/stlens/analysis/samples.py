"""Sample videos that are always available: one clip a class of the synthetic world's test split."""

from __future__ import annotations

import numpy as np

from ..models.small_twostream import FRAMES
from ..synth.actions import LABELS
from ..synth.dataset import make_clip

SEED = 0
SAMPLE_FRAMES = 2 * FRAMES + 1  # the training clip (FRAMES + 1 frames) sits in the middle


def sample_names() -> list[str]:
    return [f"synth-{label}" for label in LABELS]


def sample_frames(name: str) -> np.ndarray:
    """(SAMPLE_FRAMES, 64, 64, 3) uint8 RGB; KeyError for an unknown name."""
    names = sample_names()
    if name not in names:
        raise KeyError(name)
    return make_clip(SEED, "test", names.index(name), frames=SAMPLE_FRAMES).frames
