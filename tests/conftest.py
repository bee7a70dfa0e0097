"""Shared fixtures: a real ``stlens`` server (uvicorn in a thread, embedded Redis) on loopback."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from stlens.api import create_app
from stlens.api.connections import uvicorn_config
from stlens.api.deps import Services
from stlens.config import ServerSettings

START_TIMEOUT_S = 60.0
# computed eigenclips (stlens.engine.eigenclips) are stored for this run's processes, workers included,
# not in the user's cache
if "STLENS_CACHE_DIR" not in os.environ:
    os.environ["STLENS_CACHE_DIR"] = tempfile.mkdtemp(prefix="stlens-test-cache-")
    atexit.register(shutil.rmtree, os.environ["STLENS_CACHE_DIR"], ignore_errors=True)


class LiveServer:
    """The real app served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.app = create_app(settings)
        self._server = uvicorn.Server(uvicorn_config(self.app, settings, log_level="warning"))
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/visualizations/live"

    @property
    def services(self) -> Services:
        return self.app.state.services

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Shut down as on Ctrl-C: the lifespan stops the jobs and the embedded Redis. Idempotent."""
        if self.http.is_closed:
            return
        self.http.close()
        self._server.should_exit = True
        self._thread.join(timeout=60)
        self._socket.close()

    def wait_done(self, vid: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll ``GET /api/visualizations/{vid}`` until it is done or failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.http.get(f"/api/visualizations/{vid}").json()
            if body["status"] in ("done", "failed"):
                return body
            time.sleep(0.05)
        raise TimeoutError(f"visualisation {vid} did not finish in {timeout} s")


def server_settings(data_dir: Path, **overrides: Any) -> ServerSettings:
    """Settings for tests: one torch thread, data in a temporary folder."""
    return ServerSettings(data_dir=data_dir, torch_threads=1, device="cpu", **overrides)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers on demand (e.g. two in turn on one data folder); all are stopped at the end.
    Without a ``data_dir`` each gets a folder of its own (a folder takes one server at a time)."""
    started: list[LiveServer] = []

    def make(data_dir: Path | None = None, **overrides: Any) -> LiveServer:
        data_dir = data_dir or tmp_path / ("var" if not started else f"var-{len(started)}")
        server = LiveServer(server_settings(data_dir, **overrides)).start()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server shared by a test module."""
    live = LiveServer(server_settings(tmp_path_factory.mktemp("var"))).start()
    yield live
    live.stop()
