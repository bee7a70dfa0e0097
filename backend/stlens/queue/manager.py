"""The job manager of an API node in ``--workers external`` mode: jobs run in ``stlens worker``s.

It has JobManager's interface (``get``, ``submit``, ``running_count``, ``started``), so the
routes cannot tell the modes apart. The node keeps no state another node needs: the queue,
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
from collections import OrderedDict

import redis
import redis.asyncio as aioredis
from saq.job import Status as QueueStatus

from ..cache import ResultCache
from ..jobs import Event, Job, ResolvedRequest, Status, admit, forget_finished
from . import protocol

log = logging.getLogger(__name__)

CANCELLED = "cancelled: every viewer left"
REDIS_ERRORS = (redis.RedisError, OSError)
WORKERS_CHECK_EVERY_S = 5.0


class QueuedJobManager:
    """Enqueues jobs for the workers and relays their progress to this node's viewers."""

    def __init__(
        self,
        cache: ResultCache,
        redis_url: str,
        max_pending: int = 64,
        max_pending_per_client: int = 16,
        poll_s: float = 0.25,
    ):
        self.cache = cache
        self.max_pending = max_pending
        self.max_pending_per_client = max_pending_per_client
        self.poll_s = poll_s
        self.node = uuid.uuid4().hex
        self.queue = protocol.make_queue(redis_url)
        self._redis = aioredis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._enqueued: set[str] = set()  # ids this node has handed to the queue
        self._announced_done: set[str] = set()  # ids a worker said it finished
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.started = 0  # jobs this node submitted: shared requests count once
        self.workers = 0  # jobs the live workers can run at once (JobManager.workers: its threads)
        self._workers_checked = 0.0

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

    def get(self, vid: str) -> Job | None:
        return self._jobs.get(vid)

    def running_count(self) -> int:
        return sum(1 for job in self._jobs.values() if not job.finished)

    def submit(self, resolved: ResolvedRequest, keep: bool, client: str) -> Job:
        """The active job of this id, or a new one handed to the queue (where it may meet the
        same job from another node). Raises Busy past this node's limits."""
        job = self._jobs.get(resolved.id)
        if job is not None and job.active:
            job.keep = job.keep or keep
            return job
        admit(self._jobs.values(), client, self.max_pending, self.max_pending_per_client)
        job = Job(id=resolved.id, request=resolved.as_json(), client=client, keep=keep)
        self._jobs[resolved.id] = job
        self._enqueued.discard(job.id)
        self.started += 1
        forget_finished(self._jobs)
        self._wake.set()
        return job

    async def _relay_events(self) -> None:
        """Forward the workers' events to this node's jobs; resubscribe after a lost Redis."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(f"{protocol.EVENTS_PREFIX}*")
                async for message in pubsub.listen():
                    if message["type"] == "pmessage":
                        self._on_event(protocol.vid_of_channel(message["channel"].decode()), message["data"].decode())
            except REDIS_ERRORS as exc:
                log.warning("lost the workers' events (%s); resubscribing", exc)
                await asyncio.sleep(self.poll_s)
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()

    def _on_event(self, vid: str, message: str) -> None:
        job = self._jobs.get(vid)
        if job is None or job.finished:
            return
        kind, payload = protocol.parse_event(message)
        if kind == "progress":
            job.mark_running()
            job.publish(Event("progress", payload))
        elif kind == "running":
            job.mark_running()
        elif kind == "done":  # checked against the cache by the supervisor, woken now
            self._announced_done.add(vid)
            self._wake.set()

    def _finish(self, job: Job, status: Status, detail: str | None = None) -> None:
        job.status, job.detail = status, detail
        self._enqueued.discard(job.id)
        self._announced_done.discard(job.id)
        job.publish(Event(job.status))

    async def _supervise(self) -> None:
        """Every ``poll_s`` (or at once on a submit): enqueue, renew watches, cancel, reconcile."""
        while True:
            try:
                await self._tick()
            except REDIS_ERRORS as exc:
                log.warning("redis is unusable (%s); the queued jobs wait for it", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()

    async def _tick(self) -> None:
        if time.monotonic() - self._workers_checked > WORKERS_CHECK_EVERY_S:
            info = await self.queue.info()
            reports = info["workers"].values()
            self.workers = sum(int((w.get("metadata") or {}).get("concurrency", 1)) for w in reports)
            self._workers_checked = time.monotonic()
        unfinished = [job for job in self._jobs.values() if not job.finished]
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
                pipe.zadd(key, {self.node: expires}).expire(key, int(protocol.WATCH_TTL_S * 4))
                if job.keep:
                    pipe.set(protocol.keep_key(job.id), 1, ex=protocol.JOB_TIMEOUT_S)
            await pipe.execute()

    async def _enqueue(self, job: Job) -> None:
        await self.queue.enqueue(protocol.FUNCTION, **protocol.job_options(job.id, job.request))
        self._enqueued.add(job.id)  # enqueued now, or already in the queue from another node

    async def _cancel(self, job: Job) -> None:
        """This node's viewers all left: abort the job unless another node's viewers or a keeper want it."""
        if self._jobs.get(job.id) is not job:
            return
        del self._jobs[job.id]  # not a failure to remember: the next request starts afresh
        self._finish(job, "failed", CANCELLED)
        watchers = protocol.watchers_key(job.id)
        await self._redis.zrem(watchers, self.node)
        if await self._redis.exists(protocol.keep_key(job.id)):
            return
        if await self._redis.zcount(watchers, time.time(), "+inf"):
            return
        queued = await self.queue.job(job.id)
        if queued is not None and queued.status in (QueueStatus.QUEUED, QueueStatus.ACTIVE):
            await self.queue.abort(queued, CANCELLED)
