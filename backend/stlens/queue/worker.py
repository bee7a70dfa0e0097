"""``stlens worker``: take visualisations from the Redis queue, run them, stream their progress.

A worker keeps its models resident (one registry for its life), runs one job at a time by
default (one GPU), writes the finished result into the shared cache and publishes progress on
the job's channel, where whichever API node holds the viewers' sockets picks it up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import threading
from typing import Any

import redis
import redis.asyncio as aioredis
import torch
from saq import Worker
from saq.job import Job as SaqJob

from ..cache import ResultCache
from ..cli import add_model_arguments, start_up
from ..config import ServerSettings
from ..models.catalogue import open_registry
from ..record import ResultRecord
from ..request import VisualizationRequest, resolve
from ..run import run_visualization
from ..visualizations import uploaded_start
from . import protocol


class WorkerContext:
    """What a worker keeps between jobs: its settings, models, cache and Redis connection."""

    def __init__(self, settings: ServerSettings, redis_url: str):
        self.settings = settings
        self.registry = open_registry(settings)
        self.cache = ResultCache(redis_url, recent=1, retry_s=settings.cache_retry_s)
        self.redis = aioredis.from_url(redis_url)

    async def publish(self, job_id: str, kind: protocol.EventType, payload: str = "") -> None:
        """Tell the API nodes about a job (its channel: whichever node holds its viewers listens)."""
        await self.redis.publish(protocol.events_channel(job_id), protocol.event_message(kind, payload))

    async def close(self) -> None:
        await self.cache.close()
        await self.redis.aclose()


async def _heartbeat(job: SaqJob) -> None:
    """Touch the job while it runs: a job that stops being touched is on a dead worker."""
    while True:
        await asyncio.sleep(protocol.HEARTBEAT_EVERY_S)
        with contextlib.suppress(redis.RedisError, OSError):  # Redis may be restarting: beat again later
            await job.update()


async def run_queued_job(ctx: dict[str, Any], *, request: dict[str, Any]) -> dict[str, Any]:
    """The saq job function: check the request again here, optimise, store the result, announce it."""
    worker: WorkerContext = ctx["stlens"]
    job: SaqJob = ctx["job"]
    job_id = job.key
    asked = VisualizationRequest.model_validate(request)  # as an API node queued it (protocol.job_options)
    resolved = await asyncio.to_thread(resolve, worker.registry, asked, await uploaded_start(worker.cache, asked))
    if resolved.id != job_id:  # another server version or other weights: never store under a wrong id
        raise ValueError(f"this worker computes id {resolved.id} for job {job_id}; are its models the API's?")
    if (stored := await worker.cache.get_record(job_id)) is not None:  # a rerun of a job that did finish
        await worker.publish(job_id, "done")
        return {"objective": stored.result.objective}
    loop = asyncio.get_running_loop()

    def publish_progress(message: str) -> None:  # from the run's thread; a lost preview is harmless
        asyncio.run_coroutine_threadsafe(worker.publish(job_id, "progress", message), loop)

    await worker.redis.incr(protocol.RUNS_KEY)
    await worker.publish(job_id, "running")
    cancel = threading.Event()
    beat = asyncio.create_task(_heartbeat(job))
    try:
        output = await asyncio.to_thread(
            run_visualization,
            resolved,
            cancel,
            publish_progress,
            worker.settings.preview_interval_s,
        )
    except asyncio.CancelledError:  # aborted (every viewer left) or the worker is stopping
        cancel.set()  # the optimiser stops before its next step
        raise
    finally:
        beat.cancel()
    record = ResultRecord(request=resolved.request, result=output.result)
    if not await worker.cache.put_result(job_id, record, output.npz, output.media):
        raise RuntimeError("the result could not be stored: redis is unreachable")  # run again, or re-enqueued
    await worker.publish(job_id, "done")
    return {"objective": output.result.objective}


def make_worker(settings: ServerSettings, redis_url: str, concurrency: int) -> Worker:
    context = WorkerContext(settings, redis_url)

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["stlens"] = context

    async def shutdown(ctx: dict[str, Any]) -> None:
        await context.close()

    return Worker(
        protocol.make_queue(redis_url),
        id=protocol.worker_id(socket.gethostname(), os.getpid()),  # which process holds a job
        metadata={"concurrency": concurrency},  # API nodes add these up: how many jobs can run at once
        functions=[(protocol.FUNCTION, run_queued_job)],
        concurrency=concurrency,
        startup=startup,
        shutdown=shutdown,
        timers={"sweep": protocol.SWEEP_EVERY_S, "abort": 0.5},  # type: ignore[arg-type]  # saq sleeps any float
        dequeue_timeout=1.0,
    )


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags ``stlens serve`` shares with the worker (each also ``STLENS_*`` in the environment);
    a Redis URL is required here: there is no embedded Redis to share."""
    parser.add_argument("--redis-url", help="the Redis the API nodes use (redis:// or unix://); or STLENS_REDIS_URL")
    parser.add_argument("--torch-threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--concurrency", type=int, default=1, choices=range(1, 17), metavar="1..16",
                        help="jobs run at once (default 1: one GPU, one job)")
    add_model_arguments(parser, "the API nodes' model file: workers need the same")


def run_worker(args: argparse.Namespace) -> int:
    def make(settings: ServerSettings) -> tuple[ServerSettings, Worker]:
        if settings.redis_url is None:
            raise ValueError("a Redis URL is required: --redis-url or STLENS_REDIS_URL")
        return settings, make_worker(settings, settings.redis_url, args.concurrency)

    started = start_up(args, "worker", make)
    if started is None:
        return 2
    settings, worker = started
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    asyncio.run(worker.start())
    return 0
