"""The queue's sweep, against a real Redis: it re-queues a dead worker's job, never a job another
worker has just taken (saq's sweep met such a job, still marked queued, and both workers ran it)."""

from __future__ import annotations

import asyncio

from saq.job import Status
from saq.utils import now

from stlens.queue import protocol
from stlens.redis_server import EmbeddedRedis


async def _taken_job(redis_url: str):  # the queue and the job a worker has just dequeued
    queue = protocol.make_queue(redis_url)
    await queue.connect()
    await queue.enqueue("visualize", key="clip", heartbeat=protocol.HEARTBEAT_S, retries=protocol.ATTEMPTS)
    taken = await queue.dequeue()  # in the active list, still "queued": as a worker between dequeue and start
    assert taken is not None and taken.status == Status.QUEUED
    return queue, taken


def test_a_job_taken_but_not_yet_marked_active_is_not_swept(redis_server: EmbeddedRedis):
    async def scenario() -> None:
        queue, taken = await _taken_job(redis_server.url)
        try:
            sweeping = asyncio.create_task(queue.sweep(lock=1, abort=0.2))
            await asyncio.sleep(0.3)  # a worker slowed by load marks it late
            taken.started, taken.attempts = now(), taken.attempts + 1  # as saq's worker does
            await taken.update(status=Status.ACTIVE)
            await sweeping
            stored = await queue.job("clip")
            assert stored is not None and stored.status == Status.ACTIVE
            assert await queue.count("queued") == 0 and await queue.count("active") == 1
        finally:
            await queue.disconnect()

    asyncio.run(scenario())


def test_a_job_left_unmarked_by_a_dead_worker_is_queued_again(redis_server: EmbeddedRedis):
    async def scenario() -> None:
        queue, _ = await _taken_job(redis_server.url)  # the worker died before it marked the job
        try:
            assert len(await queue.sweep(lock=1, abort=0.2)) == 1
            stored = await queue.job("clip")
            assert stored is not None and stored.status == Status.QUEUED
            assert await queue.count("queued") == 1 and await queue.count("active") == 0
        finally:
            await queue.disconnect()

    asyncio.run(scenario())
