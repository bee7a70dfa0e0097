"""Looking into the queue from a test: which worker holds a job, its status, the run counter."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis
from saq.job import Status
from stlens.queue import protocol
from websockets.sync.client import connect


def wait_for_active_worker(redis_url: str, vid: str, timeout: float = 60.0) -> int:
    """The pid of the worker running job ``vid`` (workers are named host:pid)."""

    async def active_worker() -> str | None:
        queue = protocol.make_queue(redis_url)
        try:
            job = await queue.job(vid)
            return job.worker_id if job is not None and job.status == Status.ACTIVE else None
        finally:
            await queue.disconnect()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker_id = asyncio.run(active_worker())
        if worker_id is not None:
            return int(worker_id.rsplit(":", 1)[1])
        time.sleep(0.1)
    raise TimeoutError(f"no worker took job {vid} in {timeout} s")


def wait_for_queue_status(redis_url: str, vid: str, status: Status, timeout: float) -> bool:
    async def current() -> Status | None:
        queue = protocol.make_queue(redis_url)
        try:
            job = await queue.job(vid)
            return job.status if job is not None else None
        finally:
            await queue.disconnect()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(current()) == status:
            return True
        time.sleep(0.1)
    return False


def redis_count(redis_url: str, key: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        return int(client.get(key) or 0)


def live_messages(ws_url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message of one live request, accepted to done or error."""
    with connect(ws_url, open_timeout=60, close_timeout=5) as ws:
        ws.send(json.dumps(body))
        return [json.loads(raw) for raw in ws]
