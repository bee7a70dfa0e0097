"""Processes for the fault tests: ``stlens serve`` and the redis-servers beside it, found by psutil,
killed with SIGKILL, and waited for with bounded loops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

WAIT_S = 60.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_S, every: float = 0.1) -> Any:
    """``condition()``'s first truthy value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def redis_servers_on(data_dir: Path) -> list[psutil.Process]:
    """Every live redis-server working in a folder inside ``data_dir`` (redis-server changes into its
    data folder and rewrites its command line, so its working folder is what tells)."""
    folder = data_dir.resolve()
    found = []
    for process in psutil.process_iter(["name", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE or "redis-server" not in (process.info["name"] or ""):
                continue
            if Path(process.cwd()).is_relative_to(folder):
                found.append(process)
        except psutil.Error:
            continue
    return found


def redis_config_of(process: psutil.Process, *names: str) -> dict[str, str]:
    """``CONFIG GET`` of a running redis-server, through the unix socket it listens on."""
    (path,) = {c.laddr for c in process.net_connections(kind="unix") if c.laddr and c.status == psutil.CONN_NONE}
    with redis.Redis(unix_socket_path=path, socket_timeout=5, decode_responses=True) as client:
        config: dict[str, str] = {}
        for name in names:
            config.update(client.config_get(name))
        return config


def redis_child(server: subprocess.Popen[bytes]) -> psutil.Process:
    """The one redis-server that ``server`` (a ``stlens serve`` process) runs."""

    def child() -> psutil.Process | None:
        children = [p for p in psutil.Process(server.pid).children(recursive=True) if "redis-server" in p.name()]
        return children[0] if len(children) == 1 else None

    return wait_for(child, "the server's redis-server")


def sigkill(process: subprocess.Popen[bytes] | psutil.Process) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=WAIT_S)


def run_serve(data_dir: Path, *args: str, timeout: float = 120.0, **env: str) -> subprocess.CompletedProcess[str]:
    """``stlens serve`` run to its end (for the starts that must fail)."""
    command = [sys.executable, "-m", "stlens.cli", "serve", "--port", "0", "--data-dir", str(data_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env})


def health(base_url: str) -> dict[str, Any] | None:
    try:
        return httpx.get(f"{base_url}/api/health", timeout=5).json()
    except (httpx.TransportError, ValueError):
        return None
