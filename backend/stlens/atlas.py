"""Atlases: every unit of a layer visualised in the background, at low priority.

An atlas is the list of ordinary single-unit requests of a layer (the first ``MAX_ATLAS_UNITS``),
all with the same settings. Each unit goes through the job manager as its own job, under its own
content id, exactly as a single request: its result is cached where a click on its thumbnail
looks for it, a viewer who opens a unit that is running joins its job, and a share link of it is
recomputed to the same result. (Optimising several units in one batch does not give the same
result as optimising each alone: rounding differences of the batched kernels grow through Adam's
normalised steps, see docs/benchmarks.md.)

Low priority: a unit is submitted only while a job worker is free, and at most one atlas unit a worker
is in flight, so an interactive request waits at most for one unit; with several ``stlens worker``s
the units fan out over all of them. Atlases run first come first served, one per (model, layer,
settings) at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .budget import CostGuard
from .cache import ResultCache
from .clients import Client
from .jobs.core import Busy, Job, Jobs, Limits, Status
from .media.outputs import media_names
from .request import NotFound, NotYours, ResolvedRequest, short_hash

log = logging.getLogger(__name__)

AtlasStatus = Literal["running", "done"]
MAX_ATLAS_UNITS = 256  # a wider layer's atlas shows its first units
LIMITS = Limits(pending=16, per_client=4, noun="atlases", state="being computed", retry_after_s=30)
FINISHED_ATLASES_KEPT = 64
IDLE_POLL_S = 0.2  # how often a waiting atlas looks whether the job manager is idle
CANCELLED_BY_CLIENT = "cancelled: the atlas was cancelled by who started it"


@dataclass
class AtlasUnit:
    unit: int
    resolved: ResolvedRequest
    status: Status = "queued"
    detail: str | None = None
    warnings: list[str] = field(default_factory=list)  # the result's, once done

    @property
    def id(self) -> str:
        return self.resolved.id

    def media(self) -> list[str]:
        """The media names of the unit's result (those of the streams its layer depends on)."""
        spec = self.resolved.model.spec
        return media_names([s for s in self.resolved.layer.inputs if s in spec.inputs])


@dataclass
class Atlas:
    """One layer's units with one set of settings, and who is watching them fill in."""

    id: str
    units: list[AtlasUnit]
    units_total: int  # the layer's unit count (at least len(units))
    client: Client  # who asked first: the per-client limits count the atlas and its jobs against them
    listeners: set[asyncio.Queue[AtlasUnit | None]] = field(default_factory=set)
    cancelled: bool = False  # by its client: no unit is started any more

    @property
    def status(self) -> AtlasStatus:
        return "done" if all(u.status in ("done", "failed") for u in self.units) else "running"

    def listen(self) -> asyncio.Queue[AtlasUnit | None]:
        """Every later unit change, then None when the atlas is done (unbounded: at most 3 changes a unit)."""
        queue: asyncio.Queue[AtlasUnit | None] = asyncio.Queue()
        if self.status == "done":
            queue.put_nowait(None)
        else:
            self.listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[AtlasUnit | None]) -> None:
        self.listeners.discard(queue)

    def set_status(self, unit: AtlasUnit, status: Status, detail: str | None = None) -> None:
        unit.status, unit.detail = status, detail
        for queue in self.listeners:
            queue.put_nowait(unit)
        if self.status == "done":
            for queue in self.listeners:
                queue.put_nowait(None)
            self.listeners.clear()


def atlas_id(units: Sequence[ResolvedRequest]) -> str:
    """A content id for the atlas: a hash of its units' content ids (model weights, layer, settings)."""
    return short_hash(",".join(u.id for u in units))


class AtlasManager:
    """Keeps the atlases by id and fills them in, a unit for each free job worker (so the units of an atlas
    fan out over every ``stlens worker`` in the queued mode)."""

    def __init__(self, jobs: Jobs, cache: ResultCache, limits: Limits = LIMITS, costs: CostGuard | None = None):
        self.jobs = jobs
        self.cache = cache
        self.limits = limits
        self.costs = costs  # prices an atlas against its budget; None: no budget
        self._atlases: OrderedDict[str, Atlas] = OrderedDict()
        self._waiting: asyncio.Queue[Atlas] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None

    def get(self, atlas_id: str) -> Atlas | None:
        return self._atlases.get(atlas_id)

    async def start(self, units: Sequence[ResolvedRequest], units_total: int, client: Client) -> Atlas:
        """The atlas of these units: the one already known, or a new one queued for its missing units.

        Raises Busy past the limits on atlases being computed, in all or of this client's, and
        TooCostly for an atlas over its budget (its units not cached yet)."""
        if not 0 < len(units) <= MAX_ATLAS_UNITS:
            raise ValueError(f"an atlas has 1 to {MAX_ATLAS_UNITS} units, not {len(units)}")
        key = atlas_id(units)
        known = self._atlases.get(key)
        if known is not None and known.status == "running":
            return known
        self.limits.admit((a.client for a in self._atlases.values() if a.status == "running"), client)
        if self.costs is not None:
            missing = [u for u in units if await self.cache.get_record(u.id) is None]
            if missing:
                await self.costs.atlas(missing)
        atlas = Atlas(key, [AtlasUnit(r.unit, r) for r in units], units_total, client)
        for unit in atlas.units:
            await self.cache.put_request(unit.id, unit.resolved.request)  # so /v/{id} can recompute it
            if (record := await self.cache.get_record(unit.id)) is not None:
                unit.status, unit.warnings = "done", record.result.warnings
            elif (job := self.jobs.get(unit.id)) is not None and job.active:
                unit.status = "running" if job.status == "running" else "queued"
        self._atlases[key] = atlas
        self._atlases.move_to_end(key)
        self._forget_finished()
        if atlas.status == "running":
            self._waiting.put_nowait(atlas)
            if self._runner is None or self._runner.done():
                self._runner = asyncio.create_task(self._run())
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
        atlas.cancelled = True
        for unit in atlas.units:
            if unit.status in ("done", "failed"):
                continue
            job = self.jobs.get(unit.id)
            if job is not None and job.active and job.client.key == client.key:
                job.release()  # its unit fails as cancelled once the job stops
            elif job is None or not job.active:
                atlas.set_status(unit, "failed", CANCELLED_BY_CLIENT)
        return atlas

    def _forget_finished(self) -> None:
        finished = [key for key, atlas in self._atlases.items() if atlas.status == "done"]
        for key in finished[: max(0, len(finished) - FINISHED_ATLASES_KEPT)]:
            del self._atlases[key]

    async def _run(self) -> None:
        """Fill in the waiting atlases in turn, until none is left, a unit for each job worker at once."""
        while not self._waiting.empty():
            atlas = self._waiting.get_nowait()
            slots = asyncio.Semaphore(max(1, self.jobs.capacity))
            missing = [unit for unit in atlas.units if unit.status not in ("done", "failed")]
            await asyncio.gather(*(self._compute_in_slot(atlas, unit, slots) for unit in missing))

    async def _compute_in_slot(self, atlas: Atlas, unit: AtlasUnit, slots: asyncio.Semaphore) -> None:
        async with slots:
            try:
                await self._compute_unit(atlas, unit)
            except Exception as exc:  # e.g. a job manager that refuses it: this unit fails, the atlas goes on
                log.exception("atlas %s: unit %d failed", atlas.id, unit.unit)
                atlas.set_status(unit, "failed", f"{type(exc).__name__}: {exc}")

    async def _compute_unit(self, atlas: Atlas, unit: AtlasUnit) -> None:
        if unit.status in ("done", "failed"):  # failed as cancelled while it waited for a slot
            return
        if (record := await self.cache.get_record(unit.id)) is not None:  # computed meanwhile (someone opened it)
            unit.warnings = record.result.warnings
            atlas.set_status(unit, "done")
            return
        job = await self._submit_when_idle(unit.resolved, atlas)
        if job is None:  # the atlas was cancelled while the unit waited
            if unit.status not in ("done", "failed"):
                atlas.set_status(unit, "failed", CANCELLED_BY_CLIENT)
            return
        atlas.set_status(unit, "running")
        status, detail = await job.outcome()
        if status == "done" and (record := await self.cache.get_record(unit.id)) is not None:
            unit.warnings = record.result.warnings
        atlas.set_status(unit, status, CANCELLED_BY_CLIENT if atlas.cancelled and status == "failed" else detail)

    async def _submit_when_idle(self, request: ResolvedRequest, atlas: Atlas) -> Job | None:
        """Submit once a job worker is free (interactive work first: it never waits behind more than
        one atlas unit a worker); the active job of this id at once if someone else started it; None
        if the atlas is cancelled meanwhile."""
        while not atlas.cancelled:
            job = self.jobs.get(request.id)
            if (job is not None and job.active) or self.jobs.unfinished_count() < max(1, self.jobs.capacity):
                try:
                    return self.jobs.submit(request, keep=True, client=atlas.client)
                except Busy:
                    pass
            await asyncio.sleep(IDLE_POLL_S)
        return None

    async def aclose(self) -> None:
        """Stop filling in (the jobs themselves are the job manager's to stop)."""
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except asyncio.CancelledError:
                pass

