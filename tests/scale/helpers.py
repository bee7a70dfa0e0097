"""Looking into the queue from a test: which worker holds a job, its status, the run counter."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis
from saq.job import Job, Status
from stlens.queue import protocol
from websockets.sync.client import connect


def queued_job(redis_url: str, vid: str) -> Job | None:
    """The queue's record of job ``vid`` (status, attempts, worker), in whichever queue holds it."""

    async def fetch() -> Job | None:
        for priority in protocol.QUEUE_NAMES:
            queue = protocol.make_queue(redis_url, priority)
            try:
                if (job := await queue.job(vid)) is not None:
                    return job
            finally:
                await queue.disconnect()
        return None

    return asyncio.run(fetch())


def pid_of(job: Job) -> int:
    """The pid of the worker that holds or held ``job`` (workers are named host-pid)."""
    return int((job.worker_id or "").rsplit("-", 1)[1])


def wait_for_queue_status(redis_url: str, vid: str, status: Status, timeout: float = 60.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = queued_job(redis_url, vid)
        if job is not None and job.status == status:
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {vid} was not {status.value} within {timeout} s")


def redis_count(redis_url: str, key: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        return int(client.get(key) or 0)


def live_messages(ws_url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message of one live request, accepted to done or error."""
    with connect(ws_url, open_timeout=60, close_timeout=5) as ws:
        ws.send(json.dumps(body))
        return [json.loads(raw) for raw in ws]
