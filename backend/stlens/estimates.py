"""How long work will take here, before it starts: a visualisation, a sweep of several, an atlas.

A step of a layer costs its pace here once the layer has run (the cache keeps it), and before that
what ``step_cost`` estimates from the layer's operations and this machine's measured speed, so every
layer of every model has an estimate before its first run (with ``--workers external`` that is this
node's speed, not the workers'). Work is its steps times that, an atlas's its units' together. Work
above :data:`HEAVY_S` is announced with its estimate and confirmed on the page before it starts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from .budget import CostGuard
from .models.registry import LoadedModel
from .step_cost import StepCost

HEAVY_S = 30.0  # work that takes longer here is announced and confirmed first


@dataclass(frozen=True)
class WorkEstimate:
    """About how long ``count`` runs of some steps of one layer take here, one after another."""

    seconds: float
    seconds_per_step: float
    source: Literal["measured", "estimated"]  # the layer's pace here, or its operations against the machine's speed

    @property
    def heavy(self) -> bool:
        return self.seconds > HEAVY_S


class Estimates:
    """Step costs of every layer, and the time of work made of them, on this deployment."""

    def __init__(self, costs: CostGuard):
        self.costs = costs

    async def layers(self, model: LoadedModel) -> dict[str, StepCost]:
        """Seconds a step of each of the model's layers takes here, measured or estimated."""
        paces = await self.costs.cache.get_pace(model.spec.id)
        estimator = self.costs.estimator
        return await asyncio.to_thread(
            lambda: {layer.id: estimator.seconds_per_step(model, layer.id, paces) for layer in model.layers}
        )

    async def work(self, model: LoadedModel, layer: str, steps: int, count: int = 1) -> WorkEstimate:
        """``count`` runs of ``steps`` steps of ``layer`` (a batch of them goes faster: on this CPU up
        to about 1.4x, docs/benchmarks.md; so this is an upper bound, as the page says)."""
        cost = (await self.layers(model))[layer]
        return WorkEstimate(count * steps * cost.seconds, cost.seconds, cost.source)
