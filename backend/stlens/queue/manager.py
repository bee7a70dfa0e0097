"""The job manager of an API node in ``--workers external`` mode: jobs run in ``stlens worker``s.

It shares the job table of the in-process manager (``jobs.core``), so the routes cannot tell
the modes apart. Each job goes to the queue of its priority (``protocol``); a background job that
gets an interactive viewer moves to the interactive queue while it waits, or is flagged for the
worker that holds it. A waiting job's viewers are told its place in the queues and an estimate;
once a worker holds it, that worker's stepper tells them. The node keeps no state another node needs: the queue,
the results, who is watching and who asked to keep a job are in Redis. Each node keeps a
``Job`` per job its own clients follow, fed by the workers' events (Redis pub/sub) and checked
against the queue every ``poll_s``: a job the queue lost (Redis restarted empty, keys evicted)
is enqueued again, so a lost message or a lost Redis delays a result but never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import redis
import redis.asyncio as aioredis
from saq.job import Status as QueueStatus
from saq.queue.redis import RedisQueue

from ..cache import ResultCache
from ..jobs.core import CANCELLED, Event, FinalStatus, Job, JobTable, Limits
from ..jobs.scheduling import PRIORITIES, Priority
from ..jobs.stepper import QUEUE_REPORT_EVERY_S
from ..request import ResolvedRequest
from ..run import queued_message
from . import protocol

log = logging.getLogger(__name__)

REDIS_ERRORS = (redis.RedisError, OSError)
WORKERS_CHECK_EVERY_S = 5.0


class QueuedJobs(JobTable):
    """Enqueues jobs for the workers and relays their progress to this node's viewers."""

    def __init__(self, cache: ResultCache, redis_url: str, limits: Limits, poll_s: float = 0.25):
        super().__init__(limits)
        self.cache = cache
        self.poll_s = poll_s
        self.node = uuid.uuid4().hex
        self.queues = {priority: protocol.make_queue(redis_url, priority) for priority in PRIORITIES}
        self.queue = self.queues["interactive"]
        self._queued_in: dict[str, Priority] = {}  # the queue each enqueued job is in
        self._promoted: set[str] = set()  # background jobs that got an interactive viewer since
        self._reported: dict[str, tuple[int, float]] = {}  # the place a waiting job's viewers were told, and when
        self._redis = aioredis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._enqueued: set[str] = set()  # ids this node has handed to the queue
        self._announced_done: set[str] = set()  # ids a worker said it finished
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._capacity = 0
        self._background_slots = 0
        self._workers_checked = 0.0

    @property
    def capacity(self) -> int:
        """Jobs the live workers can run at once (the sum of their concurrency, as they report it)."""
        return self._capacity

    @property
    def background_slots(self) -> int:
        return self._background_slots

    async def start(self) -> None:
        for queue in self.queues.values():
            await queue.connect()
        self._tasks = [asyncio.create_task(self._relay_events()), asyncio.create_task(self._supervise())]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for queue in self.queues.values():
            with contextlib.suppress(*REDIS_ERRORS):
                await queue.disconnect()
        await self._redis.aclose()

    def _start(self, job: Job, resolved: ResolvedRequest) -> None:
        """Handed to the queue by the supervisor, woken now (where it may meet the same job from another node)."""
        self._enqueued.discard(job.id)
        self._wake.set()

    def _promote(self, job: Job) -> None:
        """Moved or flagged by the supervisor, woken now."""
        self._promoted.add(job.id)
        self._wake.set()

    async def _relay_events(self) -> None:
        """Forward the workers' events to this node's jobs; resubscribe after a lost Redis."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(f"{protocol.EVENTS_PREFIX}*")
                async for message in pubsub.listen():
                    if message["type"] == "pmessage":
                        job_id = protocol.job_id_of_channel(message["channel"].decode())
                        self._on_event(job_id, message["data"].decode())
            except REDIS_ERRORS as exc:
                log.warning("lost the workers' events (%s); resubscribing", exc)
                await asyncio.sleep(self.poll_s)
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()

    def _on_event(self, job_id: str, message: str) -> None:
        job = self.get(job_id)
        if job is None or job.finished:
            return
        kind, payload = protocol.parse_event(message)
        if kind == "queued":  # waiting in the stepper of the worker that holds it
            job.publish(Event("queued", payload))
        elif kind == "progress":
            job.mark_running()
            job.publish(Event("progress", payload))
        elif kind == "running":
            job.mark_running()
        elif kind == "done":  # checked against the cache by the supervisor, woken now
            self._announced_done.add(job_id)
            self._wake.set()

    def _finish(self, job: Job, status: FinalStatus, detail: str | None = None) -> None:
        self._forget_queued(job)
        job.finish(status, detail)

    def _forget_queued(self, job: Job) -> None:
        self._enqueued.discard(job.id)
        self._announced_done.discard(job.id)
        self._queued_in.pop(job.id, None)
        self._promoted.discard(job.id)
        self._reported.pop(job.id, None)

    async def _supervise(self) -> None:
        """Every ``poll_s`` (or at once on a submit): enqueue, renew watches, cancel, reconcile."""
        while True:
            try:
                await self._reconcile()
            except REDIS_ERRORS as exc:
                log.warning("redis is unusable (%s); the queued jobs wait for it", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()

    async def _reconcile(self) -> None:
        """Bring this node's jobs and the queue in line: cancel, watch, enqueue, then take each job's
        state from the queue."""
        if time.monotonic() - self._workers_checked > WORKERS_CHECK_EVERY_S:
            info = await self.queue.info()
            reports = [w.get("metadata") or {} for w in info["workers"].values()]
            self._capacity = sum(int(w.get("concurrency", 1)) for w in reports)
            self._background_slots = sum(int(w.get("background", 0)) for w in reports)
            self._workers_checked = time.monotonic()
        unfinished = self.unfinished()
        for job in unfinished:
            if job.cancel.is_set():
                await self._cancel(job)
        live = [job for job in unfinished if not job.cancel.is_set()]
        if not live:
            return
        await self._watch(live)
        for job in live:
            if job.id in self._promoted:
                await self._move_promoted(job)
            if job.id not in self._enqueued:
                await self._enqueue(job)
        for priority, queue in self.queues.items():
            mine = [job for job in live if self._queued_in.get(job.id, job.priority) == priority]
            if mine:
                await self._reconcile_queue(queue, mine)
        await self._report_places([job for job in live if job.status == "queued"])

    async def _reconcile_queue(self, queue: RedisQueue, live: list[Job]) -> None:
        """Take each job's state from the queue it is in."""
        stored = await queue.jobs(job.id for job in live)
        for job, queued in zip(live, stored, strict=True):
            finished_run = queued is not None and queued.status == QueueStatus.COMPLETE
            if finished_run or job.id in self._announced_done:
                self._announced_done.discard(job.id)
                if await self.cache.get_record(job.id) is not None:
                    self._finish(job, "done")
                    continue
            if queued is None or finished_run or queued.status in (QueueStatus.ABORTING, QueueStatus.ABORTED):
                # lost (Redis restarted empty), finished without its result reaching the cache,
                # cancelled by earlier viewers, or left aborting by a sweeper that died: the
                # queue takes it again (once an abort has finished or lapsed)
                await self._enqueue(job)
            elif queued.status == QueueStatus.ACTIVE:
                job.mark_running()
            elif queued.status == QueueStatus.FAILED:
                reason = (queued.error or "the worker failed").strip().splitlines()[-1]
                self._finish(job, "failed", reason)

    async def _watch(self, jobs: list[Job]) -> None:
        """Renew this node's claim on the jobs its viewers follow; record who asked to keep one."""
        expires = time.time() + protocol.WATCH_TTL_S
        async with self._redis.pipeline(transaction=False) as pipe:
            for job in jobs:
                key = protocol.watchers_key(job.id)
                pipe.zadd(key, {self.node: expires})
                pipe.expire(key, int(protocol.WATCH_TTL_S * 4))
                if job.keep:
                    pipe.set(protocol.keep_key(job.id), 1, ex=protocol.JOB_TIMEOUT_S)
            await pipe.execute()

    async def _enqueue(self, job: Job) -> None:
        options = protocol.job_options(job.id, job.request, job.client.key, job.seconds_per_step)
        await self.queues[job.priority].enqueue(protocol.FUNCTION, **options)
        self._enqueued.add(job.id)  # enqueued now, or already in the queue from another node
        self._queued_in[job.id] = job.priority

    async def _move_promoted(self, job: Job) -> None:
        """A background job with an interactive viewer: still waiting, it moves to the interactive
        queue; held by a worker, that worker is told to step it as interactive."""
        self._promoted.discard(job.id)
        await self._redis.set(protocol.promoted_key(job.id), 1, ex=protocol.JOB_TIMEOUT_S)
        if self._queued_in.get(job.id) != "background":
            return
        background = self.queues["background"]
        queued = await background.job(job.id)
        if queued is not None and queued.status == QueueStatus.QUEUED:
            await background.abort(queued, "moved to the interactive queue")
            self._enqueued.discard(job.id)  # enqueued again, in the interactive queue, now
            await self._enqueue(job)

    async def _report_places(self, waiting: list[Job]) -> None:
        """Tell the viewers of each job still in a queue its place there (interactive jobs all go
        first) and an estimate: the jobs ahead and itself, a run's time alone each, shared by the
        workers' slots. Whenever the place changes, and at least every QUEUE_REPORT_EVERY_S."""
        if not waiting:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for job in waiting:
                queue = self.queues[self._queued_in.get(job.id, job.priority)]
                pipe.lpos(queue.namespace("queued"), queue.job_id(job.id))
            pipe.llen(self.queue.namespace("queued"))
            *places, interactive_waiting = await pipe.execute()
        now = time.monotonic()
        for job, place in zip(waiting, places, strict=True):
            if place is None:  # taken by a worker meanwhile: its stepper reports from now on
                continue
            if self._queued_in.get(job.id) == "background":
                place += interactive_waiting
            told = self._reported.get(job.id)
            if told is not None and told[0] == place and now - told[1] < QUEUE_REPORT_EVERY_S:
                continue
            run_s = job.request.settings.steps * job.seconds_per_step
            eta = (place + 1) * run_s / max(1, self._capacity)
            self._reported[job.id] = (place, now)
            job.publish(Event("queued", queued_message(place, eta)))

    async def _cancel(self, job: Job) -> None:
        """This node's viewers all left: abort the job unless another node's viewers or a keeper want it."""
        if self.get(job.id) is not job:
            return
        self._forget_queued(job)
        self.cancelled(job)
        watchers = protocol.watchers_key(job.id)
        await self._redis.zrem(watchers, self.node)
        if job.released:  # the client that asked to keep it cancelled it
            await self._redis.delete(protocol.keep_key(job.id))
        if await self._redis.exists(protocol.keep_key(job.id)):
            return
        if await self._redis.zcount(watchers, time.time(), "+inf"):
            return
        queue = self.queues[self._queued_in.get(job.id, job.priority)]
        queued = await queue.job(job.id)
        if queued is not None and queued.status in (QueueStatus.QUEUED, QueueStatus.ACTIVE):
            await queue.abort(queued, CANCELLED)
