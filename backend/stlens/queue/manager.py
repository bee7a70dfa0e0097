"""The job manager of an API node in ``--workers external`` mode: jobs run in ``stlens worker``s.

It shares the job table of the in-process manager (``jobs.core``), so the routes cannot tell
the modes apart. The node keeps no state another node needs: the queue,
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

from ..cache import ResultCache
from ..jobs.core import CANCELLED, Event, FinalStatus, Job, JobTable, Limits
from ..request import ResolvedRequest
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
        self.queue = protocol.make_queue(redis_url)
        self._redis = aioredis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._enqueued: set[str] = set()  # ids this node has handed to the queue
        self._announced_done: set[str] = set()  # ids a worker said it finished
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._capacity = 0
        self._workers_checked = 0.0

    @property
    def capacity(self) -> int:
        """Jobs the live workers can run at once (the sum of their concurrency, as they report it)."""
        return self._capacity

    async def start(self) -> None:
        await self.queue.connect()
        self._tasks = [asyncio.create_task(self._relay_events()), asyncio.create_task(self._supervise())]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(*REDIS_ERRORS):
            await self.queue.disconnect()
        await self._redis.aclose()

    def _start(self, job: Job, resolved: ResolvedRequest) -> None:
        """Handed to the queue by the supervisor, woken now (where it may meet the same job from another node)."""
        self._enqueued.discard(job.id)
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
        if kind == "progress":
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
            reports = info["workers"].values()
            self._capacity = sum(int((w.get("metadata") or {}).get("concurrency", 1)) for w in reports)
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
            if job.id not in self._enqueued:
                await self._enqueue(job)
        stored = await self.queue.jobs(job.id for job in live)
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
        await self.queue.enqueue(protocol.FUNCTION, **protocol.job_options(job.id, job.request))
        self._enqueued.add(job.id)  # enqueued now, or already in the queue from another node

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
        queued = await self.queue.job(job.id)
        if queued is not None and queued.status in (QueueStatus.QUEUED, QueueStatus.ACTIVE):
            await self.queue.abort(queued, CANCELLED)
