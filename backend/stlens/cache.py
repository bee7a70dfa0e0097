"""The cache of visualisations: Redis (embedded or external), with a small in-memory fallback.

Redis holds, per content id, the request (so a share link can recompute it) and the finished
result (a hash: the JSON record, the inputs as ``.npz`` and every medium, evicted together).
Redis is a cache, not a dependency: when it is unreachable every call answers "not cached"
within milliseconds, the app keeps working, and the next call after ``retry_s`` tries again.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import EncodableT, FieldT

from .record import ResultRecord
from .request import VisualizationRequest

log = logging.getLogger(__name__)
T = TypeVar("T")

KEY_PREFIX = "stlens:v1"
CLIP_TTL_S = 24 * 3600  # an uploaded clip stays startable from for a day
CLIPS_REMEMBERED = 8
RECORD_FIELD = "record"
NPZ_FIELD = "inputs.npz"


@dataclass
class _Remembered:
    request: dict[str, Any] | None = None
    record: ResultRecord | None = None
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
        self._clips: OrderedDict[str, bytes] = OrderedDict()  # the newest uploaded clips, when Redis is down
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

    def _key(self, kind: str, visualization_id: str) -> str:
        return f"{KEY_PREFIX}:{kind}:{visualization_id}"

    async def _call(self, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        """``command`` on Redis, or ``None`` if Redis is unreachable (then skipped for ``retry_s``)."""
        if self._down_since is not None and time.monotonic() - self._down_since < self.retry_s:
            return None
        try:
            result = await command(self._redis)
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
        return bool(await self._call(lambda r: r.ping()))

    def _remember(self, visualization_id: str) -> _Remembered:
        entry = self._recent.get(visualization_id) or _Remembered()
        self._recent[visualization_id] = entry
        self._recent.move_to_end(visualization_id)
        while len(self._recent) > self._max_recent:
            self._recent.popitem(last=False)
        return entry

    def _recalled(self, visualization_id: str) -> _Remembered:
        """What this process remembers of the id (nothing, if it is not among the recent ones)."""
        return self._recent.get(visualization_id) or _Remembered()

    async def put_request(self, visualization_id: str, request: VisualizationRequest) -> None:
        stored = request.as_json()
        self._remember(visualization_id).request = stored
        key = self._key("request", visualization_id)
        await self._call(lambda r: r.set(key, json.dumps(stored, sort_keys=True)))

    async def get_request(self, visualization_id: str) -> dict[str, Any] | None:
        """The request as stored (JSON): it may come from another server version, and is checked
        by whoever uses it."""
        if (remembered := self._recalled(visualization_id).request) is not None:
            return remembered
        key = self._key("request", visualization_id)
        raw = await self._call(lambda r: r.get(key))
        return json.loads(raw) if raw else None

    async def put_result(
        self, visualization_id: str, record: ResultRecord, npz: bytes, media: dict[str, bytes]
    ) -> bool:
        """Store a finished result; False if only this process's memory has it (Redis is down).
        Its pace (seconds a step of that model's layer, where it ran) is kept too, so the page can
        say how long the next run of that layer will take."""
        entry = self._remember(visualization_id)
        entry.record, entry.npz, entry.media = record, npz, dict(media)
        fields: dict[FieldT, EncodableT] = {RECORD_FIELD: record.model_dump_json(), NPZ_FIELD: npz}
        fields.update(media.items())
        key = self._key("result", visualization_id)
        stored = await self._call(lambda r: r.hset(key, mapping=fields)) is not None
        if (pace := record.result.seconds_per_step) is not None:
            model, layer = record.request.model, record.request.layer
            self._pace.setdefault(model, {})[layer] = pace
            pace_key = self._key("pace", model)
            await self._call(lambda r: r.hset(pace_key, layer, repr(pace)))
        return stored

    async def get_pace(self, model: str) -> dict[str, float]:
        """Seconds a step of each layer of ``model`` that has run here (its newest run; all the
        servers and workers sharing this Redis)."""
        key = self._key("pace", model)
        raw = await self._call(lambda r: r.hgetall(key))
        if raw is None:  # Redis is down: what this process measured
            return dict(self._pace.get(model, {}))
        return {_text(layer): float(pace) for layer, pace in raw.items()}

    async def put_clip(self, clip_id: str, npz: bytes) -> None:
        """Keep an uploaded clip (``analysis.starts.clip_npz``) that visualisations may start from."""
        self._clips[clip_id] = npz
        self._clips.move_to_end(clip_id)
        while len(self._clips) > CLIPS_REMEMBERED:
            self._clips.popitem(last=False)
        key = self._key("clip", clip_id)
        await self._call(lambda r: r.set(key, npz, ex=CLIP_TTL_S))

    async def get_clip(self, clip_id: str) -> bytes | None:
        if (remembered := self._clips.get(clip_id)) is not None:
            return remembered
        key = self._key("clip", clip_id)
        raw = await self._call(lambda r: r.get(key))
        return raw.encode() if isinstance(raw, str) else raw

    async def get_record(self, visualization_id: str) -> ResultRecord | None:
        """The finished result's record; None if there is none, or none this version can read."""
        if (remembered := self._recalled(visualization_id).record) is not None:
            return remembered
        raw = await self._hget(visualization_id, RECORD_FIELD)
        if raw is None:
            return None
        try:
            return ResultRecord.model_validate_json(raw)
        except ValidationError as exc:
            log.warning("the stored record of %s is unreadable here (%s): not cached", visualization_id, exc)
            return None

    async def get_npz(self, visualization_id: str) -> bytes | None:
        if (remembered := self._recalled(visualization_id).npz) is not None:
            return remembered
        return await self._hget(visualization_id, NPZ_FIELD)

    async def get_media(self, visualization_id: str, name: str) -> bytes | None:
        if (remembered := self._recalled(visualization_id).media.get(name)) is not None:
            return remembered
        return await self._hget(visualization_id, name)

    async def _hget(self, visualization_id: str, name: str) -> bytes | None:
        key = self._key("result", visualization_id)
        raw = await self._call(lambda r: r.hget(key, name))
        return raw.encode() if isinstance(raw, str) else raw


def _text(raw: bytes | str) -> str:
    """A Redis answer as text (the client answers bytes: it is made without ``decode_responses``)."""
    return raw.decode() if isinstance(raw, bytes) else raw
