"""A real ``stlens serve`` process, as a user starts it, for the tests of the CLI and the page."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServeProcess:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def stlens_serve(data_dir: Path, *args: str, **env: str) -> Iterator[ServeProcess]:
    """Run ``stlens serve`` on a free loopback port with its data (and log) in ``data_dir``, wait until
    ``/api/health`` answers 200, and stop it with SIGINT (as Ctrl-C) at the end."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir / "server.log"
    command = [sys.executable, "-m", "stlens.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--log-level", "warning", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        served = ServeProcess(f"http://127.0.0.1:{port}", process, log_path)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"stlens serve exited with {process.returncode}: {log_path.read_text()}")
                try:
                    if httpx.get(f"{served.base_url}/api/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"stlens serve did not answer /api/health within {START_TIMEOUT_S} s")
                time.sleep(0.2)
            yield served
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
