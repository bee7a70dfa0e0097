"""Models without trained weights: built from a fixed seed, so their weights hash and every
visualisation id stay stable, and titled so that nobody mistakes them for trained ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")

SEED = 0
RANDOM_WEIGHTS = "random weights"
_seeded_builds = threading.Lock()


def seeded(make: Callable[[], T]) -> T:
    """``make()`` with its random weights drawn from ``SEED``.

    Modules draw their initial weights from torch's global CPU generator. The build runs on a
    forked copy of that generator (its state is restored afterwards, so no other thread's random
    stream is reseeded), and one build at a time: two builds in two threads never interleave."""
    with _seeded_builds, torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(SEED)
        return make()


def weights_title(title: str, trained: bool, source: str = "") -> str:
    """A model's title says where its weights come from: ``title (source)`` when trained
    (``title`` alone without a source), ``title (random weights)`` when not."""
    if not trained:
        return f"{title} ({RANDOM_WEIGHTS})"
    return f"{title} ({source})" if source else title
