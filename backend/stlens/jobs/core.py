"""What every job manager shares: jobs, their viewers, the job table and its limits.

A job is one optimisation, under its content id: identical requests share it, a second viewer
joins it, and every viewer holds a :class:`Subscription` that keeps only the newest progress
message, so a slow client skips previews instead of stalling the optimiser or piling up memory.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..budget import duration
from ..clients import Client
from ..request import NotFound, NotYours, ResolvedRequest, VisualizationRequest
from .scheduling import Priority

Status = Literal["queued", "running", "done", "failed"]
FinalStatus = Literal["done", "failed"]
CANCELLED = "cancelled: every viewer left"
FINISHED_JOBS_KEPT = 256


@dataclass(frozen=True)
class Event:
    """What a job tells its viewers: that it waits (the ``queued`` message) or progress (its
    WebSocket message, JSON-encoded once for all viewers where the job runs), or that it is done
    or failed."""

    type: Literal["queued", "progress", "done", "failed"]
    message: str = ""


class Subscription:
    """One viewer's mailbox: holds the newest undelivered event only."""

    def __init__(self) -> None:
        self._event: Event | None = None
        self._ready = asyncio.Event()

    def offer(self, event: Event) -> None:
        self._event = event
        self._ready.set()

    async def next(self) -> Event:
        await self._ready.wait()
        self._ready.clear()
        event, self._event = self._event, None
        assert event is not None
        return event


@dataclass
class Job:
    """One optimisation and its viewers. A job nobody asked to keep (only live viewers want it)
    is cancelled when its last viewer leaves."""

    id: str
    request: VisualizationRequest
    client: Client = field(default_factory=lambda: Client(""))  # who asked first: limits and shares count it
    cost_s: float = 0.0  # estimated seconds of compute here (stlens.budget), held against its client's budget
    keep: bool = False
    released: bool = False  # the client that asked to keep it cancelled it (stlens.jobs.core.JobTable.release)
    priority: Priority = "interactive"  # background: atlas units, prefetches (scheduling.py)
    status: Status = "queued"
    detail: str | None = None
    latest: Event | None = None
    subscribers: set[Subscription] = field(default_factory=set)
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None  # held so the event loop does not drop it

    @property
    def seconds_per_step(self) -> float:
        """A step of its layer here, alone: its cost over its steps (0 where not known)."""
        return self.cost_s / self.request.settings.steps

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def active(self) -> bool:
        """Queued or running, and not being cancelled: a new viewer may join it."""
        return not self.finished and not self.cancel.is_set()

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        if self.latest is not None:
            subscription.offer(self.latest)
        self.subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscribers.discard(subscription)
        if not self.subscribers and not self.keep and not self.finished:
            self.cancel.set()  # the optimiser stops before its next step

    def release(self) -> bool:
        """Its client no longer wants it: it stops before its next step unless live viewers still
        watch it (then it goes on for them); whether it stops."""
        self.keep, self.released = False, True
        if not self.subscribers and not self.finished:
            self.cancel.set()
        return self.cancel.is_set()

    def mark_running(self) -> None:
        if self.status == "queued":
            self.status = "running"

    def publish(self, event: Event) -> None:
        """Called on the event loop: remember the event and hand it to every viewer (news that
        arrives after the end, a last preview, is dropped)."""
        if self.finished:
            return
        self.latest = event
        for subscription in self.subscribers:
            subscription.offer(event)

    def finish(self, status: FinalStatus, detail: str | None = None) -> None:
        """Done or failed (``detail`` says why): the viewers are told."""
        self.publish(Event(status))
        self.status, self.detail = status, detail

    async def outcome(self, seen: Callable[[Event], None] | None = None) -> tuple[FinalStatus, str | None]:
        """Wait until the job is finished: ("done", None) or ("failed", why); ``seen`` is told of each
        event meanwhile (the newest only, as any viewer)."""
        subscription = self.subscribe()
        try:
            while not self.finished:
                event = await subscription.next()
                if seen is not None:
                    seen(event)
        finally:
            self.unsubscribe(subscription)
        return ("done", None) if self.status == "done" else ("failed", self.detail or "the visualisation failed")


class Busy(RuntimeError):
    """More work would pass a limit: the server's (``whose`` "server"), one client's ("client") or
    one address's, all its clients together ("address"). ``retry_after_s`` is how long the caller
    should wait before asking again."""

    def __init__(self, detail: str, whose: Literal["server", "client", "address"], retry_after_s: int):
        super().__init__(detail)
        self.detail = detail
        self.whose = whose
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Limits:
    """How many of a kind of work may be pending (queued or running) at once: in all, per client
    (a browser session, see ``stlens.clients``) and per address, all its clients together (none
    where ``per_address`` is None)."""

    pending: int
    per_client: int
    per_address: int | None = None
    noun: str = "visualisations"
    state: str = "queued or running"
    retry_after_s: int = 5
    seconds_per_client: float | None = None  # their estimated compute together, at most (stlens.budget)

    def admit_cost(self, pending: Iterable[tuple[Client, float]], client: Client, cost_s: float) -> None:
        """Raise Busy if ``client``'s pending work (``pending``: each piece's client and cost) and
        ``cost_s`` more would pass ``seconds_per_client``."""
        if self.seconds_per_client is None or cost_s <= 0:
            return
        own = sum(cost for other, cost in pending if other.key == client.key)
        if own + cost_s > self.seconds_per_client:
            detail = (
                f"your {self.noun} {self.state} would take {duration(own)} here and this one {duration(cost_s)}; "
                f"one client's may take {duration(self.seconds_per_client)} together: wait for yours to finish, "
                "or ask for fewer steps"
            )
            raise Busy(detail, "client", self.retry_after_s)

    def admit(self, pending_clients: Iterable[Client], client: Client) -> None:
        """Raise Busy if one more piece of work for ``client`` would pass the limits;
        ``pending_clients`` has the client of each piece pending now."""
        clients = list(pending_clients)
        if len(clients) >= self.pending:
            detail = f"{self.pending} {self.noun} are {self.state}; try again when they finish"
            raise Busy(detail, "server", self.retry_after_s)
        if sum(c.key == client.key for c in clients) >= self.per_client:
            detail = f"you have {self.per_client} {self.noun} {self.state}; wait for them"
            raise Busy(detail, "client", self.retry_after_s)
        if self.per_address is not None and sum(c.address == client.address for c in clients) >= self.per_address:
            detail = (
                f"your address has {self.per_address} {self.noun} {self.state}, from all its browsers together; "
                "wait for some to finish"
            )
            raise Busy(detail, "address", self.retry_after_s)


class Jobs(Protocol):
    """A job manager, as the routes and the atlas see it (in-process or queued alike)."""

    started: int

    @property
    def capacity(self) -> int:
        """How many jobs can run at once."""
        ...

    @property
    def background_slots(self) -> int:
        """How many background jobs run at once (an atlas keeps that many of its units submitted)."""
        ...

    def get(self, job_id: str) -> Job | None: ...

    def unfinished_count(self) -> int: ...

    def submit(
        self,
        resolved: ResolvedRequest,
        keep: bool,
        client: Client,
        cost_s: float = 0.0,
        priority: Priority = "interactive",
    ) -> Job: ...

    def release(self, job_id: str, client: Client) -> Job: ...

    async def aclose(self) -> None: ...


class JobTable(ABC):
    """The jobs of one manager by id, admission to it, and forgetting: the part of a job manager
    that does not depend on where jobs run. A manager adds ``_start``: what it does with a new job."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self.started = 0  # jobs started since the manager started: shared requests count once

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def unfinished(self) -> list[Job]:
        """The jobs queued or running, oldest first."""
        return [job for job in self._jobs.values() if not job.finished]

    def unfinished_count(self) -> int:
        return sum(1 for job in self._jobs.values() if not job.finished)

    def submit(
        self,
        resolved: ResolvedRequest,
        keep: bool,
        client: Client,
        cost_s: float = 0.0,
        priority: Priority = "interactive",
    ) -> Job:
        """The active job of this id, or a new one for ``client`` (raises Busy past the limits, its
        estimated ``cost_s`` included).

        ``keep``: run it to the end even without viewers. ``priority``: interactive joining a
        background job makes it interactive."""
        job = self._jobs.get(resolved.id)
        if job is not None and job.active:
            job.keep = job.keep or keep
            if priority == "interactive" and job.priority == "background":
                job.priority = "interactive"
                self._promote(job)
            return job
        unfinished = self.unfinished()
        self.limits.admit((j.client for j in unfinished), client)
        self.limits.admit_cost(((j.client, j.cost_s) for j in unfinished), client, cost_s)
        job = Job(
            id=resolved.id, request=resolved.request, client=client, cost_s=cost_s, keep=keep, priority=priority
        )
        self._jobs[resolved.id] = job
        self.started += 1
        self._forget_finished()
        self._start(job, resolved)
        return job

    @abstractmethod
    def _start(self, job: Job, resolved: ResolvedRequest) -> None:
        """Run the new job, or queue it to run (called once, on the event loop)."""

    @abstractmethod
    def _promote(self, job: Job) -> None:
        """The background job is interactive now (someone waits at a page for it): run it so."""

    def release(self, job_id: str, client: Client) -> Job:
        """``client`` cancels the job it started (see :meth:`Job.release`); NotFound if there is no
        such job running or queued, NotYours if another client started it."""
        job = self._jobs.get(job_id)
        if job is None or not job.active:
            raise NotFound(f"no visualisation {job_id} is queued or running here")
        if job.client.key != client.key:
            raise NotYours(f"visualisation {job_id} was started by another client; only it may cancel it")
        job.release()
        return job

    def cancelled(self, job: Job) -> None:
        """Finish a cancelled job and forget it: not a failure to remember, the next request for
        its id starts afresh."""
        if self._jobs.get(job.id) is job:
            del self._jobs[job.id]
        job.finish("failed", CANCELLED)

    def cancel_all(self) -> None:
        for job in self._jobs.values():
            job.cancel.set()

    def _forget_finished(self) -> None:
        """Keep only the newest FINISHED_JOBS_KEPT finished jobs (their status answers lookups)."""
        finished = [job_id for job_id, job in self._jobs.items() if job.finished]
        for job_id in finished[: max(0, len(finished) - FINISHED_JOBS_KEPT)]:
            del self._jobs[job_id]
