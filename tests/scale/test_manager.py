"""An API node's job manager in external mode, without workers: what it does with the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import torch
from saq.job import Status
from stlens.cache import ResultCache
from stlens.clients import Client
from stlens.engine.settings import VisualizationSettings
from stlens.jobs.core import Limits
from stlens.models.builtin import builtin_entries
from stlens.models.registry import ModelRegistry
from stlens.queue.manager import QueuedJobs
from stlens.redis_server import EmbeddedRedis
from stlens.request import VisualizationRequest, resolve

WAIT_S = 10.0


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


def test_a_job_the_queue_lost_is_enqueued_again_and_a_viewerless_one_aborted(redis_server: EmbeddedRedis):
    registry = ModelRegistry(builtin_entries(), torch.device("cpu"))
    asked = VisualizationRequest(model="synth-conv-fusion", layer="fusion.conv", unit=3, settings=VisualizationSettings(steps=4))
    resolved = resolve(registry, asked)

    async def scenario() -> None:
        cache = ResultCache(redis_server.url)
        manager = QueuedJobs(cache, redis_server.url, Limits(pending=64, per_client=16), poll_s=0.05)
        client = aioredis.from_url(redis_server.url)
        await manager.start()
        try:

            async def queued() -> bool:
                job = await manager.queue.job(resolved.id)
                return job is not None and job.status == Status.QUEUED

            job = manager.submit(resolved, keep=False, client=Client("test"))
            viewer = job.subscribe()
            await until(queued)
            await client.flushall()  # Redis restarted empty: the queue forgot the job
            await until(queued)  # the node that still has a viewer puts it back
            job.unsubscribe(viewer)  # its only viewer leaves

            async def aborted() -> bool:
                stored = await manager.queue.job(resolved.id)
                return stored is not None and stored.status == Status.ABORTED

            await until(aborted)
            assert job.status == "failed" and manager.get(resolved.id) is None
        finally:
            await manager.aclose()
            await client.aclose()
            await cache.close()

    asyncio.run(scenario())
