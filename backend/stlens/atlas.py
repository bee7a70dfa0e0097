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
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .cache import ResultCache
from .jobs import Busy, Job, ResolvedRequest
from .media.render import media_names

log = logging.getLogger(__name__)

UnitStatus = Literal["queued", "running", "done", "failed"]
AtlasStatus = Literal["running", "done"]
MAX_ATLAS_UNITS = 256  # a wider layer's atlas shows its first units
MAX_PENDING_ATLASES = 16  # atlases queued or running; more are refused
MAX_PENDING_PER_CLIENT = 4  # the same for one client address
FINISHED_ATLASES_KEPT = 64
IDLE_POLL_S = 0.2  # how often a waiting atlas looks whether the job manager is idle
ATLAS_CLIENT = "atlas"  # the client its jobs are counted against in the job manager


class Jobs(Protocol):
    """What an atlas needs of a job manager (the in-process one or the queued one)."""

    def get(self, vid: str) -> Job | None: ...

    def running_count(self) -> int: ...

    @property
    def workers(self) -> int: ...

    def submit(self, resolved: ResolvedRequest, keep: bool, client: str) -> Job: ...


@dataclass
class AtlasUnit:
    unit: int
    request: ResolvedRequest
    status: UnitStatus = "queued"
    detail: str | None = None

    @property
    def id(self) -> str:
        return self.request.id

    def media(self) -> list[str]:
        """The media names of the unit's result (those of the streams its layer depends on)."""
        spec = self.request.model.spec
        return media_names([s for s in self.request.layer.inputs if s in spec.inputs])


@dataclass
class Atlas:
    """One layer's units with one set of settings, and who is watching them fill in."""

    id: str
    units: list[AtlasUnit]
    units_total: int  # the layer's unit count (at least len(units))
    client: str = ""  # who asked first: the per-client limit counts the atlas against them
    listeners: set[asyncio.Queue[AtlasUnit | None]] = field(default_factory=set)

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

    def set_status(self, unit: AtlasUnit, status: UnitStatus, detail: str | None = None) -> None:
        unit.status, unit.detail = status, detail
        for queue in self.listeners:
            queue.put_nowait(unit)
        if self.status == "done":
            for queue in self.listeners:
                queue.put_nowait(None)
            self.listeners.clear()


def atlas_id(units: Sequence[ResolvedRequest]) -> str:
    """A content id for the atlas: a hash of its units' content ids (model weights, layer, settings)."""
    return hashlib.sha256(",".join(u.id for u in units).encode()).hexdigest()[:20]


class AtlasManager:
    """Keeps the atlases by id and fills them in, a unit for each free job worker (so the units of an atlas
    fan out over every ``stlens worker`` in the queued mode)."""

    def __init__(
        self,
        jobs: Jobs,
        cache: ResultCache,
        max_pending: int = MAX_PENDING_ATLASES,
        max_pending_per_client: int = MAX_PENDING_PER_CLIENT,
    ):
        self.jobs = jobs
        self.cache = cache
        self.max_pending = max_pending
        self.max_pending_per_client = max_pending_per_client
        self._atlases: OrderedDict[str, Atlas] = OrderedDict()
        self._waiting: asyncio.Queue[Atlas] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None

    def get(self, aid: str) -> Atlas | None:
        return self._atlases.get(aid)

    async def start(self, units: Sequence[ResolvedRequest], units_total: int, client: str) -> Atlas:
        """The atlas of these units: the one already known, or a new one queued for its missing units.

        Raises Busy when ``max_pending`` atlases are already queued or running (503), or
        ``max_pending_per_client`` of this client's (429)."""
        if not 0 < len(units) <= MAX_ATLAS_UNITS:
            raise ValueError(f"an atlas has 1 to {MAX_ATLAS_UNITS} units, not {len(units)}")
        aid = atlas_id(units)
        known = self._atlases.get(aid)
        if known is not None and known.status == "running":
            return known
        pending = [a for a in self._atlases.values() if a.status == "running"]
        if len(pending) >= self.max_pending:
            raise Busy(f"{self.max_pending} atlases are being computed; try again when they finish", 503)
        if sum(a.client == client for a in pending) >= self.max_pending_per_client:
            raise Busy(f"you have {self.max_pending_per_client} atlases being computed; wait for them", 429)
        atlas = Atlas(aid, [AtlasUnit(r.unit, r) for r in units], units_total, client)
        for unit in atlas.units:
            await self.cache.put_request(unit.id, unit.request.as_json())  # so /v/{id} can recompute it
            if await self.cache.get_record(unit.id) is not None:
                unit.status = "done"
            elif (job := self.jobs.get(unit.id)) is not None and job.active:
                unit.status = "running" if job.status == "running" else "queued"
        self._atlases[aid] = atlas
        self._atlases.move_to_end(aid)
        self._forget_finished()
        if atlas.status == "running":
            self._waiting.put_nowait(atlas)
            if self._runner is None or self._runner.done():
                self._runner = asyncio.create_task(self._run())
        return atlas

    def _forget_finished(self) -> None:
        finished = [aid for aid, atlas in self._atlases.items() if atlas.status == "done"]
        for aid in finished[: max(0, len(finished) - FINISHED_ATLASES_KEPT)]:
            del self._atlases[aid]

    async def _run(self) -> None:
        """Fill in the waiting atlases in turn, until none is left, a unit for each job worker at once."""
        while not self._waiting.empty():
            atlas = self._waiting.get_nowait()
            slots = asyncio.Semaphore(max(1, self.jobs.workers))

            async def fill(unit: AtlasUnit) -> None:
                async with slots:
                    try:
                        await self._fill(atlas, unit)
                    except Exception as exc:  # e.g. a job manager that refuses it: this unit fails, the atlas goes on
                        log.exception("atlas %s: unit %d failed", atlas.id, unit.unit)
                        atlas.set_status(unit, "failed", f"{type(exc).__name__}: {exc}")

            await asyncio.gather(*(fill(u) for u in atlas.units if u.status not in ("done", "failed")))

    async def _fill(self, atlas: Atlas, unit: AtlasUnit) -> None:
        if await self.cache.get_record(unit.id) is not None:  # computed meanwhile (someone opened it)
            atlas.set_status(unit, "done")
            return
        job = await self._submit_when_idle(unit.request)
        atlas.set_status(unit, "running")
        status, detail = await _outcome(job)
        atlas.set_status(unit, status, detail)

    async def _submit_when_idle(self, request: ResolvedRequest) -> Job:
        """Submit once a job worker is free (interactive work first: it never waits behind more than
        one atlas unit a worker); the active job of this id at once if someone else started it."""
        while True:
            job = self.jobs.get(request.id)
            if (job is not None and job.active) or self.jobs.running_count() < max(1, self.jobs.workers):
                try:
                    return self.jobs.submit(request, keep=True, client=ATLAS_CLIENT)
                except Busy:
                    pass
            await asyncio.sleep(IDLE_POLL_S)

    async def aclose(self) -> None:
        """Stop filling in (the jobs themselves are the job manager's to stop)."""
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except asyncio.CancelledError:
                pass


async def _outcome(job: Job) -> tuple[UnitStatus, str | None]:
    """Wait for a job to finish: ("done", None) or ("failed", why)."""
    subscription = job.subscribe()
    try:
        while not job.finished:
            await subscription.next()
    finally:
        job.unsubscribe(subscription)
    return ("done", None) if job.status == "done" else ("failed", job.detail or "the visualisation failed")
