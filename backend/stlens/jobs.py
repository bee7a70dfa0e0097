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
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import numpy as np
import torch

from .cache import ResultCache
from .engine import Cancelled, Progress, visualize
from .engine.settings import VisualizationSettings
from .media.render import inputs_npz, media_names, preview_strips, render_media
from .models.registry import LoadedModel, ModelRegistry
from .models.spec import LayerInfo

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    """Too many jobs queued or running (``status`` 503), or too many of one client's (429)."""

    def __init__(self, detail: str, status: int):
        super().__init__(detail)
        self.status = status


class FairQueue(Generic[T]):
    """Items waiting for a worker, taken round-robin across clients, FIFO within one client:
    a client that queues many jobs delays each other client by at most one job a round."""

    def __init__(self) -> None:
        self._rotation: OrderedDict[str, deque[T]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(items) for items in self._rotation.values())

    def push(self, client: str, item: T) -> None:
        self._rotation.setdefault(client, deque()).append(item)

    def pop(self) -> T | None:
        if not self._rotation:
            return None
        client, items = next(iter(self._rotation.items()))
        item = items.popleft()
        del self._rotation[client]
        if items:
            self._rotation[client] = items  # back of the line
        return item


@dataclass(frozen=True)
class Event:
    """What a job tells its viewers: progress (its WebSocket message, JSON-encoded once for all
    viewers, in the worker thread), or that it is done or failed."""

    type: Literal["progress", "done", "failed"]
    message: str = ""


class Subscription:
    """One viewer's mailbox: holds the newest undelivered event only."""

    def __init__(self) -> None:
        self._event: Event | None = None
        self._ready = asyncio.Event()

    def offer(self, event: Event) -> None:
        self._event = event
        self._ready.set()

    async def next(self) -> Event:
        await self._ready.wait()
        self._ready.clear()
        event, self._event = self._event, None
        assert event is not None
        return event


@dataclass
class Job:
    """One optimisation and its viewers. A job nobody asked to keep (only live viewers want it)
    is cancelled when its last viewer leaves."""

    id: str
    request: dict[str, Any]
    client: str = ""  # who asked first: the per-client limit and the fair queue count the job against them
    keep: bool = False
    status: Status = "queued"
    detail: str | None = None
    latest: Event | None = None
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

    def publish(self, event: Event) -> None:
        """Called on the event loop: remember the event and hand it to every viewer."""
        self.latest = event
        for subscription in self.subscribers:
            subscription.offer(event)


def admit(jobs: Iterable[Job], client: str, max_pending: int, max_pending_per_client: int) -> None:
    """Raise Busy if one more job would pass the limits on jobs queued or running."""
    pending = [j for j in jobs if not j.finished]
    if len(pending) >= max_pending:
        raise Busy(f"{max_pending} visualisations are queued or running; try again when they finish", 503)
    if sum(j.client == client for j in pending) >= max_pending_per_client:
        raise Busy(f"you have {max_pending_per_client} visualisations queued or running; wait for them", 429)


def forget_finished(jobs: OrderedDict[str, Job]) -> None:
    """Keep only the newest FINISHED_JOBS_KEPT finished jobs (their status answers lookups)."""
    finished = [vid for vid, job in jobs.items() if job.finished]
    for vid in finished[: max(0, len(finished) - FINISHED_JOBS_KEPT)]:
        del jobs[vid]


def result_record(objective: float, steps: int, streams: list[str], seconds: float) -> dict[str, Any]:
    """What is kept of a finished run besides its arrays: the objective, the media names, and how
    long the optimisation took where it ran (the pace that later estimates are made from)."""
    return {
        "objective": objective,
        "steps": steps,
        "streams": streams,
        "media": media_names(streams),
        "seconds": round(seconds, 3),
    }


class JobManager:
    """Runs jobs on ``workers`` threads, taken fairly from the clients' queues; ``submit`` returns
    the running job of an id if there is one."""

    def __init__(
        self,
        cache: ResultCache,
        workers: int = 1,
        torch_threads: int = 0,
        preview_interval_s: float = 0.25,
        max_pending: int = 64,
        max_pending_per_client: int = 16,
    ):
        self.cache = cache
        self.max_pending = max_pending
        self.max_pending_per_client = max_pending_per_client
        self.preview_interval_s = preview_interval_s
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stlens-job")
        self._waiting: FairQueue[tuple[Job, ResolvedRequest]] = FairQueue()
        self._busy_workers = 0
        self._closing = False
        threads = torch_threads or max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)  # process-wide: the cores are shared out between the workers
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self.started = 0  # jobs started since the app started: shared requests count once

    def get(self, vid: str) -> Job | None:
        return self._jobs.get(vid)

    def running_count(self) -> int:
        return sum(1 for job in self._jobs.values() if not job.finished)

    def submit(self, resolved: ResolvedRequest, keep: bool, client: str) -> Job:
        """The active job of this id, or a new one queued for ``client``.

        ``keep``: run it to the end even without viewers. Raises Busy past the limits."""
        job = self._jobs.get(resolved.id)
        if job is not None and job.active:
            job.keep = job.keep or keep
            return job
        admit(self._jobs.values(), client, self.max_pending, self.max_pending_per_client)
        job = Job(id=resolved.id, request=resolved.as_json(), client=client, keep=keep)
        self._jobs[resolved.id] = job
        self.started += 1
        forget_finished(self._jobs)
        self._waiting.push(client, (job, resolved))
        self._dispatch()
        return job

    def _dispatch(self) -> None:
        """Start waiting jobs while workers are free (none once shutting down)."""
        while not self._closing and self._busy_workers < self.workers and (item := self._waiting.pop()) is not None:
            job, resolved = item
            self._busy_workers += 1
            job.task = asyncio.get_running_loop().create_task(self._drive(job, resolved))

    async def _drive(self, job: Job, resolved: ResolvedRequest) -> None:
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._executor, self._compute, job, resolved, loop)
        work.add_done_callback(self._worker_free)
        try:
            record, npz, media = await work
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
        job.publish(Event(job.status))

    def _worker_free(self, _work: asyncio.Future[Any]) -> None:
        self._busy_workers -= 1
        self._dispatch()

    def _compute(
        self, job: Job, resolved: ResolvedRequest, loop: asyncio.AbstractEventLoop
    ) -> tuple[dict[str, Any], bytes, dict[str, bytes]]:
        """The worker-thread part: progress goes to the job's viewers on the event loop."""
        loop.call_soon_threadsafe(job.mark_running)
        return compute(
            resolved,
            job.cancel,
            lambda message: loop.call_soon_threadsafe(job.publish, Event("progress", message)),
            self.preview_interval_s,
        )

    async def aclose(self) -> None:
        """Cancel the jobs and wait for the threads (the lifespan's end)."""
        await asyncio.to_thread(self.shutdown)

    def shutdown(self) -> None:
        self._closing = True
        for job in self._jobs.values():
            job.cancel.set()
        self._executor.shutdown(wait=True, cancel_futures=True)


def compute(
    resolved: ResolvedRequest,
    cancel: threading.Event,
    on_progress_message: Callable[[str], None],
    preview_interval_s: float,
) -> tuple[dict[str, Any], bytes, dict[str, bytes]]:
    """Optimise one request (blocking), then encode its arrays and media: the part that is the
    same in a server's thread and in a ``stlens worker`` process. Progress messages, JSON-encoded
    once, come at most every ``preview_interval_s`` (and at the last step); raises Cancelled."""
    last_preview = 0.0

    def on_progress(progress: Progress) -> None:
        nonlocal last_preview
        now = time.monotonic()
        if progress.step < progress.steps and now - last_preview < preview_interval_s:
            return
        last_preview = now
        on_progress_message(json.dumps(progress_message(progress)))

    started = time.perf_counter()
    vis = visualize(
        resolved.model,
        resolved.layer.id,
        [resolved.unit],
        resolved.settings,
        progress=on_progress,
        progress_every=1,
        cancel=cancel,
    )
    inputs = {stream: np.asarray(x[0], dtype=np.float32) for stream, x in vis.inputs.items()}
    record = result_record(vis.objective[0], vis.steps, list(inputs), time.perf_counter() - started)
    return record, inputs_npz(inputs), render_media(inputs)


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
