"""``stlens worker``: take visualisations from the Redis queues, run them, stream their progress.

A worker keeps its models resident (one registry for its life) and takes jobs from both queues
(``protocol``): up to ``--concurrency`` interactive ones and ``--max-background`` background ones
at once, all run by one stepper (``stlens.jobs.stepper``: a step at a time, a layer's jobs batched,
interactive ones first). It writes each finished result into the shared cache and publishes
progress on the job's channel, where whichever API node holds the viewers' sockets picks it up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import socket
from concurrent.futures import Future
from typing import Any

import redis
import redis.asyncio as aioredis
import torch
from saq import Worker
from saq.job import Job as SaqJob

from ..cache import ResultCache
from ..cli import add_model_arguments, start_up
from ..config import ServerSettings
from ..engine.eigenclips import warm_in_background
from ..jobs.scheduling import PRIORITIES, Capacity, Priority
from ..jobs.stepper import Run, Stepper
from ..models.catalogue import open_registry
from ..models.registry import prepare
from ..record import ResultRecord
from ..request import ResolvedRequest, VisualizationRequest, resolve
from ..run import RunOutput, queued_message
from ..step_cost import REFERENCE_MODEL, StepCostEstimator
from ..visualizations import uploaded_start
from . import protocol


class WorkerContext:
    """What a worker keeps between jobs: its settings, models, cache, Redis connection and stepper."""

    def __init__(self, settings: ServerSettings, redis_url: str, capacity: Capacity | None = None):
        self.settings = settings
        self.registry = open_registry(settings)
        self.cache = ResultCache(redis_url, recent=1, retry_s=settings.cache_retry_s)
        self.redis = aioredis.from_url(redis_url)
        self.capacity = capacity or settings.capacity()
        self.stepper = Stepper(self.capacity, settings.preview_interval_s)
        reference = self.registry.entry(REFERENCE_MODEL)
        self.step_costs = StepCostEstimator(lambda device: prepare(reference, device))  # this worker's device
        self.warming: Future[None] | None = None

    async def seconds_per_step(self, resolved: ResolvedRequest, asked: float) -> float:
        """A step of the request's layer here: as the API node priced it, or (where it could not:
        a layer never run, on a device it does not know) estimated on this worker's own device."""
        if asked > 0:
            return asked
        paces = await self.cache.get_pace(resolved.request.model)
        cost = await asyncio.to_thread(self.step_costs.seconds_per_step, resolved.model, resolved.layer.id, paces)
        return cost.seconds

    async def publish(self, job_id: str, kind: protocol.EventType, payload: str = "") -> None:
        """Tell the API nodes about a job (its channel: whichever node holds its viewers listens)."""
        await self.redis.publish(protocol.events_channel(job_id), protocol.event_message(kind, payload))

    async def close(self) -> None:
        await asyncio.to_thread(self.stepper.close)
        await self.cache.close()
        await self.redis.aclose()


class PublishingSink:
    """A queued job's run, as the stepper tells it: events on the job's channel, the end in ``outcome``."""

    def __init__(self, worker: WorkerContext, job_id: str, loop: asyncio.AbstractEventLoop):
        self.worker, self.job_id, self.loop = worker, job_id, loop
        self.outcome: asyncio.Future[RunOutput] = loop.create_future()

    def _publish(self, kind: protocol.EventType, payload: str = "") -> None:  # a lost event is harmless
        asyncio.run_coroutine_threadsafe(self.worker.publish(self.job_id, kind, payload), self.loop)

    def queued(self, position: int, eta_s: float, reason: str | None = None) -> None:
        self._publish("queued", queued_message(position, eta_s, reason))

    def started(self) -> None:
        self._publish("running")

    def progress(self, message: str) -> None:
        self._publish("progress", message)

    def finished(self, output: RunOutput) -> None:
        self.loop.call_soon_threadsafe(self._settle, output, None)

    def failed(self, error: Exception) -> None:
        self.loop.call_soon_threadsafe(self._settle, None, error)

    def _settle(self, output: RunOutput | None, error: Exception | None) -> None:
        if self.outcome.done():  # cancelled meanwhile
            return
        if error is not None:
            self.outcome.set_exception(error)
        else:
            self.outcome.set_result(output)  # type: ignore[arg-type]  # one of the two is set


async def _heartbeat(job: SaqJob, worker: WorkerContext, held: list[Run]) -> None:
    """Touch the job from the moment it is taken (a job that stops being touched is on a dead worker;
    checking the request and pricing it may take seconds on a cold worker), and step a background
    job as interactive once an API node says someone waits for it (``held``: its run, once submitted)."""
    while True:
        await asyncio.sleep(protocol.HEARTBEAT_EVERY_S)
        with contextlib.suppress(redis.RedisError, OSError):  # Redis may be restarting: beat again later
            await job.update()
            for run in held:
                if run.priority == "background" and await worker.redis.exists(protocol.promoted_key(job.key)):
                    worker.stepper.promote(run)


async def run_queued_job(
    ctx: dict[str, Any], *, request: dict[str, Any], client: str = "", seconds_per_step: float = 0.0
) -> dict[str, Any]:
    """The saq job function: one visualisation, the job touched all the while (``_heartbeat``)."""
    worker: WorkerContext = ctx["stlens"]
    job: SaqJob = ctx["job"]
    held: list[Run] = []
    beat = asyncio.create_task(_heartbeat(job, worker, held))
    try:
        return await _run_job(worker, job, request, client, seconds_per_step, held)
    finally:
        beat.cancel()


async def _run_job(
    worker: WorkerContext, job: SaqJob, request: dict[str, Any], client: str, seconds_per_step: float, held: list[Run]
) -> dict[str, Any]:
    """Check the request again here, hand it to the stepper, store the result, announce it."""
    job_id = job.key
    asked = VisualizationRequest.model_validate(request)  # as an API node queued it (protocol.job_options)
    resolved = await asyncio.to_thread(resolve, worker.registry, asked, await uploaded_start(worker.cache, asked))
    if resolved.id != job_id:  # another server version or other weights: never store under a wrong id
        raise ValueError(f"this worker computes id {resolved.id} for job {job_id}; are its models the API's?")
    if (stored := await worker.cache.get_record(job_id)) is not None:  # a rerun of a job that did finish
        await worker.publish(job_id, "done")
        return {"objective": stored.result.objective}
    await worker.redis.incr(protocol.RUNS_KEY)
    sink = PublishingSink(worker, job_id, asyncio.get_running_loop())
    priority = protocol.priority_of_queue(job.queue.name if job.queue is not None else protocol.QUEUE_NAME)
    run = Run(resolved, client or job_id, priority, sink, await worker.seconds_per_step(resolved, seconds_per_step))
    worker.stepper.submit(run)
    held.append(run)
    try:
        output = await sink.outcome
    except asyncio.CancelledError:  # aborted (every viewer left) or the worker is stopping
        run.cancel.set()  # the stepper drops it before its next step
        worker.stepper.wake()
        raise
    record = ResultRecord(request=resolved.request, result=output.result)
    if not await worker.cache.put_result(job_id, record, output.npz, output.media):
        raise RuntimeError("the result could not be stored: redis is unreachable")  # run again, or re-enqueued
    await worker.publish(job_id, "done")
    return {"objective": output.result.objective}


def make_workers(settings: ServerSettings, redis_url: str, concurrency: int) -> list[Worker]:
    """One saq worker a queue, sharing one stepper: ``concurrency`` interactive jobs at once and the
    settings' ``max_background`` background ones."""
    capacity = dataclasses.replace(settings.capacity(), max_running=concurrency + settings.max_background)
    context = WorkerContext(settings, redis_url, capacity)
    closing: list[Worker] = []

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["stlens"] = context
        if context.warming is None:  # the default model's eigenclips, beside the first jobs (which wait for them)
            load = context.registry.get
            context.warming = warm_in_background(lambda: load(REFERENCE_MODEL))

    async def shutdown(ctx: dict[str, Any]) -> None:
        closing.append(ctx["worker"])
        if len(closing) == len(workers):  # the last of them to stop closes what they share
            await context.close()

    slots: dict[Priority, int] = {"interactive": concurrency, "background": settings.max_background}
    workers: list[Worker] = [
        Worker(
            protocol.make_queue(redis_url, priority),
            id=protocol.worker_id(socket.gethostname(), os.getpid()),  # which process holds a job
            # API nodes add these up: how many jobs (and background ones) can run at once
            metadata={"concurrency": concurrency, "background": settings.max_background} if priority == "interactive"
            else {"concurrency": 0},
            functions=[(protocol.FUNCTION, run_queued_job)],
            concurrency=slots[priority],
            startup=startup,
            shutdown=shutdown,
            timers={"sweep": protocol.SWEEP_EVERY_S, "abort": 0.5},  # type: ignore[arg-type]  # saq sleeps any float
            dequeue_timeout=1.0,
        )
        for priority in PRIORITIES
    ]
    return workers


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags ``stlens serve`` shares with the worker (each also ``STLENS_*`` in the environment);
    a Redis URL is required here: there is no embedded Redis to share."""
    parser.add_argument("--redis-url", help="the Redis the API nodes use (redis:// or unix://); or STLENS_REDIS_URL")
    parser.add_argument("--torch-threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--concurrency", type=int, default=32, choices=range(1, 1025), metavar="1..1024",
                        help="interactive jobs held at once, optimised a step at a time, those of one layer in "
                        "batches (default 32); background jobs get --max-background more")
    parser.add_argument("--max-batch", type=int, help="jobs of one layer optimised together (default 32; 1: none)")
    parser.add_argument("--max-background", type=int, help="background jobs (atlas units) held at once (default 4)")
    add_model_arguments(parser, "the API nodes' model file: workers need the same")


def run_worker(args: argparse.Namespace) -> int:
    def make(settings: ServerSettings) -> tuple[ServerSettings, list[Worker]]:
        if settings.redis_url is None:
            raise ValueError("a Redis URL is required: --redis-url or STLENS_REDIS_URL")
        return settings, make_workers(settings, settings.redis_url, args.concurrency)

    started = start_up(args, "worker", make)
    if started is None:
        return 2
    settings, workers = started
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)

    async def work() -> None:
        await asyncio.gather(*(worker.start() for worker in workers))

    asyncio.run(work())
    return 0
