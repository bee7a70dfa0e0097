"""Visualisation jobs: one per content id, optimised off the event loop, progress fanned out.

A job runs :func:`stlens.engine.visualize` in a worker thread. Identical requests share one job
(the content id), a second viewer joins a running one, and every viewer holds a
:class:`Subscription` that keeps only the newest progress message: a slow client skips
previews instead of stalling the optimiser or piling up memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from .cache import ResultCache
from .engine import Cancelled, Progress, visualize
from .engine.settings import VisualizationSettings
from .media.render import inputs_npz, media_names, preview_strips, render_media
from .models.registry import LoadedModel, ModelRegistry
from .models.spec import LayerInfo

log = logging.getLogger(__name__)

Status = Literal["queued", "running", "done", "failed"]
ID_LENGTH = 20
FINISHED_JOBS_KEPT = 256


class InvalidRequest(ValueError):
    """A request that names no known model, layer or unit; ``status`` is the HTTP code to answer."""

    def __init__(self, detail: str, status: int = 422):
        super().__init__(detail)
        self.detail = detail
        self.status = status


def content_id(model_id: str, weights_hash: str, layer: str, unit: int, settings: VisualizationSettings) -> str:
    """The id of a visualisation: a hash of everything that determines its result."""
    payload = {
        "model": model_id,
        "weights": weights_hash,
        "layer": layer,
        "unit": unit,
        "settings": settings.model_dump(mode="json"),
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:ID_LENGTH]


@dataclass(frozen=True)
class ResolvedRequest:
    """A checked request: the loaded model, the layer, the unit and the filled-in settings."""

    id: str
    model: LoadedModel
    layer: LayerInfo
    unit: int
    settings: VisualizationSettings

    def as_json(self) -> dict[str, Any]:
        """The request as stored and shown: every default filled in."""
        return {
            "model": self.model.spec.id,
            "layer": self.layer.id,
            "unit": self.unit,
            "settings": self.settings.model_dump(mode="json"),
        }


def load_model(registry: ModelRegistry, model: str) -> LoadedModel:
    """The loaded model (blocking: call from a thread), or InvalidRequest: 404 unknown, 503 unloadable."""
    if model not in registry:
        raise InvalidRequest(f"unknown model {model!r}; GET /api/models lists the models", 404)
    try:
        return registry.get(model)
    except Exception as exc:  # a broken checkpoint or factory is the server's problem, reported clearly
        log.exception("model %s could not be loaded", model)
        raise InvalidRequest(f"model {model!r} could not be loaded: {type(exc).__name__}: {exc}", 503) from exc


def resolve(
    registry: ModelRegistry, model: str, layer: str, unit: int, settings: VisualizationSettings
) -> ResolvedRequest:
    """Check a request against the model (loading it: call from a thread) or raise InvalidRequest."""
    loaded = load_model(registry, model)
    try:
        info = loaded.layer(layer)
    except KeyError:
        raise InvalidRequest(
            f"model {model!r} has no layer {layer!r}; GET /api/models/{model} lists them", 404
        ) from None
    if not 0 <= unit < info.units:
        raise InvalidRequest(f"unit {unit} is out of range: layer {layer!r} has units 0..{info.units - 1}")
    vid = content_id(model, loaded.weights_hash, layer, unit, settings)
    return ResolvedRequest(id=vid, model=loaded, layer=info, unit=unit, settings=settings)


class Busy(RuntimeError):
    """Too many jobs queued or running: a new one is refused until some finish."""


class Subscription:
    """One viewer's mailbox: holds the newest undelivered message only."""

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        self._ready = asyncio.Event()

    def offer(self, message: dict[str, Any]) -> None:
        self._message = message
        self._ready.set()

    async def next(self) -> dict[str, Any]:
        await self._ready.wait()
        self._ready.clear()
        message, self._message = self._message, None
        assert message is not None
        return message


@dataclass
class Job:
    """One optimisation and its viewers. A job nobody asked to keep (only live viewers want it)
    is cancelled when its last viewer leaves."""

    id: str
    request: dict[str, Any]
    keep: bool = False
    status: Status = "queued"
    detail: str | None = None
    latest: dict[str, Any] | None = None
    subscribers: set[Subscription] = field(default_factory=set)
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None  # held so the event loop does not drop it

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def active(self) -> bool:
        """Queued or running, and not being cancelled: a new viewer may join it."""
        return not self.finished and not self.cancel.is_set()

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        if self.latest is not None:
            subscription.offer(self.latest)
        self.subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscribers.discard(subscription)
        if not self.subscribers and not self.keep and not self.finished:
            self.cancel.set()  # the optimiser stops before its next step

    def mark_running(self) -> None:
        if self.status == "queued":
            self.status = "running"

    def publish(self, message: dict[str, Any]) -> None:
        """Called on the event loop: remember the message and hand it to every viewer."""
        self.latest = message
        for subscription in self.subscribers:
            subscription.offer(message)


def result_record(objective: float, steps: int, streams: list[str]) -> dict[str, Any]:
    """What is kept of a finished run besides its arrays: the objective and the media names."""
    return {
        "objective": objective,
        "steps": steps,
        "streams": streams,
        "media": media_names(streams),
    }


class JobManager:
    """Runs jobs on a thread pool; ``submit`` returns the running job of an id if there is one."""

    def __init__(
        self,
        cache: ResultCache,
        workers: int = 1,
        torch_threads: int = 0,
        preview_interval_s: float = 0.25,
        max_pending: int = 64,
    ):
        self.cache = cache
        self.max_pending = max_pending
        self.preview_interval_s = preview_interval_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stlens-job")
        threads = torch_threads or max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)  # process-wide: the cores are shared out between the workers
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self.started = 0  # jobs started since the app started: shared requests count once

    def get(self, vid: str) -> Job | None:
        return self._jobs.get(vid)

    def running_count(self) -> int:
        return sum(1 for job in self._jobs.values() if not job.finished)

    def submit(self, resolved: ResolvedRequest, keep: bool) -> Job:
        """The active job of this id, or a new one; ``keep``: run it to the end even without viewers."""
        job = self._jobs.get(resolved.id)
        if job is not None and job.active:
            job.keep = job.keep or keep
            return job
        if self.running_count() >= self.max_pending:
            raise Busy(f"{self.max_pending} visualisations are queued or running; try again when they finish")
        job = Job(id=resolved.id, request=resolved.as_json(), keep=keep)
        self._jobs[resolved.id] = job
        self.started += 1
        self._forget_old()
        job.task = asyncio.get_running_loop().create_task(self._drive(job, resolved))
        return job

    def _forget_old(self) -> None:
        finished = [vid for vid, job in self._jobs.items() if job.finished]
        for vid in finished[: max(0, len(finished) - FINISHED_JOBS_KEPT)]:
            del self._jobs[vid]

    async def _drive(self, job: Job, resolved: ResolvedRequest) -> None:
        loop = asyncio.get_running_loop()
        try:
            record, npz, media = await loop.run_in_executor(self._executor, self._compute, job, resolved, loop)
        except Cancelled:
            job.status, job.detail = "failed", "cancelled: every viewer left"
            if self._jobs.get(job.id) is job:
                del self._jobs[job.id]  # not a failure to remember: the next request starts afresh
        except Exception as exc:  # a failed optimisation is reported to its viewers, never raised
            log.exception("job %s failed", job.id)
            job.status, job.detail = "failed", f"{type(exc).__name__}: {exc}"
        else:
            await self.cache.put_result(job.id, {"request": job.request, "result": record}, npz, media)
            job.status = "done"
        job.publish({"type": job.status})

    def _compute(
        self, job: Job, resolved: ResolvedRequest, loop: asyncio.AbstractEventLoop
    ) -> tuple[dict[str, Any], bytes, dict[str, bytes]]:
        """The worker-thread part: optimise, then encode the arrays and media."""
        loop.call_soon_threadsafe(job.mark_running)
        last_preview = 0.0

        def on_progress(progress: Progress) -> None:
            nonlocal last_preview
            now = time.monotonic()
            if progress.step < progress.steps and now - last_preview < self.preview_interval_s:
                return
            last_preview = now
            loop.call_soon_threadsafe(job.publish, progress_message(progress))

        vis = visualize(
            resolved.model,
            resolved.layer.id,
            [resolved.unit],
            resolved.settings,
            progress=on_progress,
            progress_every=1,
            cancel=job.cancel,
        )
        inputs = {stream: np.asarray(x[0], dtype=np.float32) for stream, x in vis.inputs.items()}
        record = result_record(vis.objective[0], vis.steps, list(inputs))
        return record, inputs_npz(inputs), render_media(inputs)

    def shutdown(self) -> None:
        for job in self._jobs.values():
            job.cancel.set()
        self._executor.shutdown(wait=True, cancel_futures=True)


def progress_message(progress: Progress) -> dict[str, Any]:
    """The WebSocket ``progress`` message: previews are strips of the T frames."""
    inputs = {stream: np.asarray(x) for stream, x in progress.inputs.items()}
    frames, height, width = next(iter(inputs.values())).shape[:3]
    return {
        "type": "progress",
        "step": progress.step,
        "steps": progress.steps,
        "objective": progress.objective,
        "previews": preview_strips(inputs),
        "frames": frames,
        "height": height,
        "width": width,
    }
