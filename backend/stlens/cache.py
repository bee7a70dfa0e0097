"""The cache of visualisations: Redis (embedded or external), with a small in-memory fallback
and an on-disk spill for finished results that Redis could not take.

Redis holds, per content id, the request (so a share link can recompute it) and the finished
result (a hash: the JSON record, the inputs as ``.npz`` and every medium, evicted together).
Redis is a cache, not a dependency: when it is unreachable every call answers "not cached"
within milliseconds, the app keeps working, and the next call after ``retry_s`` tries again.
A result finished meanwhile is not lost: it goes to the spill (``spill.py``), is served from
there, and is written back to Redis once Redis answers (:meth:`ResultCache.write_back_forever`).
"""

from __future__ import annotations

import asyncio
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
from .spill import ResultSpill

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

    def __init__(self, url: str, recent: int = 32, retry_s: float = 1.0, spill: ResultSpill | None = None):
        self.url = url
        self.retry_s = retry_s
        self.spill = spill
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
        if raw:
            return json.loads(raw)
        spilled = await self._spilled(visualization_id, RECORD_FIELD)
        return json.loads(spilled)["request"] if spilled else None

    async def put_result(
        self, visualization_id: str, record: ResultRecord, npz: bytes, media: dict[str, bytes]
    ) -> bool:
        """Store a finished result; False if Redis did not take it (it is down), and the result is
        then in the spill (on disk, if there is one and it has room) and this process's memory.
        Its pace (seconds a step of that model's layer, where it ran) is kept too, so the page can
        say how long the next run of that layer will take."""
        entry = self._remember(visualization_id)
        entry.record, entry.npz, entry.media = record, npz, dict(media)
        fields = {RECORD_FIELD: record.model_dump_json().encode(), NPZ_FIELD: npz, **media}
        stored = await self._store(visualization_id, record, fields)
        if not stored and self.spill is not None:
            spill = self.spill
            if await asyncio.to_thread(spill.put, visualization_id, fields):
                log.info("redis is down: result %s kept in %s until it is back", visualization_id, spill.folder)
        return stored

    async def _store(self, visualization_id: str, record: ResultRecord, fields: dict[str, bytes]) -> bool:
        """The result's hash and the layer's pace into Redis; False if Redis did not take the result."""
        key = self._key("result", visualization_id)
        mapping: dict[FieldT, EncodableT] = dict(fields.items())
        stored = await self._call(lambda r: r.hset(key, mapping=mapping)) is not None
        if (pace := record.result.seconds_per_step) is not None:
            model, layer = record.request.model, record.request.layer
            self._pace.setdefault(model, {})[layer] = pace
            pace_key = self._key("pace", model)
            await self._call(lambda r: r.hset(pace_key, layer, repr(pace)))
        return stored

    async def write_back(self) -> int:
        """Move spilled results into Redis, oldest first, until done or Redis fails; how many moved.
        Each leaves the spill only once Redis has it, so a crash meanwhile loses nothing."""
        if self.spill is None:
            return 0
        moved = 0
        for visualization_id in self.spill.ids():
            fields = await asyncio.to_thread(self.spill.fields, visualization_id)
            if fields is None or RECORD_FIELD not in fields:
                continue
            try:
                record = ResultRecord.model_validate_json(fields[RECORD_FIELD])
            except ValidationError:
                log.warning("spilled result %s is unreadable here; left in %s", visualization_id, self.spill.folder)
                continue
            if not await self._store(visualization_id, record, fields):
                break
            await self.put_request(visualization_id, record.request)  # share links recompute from it
            self.spill.remove(visualization_id)
            moved += 1
        if moved:
            log.info("wrote %d kept results back to redis at %s", moved, self.url)
        return moved

    async def write_back_forever(self) -> None:
        """Every ``retry_s``, write spilled results back while there are any (the lifespan runs it)."""
        while True:
            await asyncio.sleep(self.retry_s)
            if self.spill is not None and len(self.spill):
                await self.write_back()

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
        if raw is None:
            return await self._spilled(visualization_id, name)
        return raw.encode() if isinstance(raw, str) else raw

    async def _spilled(self, visualization_id: str, name: str) -> bytes | None:
        """A field of a result kept in the spill (not yet written back), or None."""
        if self.spill is None or visualization_id not in self.spill:
            return None
        return await asyncio.to_thread(self.spill.get, visualization_id, name)


def _text(raw: bytes | str) -> str:
    """A Redis answer as text (the client answers bytes: it is made without ``decode_responses``)."""
    return raw.decode() if isinstance(raw, bytes) else raw
