"""Cost-bounded work: how much of this machine one request, one client and one atlas may ask for.

A visualisation costs its steps times the seconds a step of its layer takes here: the layer's
measured pace, or before its first run here an estimate (``step_cost.py``). Before a new job is
started (joining a running one, or a cached result, costs nothing):

- a request over ``Budget.request_s`` is refused with 422, saying what it would take, the limit and
  how to lower it (at most so many steps, an earlier layer or a smaller model, a server with a GPU);
- a client whose pending work (queued and running, its new request included) would pass
  ``Budget.client_s`` gets 429 with ``Retry-After``: its own earlier work must finish first;
- an atlas over ``Budget.atlas_s`` (its units' requests together) is refused with 422 likewise.

With ``--workers external`` the jobs run on the workers' devices, not this node's, so only measured
paces (the workers write them to the shared cache) are held against the budget; a layer that has
never run is let through once, and its first run measures it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .cache import ResultCache
from .request import InvalidRequest, ResolvedRequest
from .step_cost import StepCost, StepCostEstimator


@dataclass(frozen=True)
class Budget:
    """Seconds of compute here: one visualisation, one client's pending ones, one atlas, at most."""

    request_s: float
    client_s: float
    atlas_s: float


class TooCostly(InvalidRequest):
    """A request or an atlas that would take longer here than one may; the detail says how to lower it."""


def duration(seconds: float) -> str:
    """``seconds`` as a person says it: "about 40 s", "about 12 min", "about 3.5 h"."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


class CostGuard:
    """Prices requests and atlases before they are admitted (TooCostly past the budget)."""

    def __init__(self, estimator: StepCostEstimator, cache: ResultCache, budget: Budget, estimate_unmeasured: bool):
        self.estimator = estimator
        self.cache = cache
        self.budget = budget
        self.estimate_unmeasured = estimate_unmeasured

    async def per_step(self, resolved: ResolvedRequest) -> StepCost | None:
        """Seconds a step of the request's layer takes here; None where it is not known (see the module)."""
        measured = await self.cache.get_pace(resolved.request.model)
        if not measured.get(resolved.layer.id) and not self.estimate_unmeasured:
            return None
        return await asyncio.to_thread(self.estimator.seconds_per_step, resolved.model, resolved.layer.id, measured)

    async def visualization(self, resolved: ResolvedRequest) -> float:
        """The request's cost in seconds (0 where unknown); TooCostly if it is over one request's budget."""
        step = await self.per_step(resolved)
        if step is None:
            return 0.0
        steps = resolved.request.settings.steps
        cost = steps * step.seconds
        if cost > self.budget.request_s:
            raise TooCostly(
                f"this visualisation would take {duration(cost)} here ({steps} steps x {step.seconds:.2f} s a step "
                f"of {resolved.request.model}'s {resolved.layer.id}, {step.source}); a request may take at most "
                f"{duration(self.budget.request_s)}: {_lower(self.budget.request_s, step.seconds, 1)}"
            )
        return cost

    async def atlas(self, units: Sequence[ResolvedRequest]) -> float:
        """The atlas's cost in seconds (its units together); TooCostly over an atlas's budget."""
        step = await self.per_step(units[0])
        if step is None:
            return 0.0
        steps = units[0].request.settings.steps
        cost = len(units) * steps * step.seconds
        if cost > self.budget.atlas_s:
            raise TooCostly(
                f"this atlas would take {duration(cost)} here ({len(units)} units x {steps} steps x "
                f"{step.seconds:.2f} s a step, {step.source}); an atlas may take at most "
                f"{duration(self.budget.atlas_s)}: {_lower(self.budget.atlas_s, step.seconds, len(units))}"
            )
        return cost


def _lower(limit_s: float, step_s: float, units: int) -> str:
    """How to bring a request under ``limit_s``."""
    most = math.floor(limit_s / (step_s * units))
    fewer = f"ask for at most {most} steps, or " if most >= 1 else ""
    return f"{fewer}choose an earlier layer or a smaller model, or use a server with a GPU"
