"""Objectives: functions of the target layer's output, one value per batch item, to maximise.

They compose like numbers (``channel(3) - 0.5 * diversity()``, ``-neuron(7)``), in the spirit of
Lucent's objectives. A layer output is (N, C, T, H, W), (N, C, H, W) or (N, C); a *unit* is a
channel, and batch item ``b`` looks at ``units[b]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

Units = int | Sequence[int]


class Objective:
    """A named map from a layer output (B, C, ...) to values (B,)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str):
        self.fn = fn
        self.name = name

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return self.fn(output)

    def __add__(self, other: Objective | float) -> Objective:
        if isinstance(other, Objective):
            return Objective(lambda x: self(x) + other(x), f"{self.name} + {other.name}")
        return Objective(lambda x: self(x) + other, f"{self.name} + {other}")

    __radd__ = __add__

    def __neg__(self) -> Objective:
        return Objective(lambda x: -self(x), f"-({self.name})")

    def __sub__(self, other: Objective | float) -> Objective:
        return self + (-other)

    def __rsub__(self, other: float) -> Objective:
        return (-self) + other

    def __mul__(self, factor: float) -> Objective:
        if not isinstance(factor, (int, float)):
            return NotImplemented
        return Objective(lambda x: self(x) * factor, f"{factor} * {self.name}")

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _pick_units(output: torch.Tensor, units: Units) -> torch.Tensor:
    """(B, C, ...) -> (B, ...): batch item b's channel units[b] (one int: the same for all)."""
    batch, channels = output.shape[:2]
    index = [units] * batch if isinstance(units, int) else list(units)
    if len(index) != batch:
        raise ValueError(f"{len(index)} units for a batch of {batch}")
    if any(not 0 <= u < channels for u in index):
        raise ValueError(f"units {index} out of range for a layer with {channels} channels")
    if all(u == index[0] for u in index):  # one channel for all: a view, no index tensors
        return output[:, index[0]]
    return output[_item_indices(batch, output.device), _unit_indices(tuple(index), output.device)]


@lru_cache(maxsize=256)
def _item_indices(batch: int, device: torch.device) -> torch.Tensor:
    return torch.arange(batch, device=device)


@lru_cache(maxsize=256)
def _unit_indices(units: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Made once per device: a GPU step would otherwise copy them over (which a CUDA graph cannot record)."""
    return torch.tensor(units, device=device)


def channel(units: Units) -> Objective:
    """The unit's channel, averaged over all positions (space and time)."""

    def mean(x: torch.Tensor) -> torch.Tensor:
        picked = _pick_units(x, units)
        return picked.flatten(1).mean(1) if picked.ndim > 1 else picked

    return Objective(mean, f"channel {units}")


def neuron(units: Units) -> Objective:
    """The unit's channel at the centre position (centre frame, centre pixel)."""

    def centre(x: torch.Tensor) -> torch.Tensor:
        picked = _pick_units(x, units)
        for _ in range(picked.ndim - 1):
            picked = picked.select(1, picked.shape[1] // 2)
        return picked

    return Objective(centre, f"neuron {units}")


def class_logit(classes: Units) -> Objective:
    """A class score: the unit of the logits layer (N, K)."""
    return Objective(lambda x: _pick_units(x, classes), f"class {classes}")


def diversity() -> Objective:
    """Minus the mean cosine similarity of an item's Gram matrix (channel co-activations over
    positions) with the other items': pushes a batch towards different ways of driving a unit."""

    def value(x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if batch < 2:
            return x.new_zeros(batch)
        features = x.flatten(2) if x.ndim > 2 else x.unsqueeze(2)
        grams = F.normalize((features @ features.transpose(1, 2)).flatten(1), dim=1)
        similarity = grams @ grams.T
        return -(similarity.sum(1) - similarity.diagonal()) / (batch - 1)

    return Objective(value, "diversity")
