"""Fixtures for the multi-process mode: a Redis of the test's own, ``stlens worker`` processes,
and API servers started with ``--workers external`` (all on loopback or unix sockets)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from stlens.redis_server import EmbeddedRedis
from stlens.queue import protocol

WORKER_START_TIMEOUT_S = 90.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server the test may kill and restart; the API nodes and workers share it."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    server.close()


def wait_until_registered(redis_url: str, process: subprocess.Popen[bytes]) -> None:
    """Wait for the worker's first report in Redis (it is then past loading torch and saq)."""
    key = protocol.worker_info_key(protocol.worker_id(socket.gethostname(), process.pid))
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    with redis.Redis.from_url(redis_url) as client:
        while not client.exists(key):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stlens worker {process.pid} did not start")
            time.sleep(0.1)


@pytest.fixture
def spawn_worker(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start ``stlens worker`` processes (one torch thread each) and wait until they take jobs;
    all are stopped at the end."""
    workers: list[subprocess.Popen[bytes]] = []

    def spawn() -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"worker-{len(workers)}.log", "wb")  # noqa: SIM115 - the process owns it
        command = [sys.executable, "-m", "stlens.cli", "worker", "--redis-url", redis_server.url]
        command += ["--device", "cpu", "--torch-threads", "1", "--log-level", "info"]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        workers.append(process)
        wait_until_registered(redis_server.url, process)
        return process

    yield spawn
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in workers:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
