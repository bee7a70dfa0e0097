"""What API nodes and workers agree on: the saq queues, the job options and the event channels.

Two queues, one a priority: interactive work (someone waits at a page) and background work (atlas
units, prefetches). A worker takes from both, with slots of its own for each, and its stepper steps
background runs only while no interactive one is admitted: an interactive job never waits behind
background ones, in the queue or in a worker. A visualisation's saq job key is its content id, so
each queue itself merges identical requests from every API node. Workers heartbeat while they run
a job; a job not heard from for ``HEARTBEAT_S`` is swept by any live worker and run again (up to
``ATTEMPTS`` runs).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import redis.asyncio as aioredis
from saq.job import Job, Status
from saq.queue.redis import RedisQueue

from ..cache import KEY_PREFIX
from ..jobs.scheduling import Priority
from ..request import VisualizationRequest

QUEUE_NAME = "stlens"  # interactive (the name API nodes of every version use)
QUEUE_NAMES: dict[Priority, str] = {"interactive": QUEUE_NAME, "background": "stlens-background"}
FUNCTION = "visualize"  # the saq function's name in Redis (API nodes and workers of any version agree on it)
EVENTS_PREFIX = f"{KEY_PREFIX}:events:"
RUNS_KEY = f"{KEY_PREFIX}:stats:runs"  # optimisation runs started by all workers: the load test counts them
HEARTBEAT_S = 5
HEARTBEAT_EVERY_S = 1.0
MARK_POLL_S = 0.05  # how often a sweep looks again at a job just taken (``JobQueue``)
SWEEP_EVERY_S = 1  # how often a worker looks for jobs left by a dead one (whole seconds: a lock TTL)
ATTEMPTS = 3
JOB_TIMEOUT_S = 6 * 3600  # a bound, not an estimate: liveness is the heartbeat's job
WATCH_TTL_S = 5.0  # an API node's claim on a job's viewers lapses unless renewed (every poll)

EventType = Literal["queued", "running", "progress", "done"]


class JobQueue(RedisQueue):
    """saq's Redis queue less one race (tobymao/saq#277): a worker takes a job into the active list
    and marks it active a moment later; a sweep by another worker that met it in between took it for
    a dead worker's, aborted it and queued it again, and both workers ran it. Here a job found so is
    given a heartbeat to be marked before the sweep goes on; one never marked is swept as before."""

    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        if error == self.swept_error_message and await self._marked_meanwhile(job):
            return
        await super().abort(job, error, ttl)

    async def retry(self, job: Job, error: str | None) -> None:  # the sweep's next step, on its refreshed copy
        if error == self.swept_error_message and _running(job):
            return
        await super().retry(job, error)

    async def finish(  # that step once retries are spent
        self, job: Job, status: Status, *, result: Any = None, error: str | None = None, **kwargs: Any
    ) -> None:
        if status == Status.ABORTED and error == self.swept_error_message and _running(job):
            return
        await super().finish(job, status, result=result, error=error, **kwargs)

    async def _marked_meanwhile(self, job: Job) -> bool:
        if job.status != Status.QUEUED:
            return False
        deadline = time.monotonic() + HEARTBEAT_S
        while (stored := await self.job(job.key)) is not None and stored.status == Status.QUEUED:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(MARK_POLL_S)
        return stored is not None and _running(stored)


def _running(job: Job) -> bool:
    return job.status == Status.ACTIVE and not job.stuck


def make_queue(redis_url: str, priority: Priority = "interactive") -> RedisQueue:
    """The queue of a priority on any URL redis-py takes (``Queue.from_url`` refuses ``unix://``)."""
    return JobQueue(aioredis.from_url(redis_url), name=QUEUE_NAMES[priority])


def priority_of_queue(name: str) -> Priority:
    return "background" if name == QUEUE_NAMES["background"] else "interactive"


def worker_id(host: str, pid: int) -> str:
    """A worker's saq id: which process on which machine holds a job (saq ids contain no ':')."""
    return f"{host}-{pid}"


def worker_info_key(worker: str) -> str:
    """Where saq keeps a live worker's report (written at start, then every 10 s)."""
    return f"saq:{QUEUE_NAME}:worker_info:{worker}"


def job_options(job_id: str, request: VisualizationRequest, client: str, seconds_per_step: float) -> dict[str, Any]:
    """``queue.enqueue(FUNCTION, **job_options(...))``: the job's key, who asked (its fair share in
    the worker), its layer's pace here (the estimates its viewers are told), liveness and retries."""
    return {
        "key": job_id,
        "request": request.as_json(),
        "client": client,
        "seconds_per_step": seconds_per_step,
        "timeout": JOB_TIMEOUT_S,
        "heartbeat": HEARTBEAT_S,
        "retries": ATTEMPTS,
    }


def events_channel(job_id: str) -> str:
    return f"{EVENTS_PREFIX}{job_id}"


def job_id_of_channel(channel: str) -> str:
    return channel.removeprefix(EVENTS_PREFIX)


def event_message(kind: EventType, payload: str = "") -> str:
    """A channel message: its kind, a newline, then (for progress) the WebSocket message as is."""
    return f"{kind}\n{payload}"


def parse_event(message: str) -> tuple[str, str]:
    kind, _, payload = message.partition("\n")
    return kind, payload


def keep_key(job_id: str) -> str:
    """Set while someone asked for the job to run to the end (an HTTP client): never cancelled."""
    return f"{KEY_PREFIX}:keep:{job_id}"


def promoted_key(job_id: str) -> str:
    """Set while a background job that a worker holds has an interactive viewer: the worker steps it so."""
    return f"{KEY_PREFIX}:promoted:{job_id}"


def watchers_key(job_id: str) -> str:
    """A sorted set of the API nodes with live viewers of the job, scored by when that expires."""
    return f"{KEY_PREFIX}:watchers:{job_id}"
