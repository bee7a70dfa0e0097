"""An API node's job manager in external mode, without workers: what it does with the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import torch
from saq.job import Status
from stlens.cache import EmbeddedRedis, ResultCache
from stlens.engine.settings import VisualizationSettings
from stlens.jobs import resolve
from stlens.models.builtin import builtin_entries
from stlens.models.registry import ModelRegistry
from stlens.queue.manager import QueuedJobManager

WAIT_S = 10.0


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


def test_a_job_the_queue_lost_is_enqueued_again_and_a_viewerless_one_aborted(redis_server: EmbeddedRedis):
    registry = ModelRegistry(builtin_entries(), torch.device("cpu"))
    resolved = resolve(registry, "synth-conv-fusion", "fusion.conv", 3, VisualizationSettings(steps=4))

    async def scenario() -> None:
        cache = ResultCache(redis_server.url)
        manager = QueuedJobManager(cache, redis_server.url, poll_s=0.05)
        client = aioredis.from_url(redis_server.url)
        await manager.start()
        try:

            async def queued() -> bool:
                job = await manager.queue.job(resolved.id)
                return job is not None and job.status == Status.QUEUED

            job = manager.submit(resolved, keep=False, client="test")
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
