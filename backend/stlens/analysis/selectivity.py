"""Class selectivity (finding 2): how much of a unit's activity belongs to one class.

The index is Morcos et al.'s (2018): (mu_max - mu_rest) / (mu_max + mu_rest), where mu_max is the
unit's mean activation on its preferred class and mu_rest the mean over the other classes. It is 0
for a unit that serves every class alike and 1 for one that fires for a single class. Activations are
rectified first (a linear layer's raw output can be negative) and averaged over positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from pydantic import BaseModel

from ..models.registry import LoadedModel
from .units import layer_activations, unit_means

SPECIFIC = 0.6  # index at or above: a class-specific unit
GENERIC = 0.2  # index at or below: a generic unit


class Selectivity(BaseModel):
    class_means: list[list[float]]  # (units, classes) mean rectified activation
    index: list[float]  # per unit
    preferred: list[int]  # per unit: its class
    specific: list[int]  # units with index >= SPECIFIC, most selective first
    generic: list[int]  # active units with index <= GENERIC, least selective first
    mean_index: float


def selectivity_index(class_means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(units, classes) -> the index per unit (0 for a silent unit) and the preferred class."""
    top, preferred = class_means.max(1)
    rest = (class_means.sum(1) - top) / max(class_means.shape[1] - 1, 1)
    total = top + rest
    return torch.where(total > 0, (top - rest) / total.clamp_min(1e-12), torch.zeros_like(top)), preferred


def class_selectivity(
    model: LoadedModel, layer_id: str, batches: Iterable[tuple[Mapping[str, torch.Tensor], torch.Tensor]]
) -> Selectivity:
    """``batches`` yield (model-space inputs, labels); every class must occur."""
    classes = model.spec.num_classes
    sums: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    for inputs, labels in batches:
        means = unit_means(torch.relu(layer_activations(model, layer_id, inputs)))  # (N, C)
        if sums is None or counts is None:  # the first batch (both are set together)
            sums = means.new_zeros(classes, means.shape[1])
            counts = means.new_zeros(classes)
        sums.index_add_(0, labels, means)
        counts.index_add_(0, labels, torch.ones_like(labels, dtype=means.dtype))
    if sums is None or counts is None or (counts == 0).any():
        raise ValueError("every class needs at least one clip")
    class_means = (sums / counts[:, None]).t()
    index, preferred = selectivity_index(class_means)
    order = index.argsort(descending=True).tolist()
    active = class_means.amax(1) > 0
    return Selectivity(
        class_means=class_means.tolist(),
        index=index.tolist(),
        preferred=preferred.tolist(),
        specific=[u for u in order if index[u] >= SPECIFIC],
        generic=[u for u in reversed(order) if index[u] <= GENERIC and active[u]],
        mean_index=float(index[active].mean()) if active.any() else 0.0,
    )
