"""Atlases: every unit of a layer visualised in the background, announced, stoppable.

An atlas is the list of ordinary single-unit requests of a layer (the first ``MAX_ATLAS_UNITS``),
all with the same settings. Each unit goes through the job manager as its own job, under its own
content id: its result is cached where a click on its thumbnail looks for it, and a viewer who
opens a unit that is running joins its job (which then becomes interactive).

Background priority: an atlas keeps ``jobs.background_slots`` of its units submitted at once (they
step as one small batch, after every interactive request: ``jobs.scheduling``), so with several
``stlens worker``s its units fan out over all of them. A batched unit's result is close to, not
bit for bit, the same request alone: the batched kernels round differently and Adam's normalised
steps grow it (docs/benchmarks.md); the cache keeps the first result of an id, which its share link
shows everywhere.

Announced and stoppable: an atlas is priced before it starts (``budget.CostGuard``: refused past its
budget) and says how long its units left take. Whoever started it (its client, ``stlens.clients``)
can cancel it; one started over the live socket also stops once nobody has watched it for
``UNWATCHED_GRACE_S`` (a reload does not stop it) unless it was asked to ``run_on``; one started over
HTTP runs on (its caller polls). A stopped atlas keeps the units it finished; the others fail as
cancelled, their jobs stop unless someone else watches them, and nothing half-done is stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .budget import CostGuard
from .cache import ResultCache
from .clients import Client
from .jobs.core import Busy, Event, Jobs, Limits, Status
from .media.outputs import media_names
from .request import NotFound, NotYours, ResolvedRequest, short_hash

log = logging.getLogger(__name__)

AtlasStatus = Literal["running", "done"]
SETTLED: tuple[Status, ...] = ("done", "failed")
MAX_ATLAS_UNITS = 256  # a wider layer's atlas shows its first units
LIMITS = Limits(pending=16, per_client=4, noun="atlases", state="being computed", retry_after_s=30)
FINISHED_ATLASES_KEPT = 64
BUSY_RETRY_S = 0.5  # a unit the job manager has no room for is submitted again after this
UNWATCHED_GRACE_S = 10.0  # a live atlas nobody watches stops after this (unless it runs on)
CANCELLED_BY_CLIENT = "cancelled: the atlas was cancelled by who started it"
CANCELLED_UNWATCHED = "cancelled: nobody watched the atlas any more (ask it to run on to keep it going)"


@dataclass
class AtlasUnit:
    unit: int
    resolved: ResolvedRequest
    status: Status = "queued"  # running only once its job takes steps (a submitted unit may still wait)
    detail: str | None = None
    warnings: list[str] = field(default_factory=list)  # the result's, once done
    position: int | None = None  # while queued: the runs ahead of its job (the ``queued`` message), when known

    @property
    def id(self) -> str:
        return self.resolved.id

    def media(self) -> list[str]:
        """The media names of the unit's result (those of the streams its layer depends on)."""
        spec = self.resolved.model.spec
        return media_names([s for s in self.resolved.layer.inputs if s in spec.inputs])


@dataclass
class Atlas:
    """One layer's units with one set of settings, who started it, and who is watching them fill in."""

    id: str
    units: list[AtlasUnit]
    units_total: int  # the layer's unit count (at least len(units))
    client: Client  # who asked first: the per-client limits count it, and only it may cancel it
    run_on: bool = False  # go on when nobody watches
    seconds_per_unit: float = 0.0  # one unit alone here, estimated before it starts (0: not known)
    listeners: set[asyncio.Queue[AtlasUnit | None]] = field(default_factory=set)
    cancelled: bool = False  # no unit is started any more
    started: float = field(default_factory=time.monotonic)
    computed: int = 0  # units this atlas finished itself: how fast it goes, measured
    filling: asyncio.Task[None] | None = None

    @property
    def status(self) -> AtlasStatus:
        return "done" if all(u.status in SETTLED for u in self.units) else "running"

    @property
    def eta_s(self) -> float | None:
        """About how long the units left take: at the pace measured so far, or estimated before any."""
        if self.status != "running" or not (self.computed or self.seconds_per_unit):
            return None
        left = sum(u.status not in SETTLED for u in self.units)
        per_unit = (time.monotonic() - self.started) / self.computed if self.computed else self.seconds_per_unit
        return round(left * per_unit, 1)

    def listen(self) -> asyncio.Queue[AtlasUnit | None]:
        """Every later unit change, then None when the atlas is over (unbounded: at most 3 changes a unit)."""
        queue: asyncio.Queue[AtlasUnit | None] = asyncio.Queue()
        if self.status != "running":
            queue.put_nowait(None)
        else:
            self.listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[AtlasUnit | None]) -> None:
        self.listeners.discard(queue)

    def set_status(
        self, unit: AtlasUnit, status: Status, detail: str | None = None, position: int | None = None
    ) -> None:
        unit.status, unit.detail, unit.position = status, detail, position
        for queue in self.listeners:
            queue.put_nowait(unit)
        if self.status != "running":
            self._over()

    def cancel(self, why: str) -> None:
        """Stop: the units not finished fail as cancelled (``why``), their jobs stop unless someone
        else watches them (the atlas watches them as a viewer does)."""
        if self.status != "running":
            return
        self.cancelled = True
        if self.filling is not None:
            self.filling.cancel()
        for unit in self.units:
            if unit.status not in SETTLED:
                unit.status, unit.detail = "failed", why
                for queue in self.listeners:
                    queue.put_nowait(unit)
        self._over()

    def _over(self) -> None:
        for queue in self.listeners:
            queue.put_nowait(None)
        self.listeners.clear()


def atlas_id(units: Sequence[ResolvedRequest]) -> str:
    """A content id for the atlas: a hash of its units' content ids (model weights, layer, settings)."""
    return short_hash(",".join(u.id for u in units))


class AtlasManager:
    """Keeps the atlases by id and fills each in, ``jobs.background_slots`` units at a time."""

    def __init__(self, jobs: Jobs, cache: ResultCache, limits: Limits = LIMITS, costs: CostGuard | None = None):
        self.jobs = jobs
        self.cache = cache
        self.limits = limits
        self.costs = costs  # prices an atlas against its budget; None: no budget
        self._atlases: OrderedDict[str, Atlas] = OrderedDict()

    def get(self, atlas_id: str) -> Atlas | None:
        return self._atlases.get(atlas_id)

    async def start(
        self, units: Sequence[ResolvedRequest], units_total: int, client: Client, run_on: bool
    ) -> Atlas:
        """The atlas of these units: the one already running (``run_on`` joins its wish), or a new
        one for its missing units. Raises Busy past the limits on atlases being computed, in all or
        of this client's, and TooCostly for an atlas over its budget (its units not cached yet)."""
        if not 0 < len(units) <= MAX_ATLAS_UNITS:
            raise ValueError(f"an atlas has 1 to {MAX_ATLAS_UNITS} units, not {len(units)}")
        key = atlas_id(units)
        known = self._atlases.get(key)
        if known is not None and known.status == "running":
            known.run_on = known.run_on or run_on
            return known
        self.limits.admit((a.client for a in self._atlases.values() if a.status == "running"), client)
        missing = [u for u in units if await self.cache.get_record(u.id) is None]
        cost = await self.costs.atlas(missing) if self.costs is not None and missing else 0.0
        per_unit = cost / len(missing) if missing else 0.0
        atlas = Atlas(key, [AtlasUnit(r.unit, r) for r in units], units_total, client, run_on, per_unit)
        for unit in atlas.units:
            await self.cache.put_request(unit.id, unit.resolved.request)  # so /v/{id} can recompute it
            if (record := await self.cache.get_record(unit.id)) is not None:
                unit.status, unit.warnings = "done", record.result.warnings
            elif (job := self.jobs.get(unit.id)) is not None and job.active:
                unit.status = "running" if job.latest is not None and job.latest.type == "progress" else "queued"
        self._atlases[key] = atlas
        self._atlases.move_to_end(key)
        self._forget_finished()
        if atlas.status == "running":
            atlas.filling = asyncio.create_task(self._fill(atlas))
        return atlas

    def cancel(self, atlas_id: str, client: Client) -> Atlas:
        """``client`` stops the atlas it started: no more units start, and a running unit stops unless
        someone else watches it; the finished units stay stored, nothing half-done is. NotFound for an
        unknown atlas, NotYours for another client's."""
        atlas = self._atlases.get(atlas_id)
        if atlas is None:
            raise NotFound(f"unknown atlas {atlas_id}")
        if atlas.client.key != client.key:
            raise NotYours(f"atlas {atlas_id} was started by another client; only it may cancel it")
        atlas.cancel(CANCELLED_BY_CLIENT)
        return atlas

    def unwatched(self, atlas: Atlas) -> None:
        """A live viewer left: stop the atlas if nobody watches it a while from now (unless it runs on)."""
        if atlas.run_on or atlas.listeners or atlas.status != "running":
            return
        asyncio.get_running_loop().call_later(UNWATCHED_GRACE_S, self._stop_if_unwatched, atlas)

    @staticmethod
    def _stop_if_unwatched(atlas: Atlas) -> None:
        if not atlas.run_on and not atlas.listeners:
            log.info("atlas %s: nobody watches it, stopping", atlas.id)
            atlas.cancel(CANCELLED_UNWATCHED)

    def _forget_finished(self) -> None:
        finished = [key for key, atlas in self._atlases.items() if atlas.status != "running"]
        for key in finished[: max(0, len(finished) - FINISHED_ATLASES_KEPT)]:
            del self._atlases[key]

    async def _fill(self, atlas: Atlas) -> None:
        """Compute the atlas's missing units, ``jobs.background_slots`` of them submitted at a time."""
        slots = asyncio.Semaphore(max(1, self.jobs.background_slots))
        missing = [unit for unit in atlas.units if unit.status not in SETTLED]
        await asyncio.gather(*(self._compute_in_slot(atlas, unit, slots) for unit in missing))

    async def _compute_in_slot(self, atlas: Atlas, unit: AtlasUnit, slots: asyncio.Semaphore) -> None:
        async with slots:
            try:
                await self._compute_unit(atlas, unit)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. a job manager that refuses it: this unit fails, the atlas goes on
                log.exception("atlas %s: unit %d failed", atlas.id, unit.unit)
                atlas.set_status(unit, "failed", f"{type(exc).__name__}: {exc}")

    async def _compute_unit(self, atlas: Atlas, unit: AtlasUnit) -> None:
        if (record := await self.cache.get_record(unit.id)) is not None:  # computed meanwhile (someone opened it)
            unit.warnings = record.result.warnings
            atlas.set_status(unit, "done")
            return
        while True:
            try:  # the atlas watches the job as a viewer would: cancelling it leaves the job unless others watch
                job = self.jobs.submit(unit.resolved, False, atlas.client, atlas.seconds_per_unit, "background")
                break
            except Busy:
                await asyncio.sleep(BUSY_RETRY_S)
        status, detail = await job.outcome(lambda event: self._follow(atlas, unit, event))
        if status == "done" and (record := await self.cache.get_record(unit.id)) is not None:
            unit.warnings = record.result.warnings
        atlas.computed += status == "done"
        atlas.set_status(unit, status, detail)

    @staticmethod
    def _follow(atlas: Atlas, unit: AtlasUnit, event: Event) -> None:
        """A submitted unit is queued (at its place, once its job hears it) until its job takes a step."""
        if unit.status == "running" or unit.status in SETTLED:
            return
        if event.type == "progress":
            atlas.set_status(unit, "running")
        elif event.type == "queued" and (position := json.loads(event.message)["position"]) != unit.position:
            atlas.set_status(unit, "queued", position=position)

    async def aclose(self) -> None:
        """Stop filling in (the jobs themselves are the job manager's to stop)."""
        filling = [atlas.filling for atlas in self._atlases.values() if atlas.filling is not None]
        for task in filling:
            task.cancel()
        await asyncio.gather(*filling, return_exceptions=True)
