"""The FastAPI app: ``create_app(settings)``; its lifespan starts Redis, the models and the jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..analysis.unit_examples import ExampleIndex
from ..atlas import AtlasManager
from ..budget import Budget, CostGuard
from ..cache import ResultCache
from ..config import ServerSettings
from ..datafolder import DataFolder
from ..engine.eigenclips import warm_in_background
from ..estimates import Estimates
from ..jobs.core import Jobs, Limits
from ..jobs.in_process import InProcessJobs
from ..models.catalogue import open_registry
from ..models.registry import ModelRegistry, prepare
from ..queue.manager import QueuedJobs
from ..redis_server import EmbeddedRedis
from ..spill import ResultSpill
from ..step_cost import REFERENCE_MODEL, StepCostEstimator
from ..visualizations import Visualizations
from .deps import Services
from .errors import add_error_handlers
from .routes import atlas, explain, health, insights, models, pages, visualizations
from .security import WebSecurity, host_policy
from .sessions import SessionCookie
from .strict_json import StrictJSONBodies

log = logging.getLogger(__name__)


class BodySizeLimit:
    """Answers 413 to an HTTP request body larger than ``limit`` bytes, declared or streamed
    (chunked); ``larger`` gives some paths (uploads) their own limit."""

    def __init__(self, app: ASGIApp, limit: int, larger: dict[str, int] | None = None):
        self.app = app
        self.limit = limit
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.limit)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._reject(send, limit)
            return
        received = 0
        too_large = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                too_large = True
                raise _TooLarge
            return message

        async def send_unless_too_large(message: Message) -> None:
            # whoever read the body may have turned _TooLarge into an answer of its own (FastAPI: 400)
            nonlocal answered
            if too_large:
                if not answered:
                    answered = True
                    await self._reject(send, limit)
                return
            answered = message["type"] == "http.response.start" or answered
            await send(message)

        try:
            await self.app(scope, limited_receive, send_unless_too_large)
        except _TooLarge:
            if not answered:
                await self._reject(send, limit)

    async def _reject(self, send: Send, limit: int) -> None:
        body = b'{"detail":"request body too large (at most %d bytes)"}' % limit
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServerSettings = app.state.settings
    registry: ModelRegistry = app.state.registry
    folder: DataFolder = app.state.data_folder
    folder.acquire()  # one server a data folder (stlens serve has taken it already, to exit 2 if not)
    embedded = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(folder.path / "redis", settings.redis_maxmemory)
        try:
            await asyncio.to_thread(embedded.start)
        except BaseException:
            folder.release()
            raise
        url = embedded.url
    spill = ResultSpill(folder.path / "spill", max_bytes=settings.spill_max_bytes)
    cache = ResultCache(url, recent=settings.recent_results, retry_s=settings.cache_retry_s, spill=spill)
    if not await cache.ping():
        log.warning("redis at %s is not reachable; starting without the cache", url)
    writing_back = asyncio.create_task(cache.write_back_forever())
    limits = Limits(
        pending=settings.max_pending_jobs,
        per_client=settings.max_pending_per_client,
        per_address=settings.max_pending_per_address,
        seconds_per_client=settings.max_client_seconds,
    )
    jobs: Jobs
    if settings.workers == "external":
        queued = QueuedJobs(cache, url, limits)
        await queued.start()
        jobs = queued
    else:
        jobs = InProcessJobs(
            cache,
            limits,
            capacity=settings.capacity(),
            torch_threads=settings.torch_threads,
            preview_interval_s=settings.preview_interval_s,
        )
    reference = registry.entry(REFERENCE_MODEL)
    costs = CostGuard(
        StepCostEstimator(lambda device: prepare(reference, device)),
        cache,
        Budget(settings.max_request_seconds, settings.max_client_seconds, settings.max_atlas_seconds),
        estimate_unmeasured=settings.workers == "in-process",  # the workers' devices are not this node's
    )
    estimates = Estimates(costs)
    # the device's speed measured now, before a request needs it
    speed = asyncio.to_thread(costs.estimator.speed, registry.device)
    warming = asyncio.create_task(speed)
    if settings.workers == "in-process":  # and the default model's eigenclips, where this node runs jobs
        warm_in_background(lambda: registry.get(REFERENCE_MODEL))
    atlases = AtlasManager(jobs, cache, costs=costs)
    app.state.services = Services(
        settings=settings,
        device=registry.device,
        registry=registry,
        cache=cache,
        jobs=jobs,
        visualizations=Visualizations(registry, cache, jobs, costs),
        estimates=estimates,
        atlases=atlases,
        embedded_redis=embedded,
        examples=ExampleIndex(k=insights.EXAMPLES_PER_UNIT),
    )
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a failure here is met again by a request: measured then, or a 503
            await warming
        await atlases.aclose()
        await jobs.aclose()
        writing_back.cancel()
        await cache.write_back()  # what Redis can take now; the rest stays in the spill for the next start
        await cache.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.close)
        folder.release()


def create_app(settings: ServerSettings | None = None, data_folder: DataFolder | None = None) -> FastAPI:
    """The app; the models are listed (not loaded) here, so a wrong model file or device fails
    at once with a ValueError instead of in the middle of the server's start. ``data_folder``: the
    settings' data folder, already held (``stlens serve`` checks it before it starts anything);
    the lifespan takes it otherwise."""
    settings = settings or ServerSettings()
    registry = open_registry(settings)
    app = FastAPI(
        title="Spacetime Lens",
        summary="Spatiotemporal activation maximisation of two-stream video networks, live.",
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.data_folder = data_folder or DataFolder(settings.data_dir)
    add_error_handlers(app)
    app.add_middleware(SessionCookie)
    app.add_middleware(StrictJSONBodies)  # inside the size limit: it reads bodies the limit has bounded
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes, larger={"/api/explain": explain.UPLOAD_BODY_LIMIT})
    app.add_middleware(WebSecurity, policy=host_policy(settings))  # outermost: foreign hosts go no further
    for module in (health, models, visualizations, atlas, explain, insights, pages):
        app.include_router(module.router)
    pages.mount_static(app, settings.frontend_dir)
    return app
