"""The synthetic world's test clips as the analyses use them: rendered at a chosen speed, batched."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from ..flow.estimate import estimate_flow
from ..models.small_twostream import FRAMES, SIZE
from ..models.spec import ModelSpec
from ..synth.actions import LABELS
from ..synth.dataset import Split, SplitData, make_clip

SEED = 0
BATCH = 50
MAX_PER_CLASS = 100
EXAMPLE_CLIPS_PER_CLASS = 10  # the clip set that dataset examples are drawn from


def split_indices(per_class: int, classes: Sequence[int] | None = None) -> list[int]:
    """The indices of the clips of a split's first ``per_class`` of every class, or of ``classes``."""
    if not 1 <= per_class <= MAX_PER_CLASS:
        raise ValueError(f"per_class must be 1 to {MAX_PER_CLASS}, got {per_class}")
    return [i for i in range(per_class * len(LABELS)) if classes is None or i % len(LABELS) in classes]


def render_split(split: Split, per_class: int, speed: float = 1.0, classes: Sequence[int] | None = None) -> SplitData:
    """The clips ``split_indices(per_class, classes)`` of ``split``, replayed at ``speed``, with their flow."""
    clips = [make_clip(SEED, split, i, speed=speed) for i in split_indices(per_class, classes)]
    return SplitData(
        frames=np.stack([c.frames[:FRAMES] for c in clips]),
        flow=np.stack([estimate_flow(c.frames) for c in clips]).astype(np.float16),
        labels=np.array([c.label for c in clips], np.int64),
    )


def batches(data: SplitData) -> list[dict[str, torch.Tensor]]:
    """Model-space inputs of the built-in models, ``BATCH`` clips at a time."""
    return [data.batch(slice(i, i + BATCH)) for i in range(0, len(data), BATCH)]


@lru_cache(maxsize=1)
def example_clips() -> SplitData:
    """The test clips that dataset examples come from (rendered once a process, about 2 MB)."""
    return render_split("test", EXAMPLE_CLIPS_PER_CLASS)


def examples_available(spec: ModelSpec) -> bool:
    """Whether ``spec`` is a model of the synthetic world: it takes these clips and knows their classes
    (dataset examples and the familiarity of a clip are measured on them)."""
    shapes_fit = all((i.frames, i.height, i.width) == (FRAMES, SIZE, SIZE) for i in spec.inputs.values())
    return shapes_fit and set(spec.inputs) == {"appearance", "motion"} and tuple(spec.labels) == tuple(LABELS)
