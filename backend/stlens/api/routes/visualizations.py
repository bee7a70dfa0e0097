"""Visualisations: create (HTTP or live over a WebSocket), look up, and fetch arrays and media."""

from __future__ import annotations

from typing import Annotated, cast
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, WebSocket
from starlette.requests import HTTPConnection

from ...jobs.core import Job
from ...jobs.scheduling import PRIORITIES, Priority
from ...media.outputs import MEDIA_TYPES
from ...record import ResultRecord
from ...request import ID_LENGTH, ID_PATTERN, ResolvedRequest, VisualizationRequest
from ...visualizations import VisualizationState
from ..deps import Services, ServicesDep, client_of
from ..schemas import Cancellation, Visualization, VisualizationCreated
from ..security import link
from ..sharelink import share_query
from ..websocket import Watch, serve_one_request

router = APIRouter(tags=["visualizations"])

# the URLs name it {vid}, as they always have (the OpenAPI paths, and clients generated from them)
VisualizationId = Annotated[
    str, Path(alias="vid", pattern=ID_PATTERN, description=f"a content id ({ID_LENGTH} hex digits)")
]
MediumName = Annotated[str, Path(max_length=64, description=f"one of {', '.join(MEDIA_TYPES)}")]
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}  # ids are content hashes


def _share_url(connection: HTTPConnection, services: Services, resolved: ResolvedRequest) -> str:
    """The absolute share link: ``/v/{id}`` carrying the request, so that it works on another server."""
    page = link(connection, services.settings, "visualization_page", vid=resolved.id)
    return str(page.replace(query=urlencode(share_query(resolved.as_json()))))


PriorityQuery = Annotated[
    Priority,
    Query(description="background: nobody waits for it yet (a prefetch); it runs after every interactive request"),
]


@router.post("/api/visualizations", response_model=VisualizationCreated, status_code=202)
async def create_visualization(
    body: VisualizationRequest, request: Request, services: ServicesDep, priority: PriorityQuery = "interactive"
) -> VisualizationCreated:
    """Start a visualisation, or find it cached or running; the id is a hash of its content."""
    resolved = await services.visualizations.resolve(body)
    started = await services.visualizations.start(resolved, client_of(request), keep=True, priority=priority)
    status = "done" if isinstance(started, ResultRecord) else started.status
    return VisualizationCreated(id=resolved.id, status=status, share_url=_share_url(request, services, resolved))


@router.get("/api/visualizations/{vid}", response_model=Visualization)
async def get_visualization(
    visualization_id: VisualizationId, request: Request, services: ServicesDep
) -> Visualization:
    """Its status and, once done, its result; a known id that fell out of the cache is recomputed."""
    return Visualization.of(await services.visualizations.state(visualization_id, client_of(request)))


@router.delete(
    "/api/visualizations/{vid}",
    response_model=Cancellation,
    responses={403: {"description": "another client started it"}, 404: {"description": "not queued or running"}},
)
async def cancel_visualization(
    visualization_id: VisualizationId, request: Request, services: ServicesDep
) -> Cancellation:
    """Cancel a visualisation this client started (over HTTP: it would run to the end otherwise). It stops
    before its next step, unless live viewers of other clients still watch it; nothing of it is stored."""
    job = services.jobs.release(visualization_id, client_of(request))
    return Cancellation(id=visualization_id, stopped=job.cancel.is_set())


@router.get("/api/visualizations/{vid}/inputs.npz", response_class=Response)
async def get_inputs(visualization_id: VisualizationId, services: ServicesDep) -> Response:
    """The optimised inputs: ``appearance`` (T, H, W, 3) in [0, 1], ``motion`` (T, H, W, 2) in pixels."""
    data = await services.cache.get_npz(visualization_id)
    if data is None:
        raise HTTPException(404, f"no finished visualisation {visualization_id}")
    filename = f"{visualization_id}-inputs.npz"  # as the page names it
    headers = {**IMMUTABLE, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get("/api/visualizations/{vid}/media/{name}", response_class=Response)
async def get_media(visualization_id: VisualizationId, name: MediumName, services: ServicesDep) -> Response:
    if name not in MEDIA_TYPES:
        raise HTTPException(404, f"unknown medium {name!r}; one of {', '.join(MEDIA_TYPES)}")
    data = await services.cache.get_media(visualization_id, name)
    if data is None:
        detail = f"no {name} for visualisation {visualization_id} (not finished, or not a stream of its layer)"
        raise HTTPException(404, detail)
    return Response(data, media_type=MEDIA_TYPES[name], headers=IMMUTABLE)


@router.websocket("/api/visualizations/live")
async def live(ws: WebSocket, services: ServicesDep) -> None:
    """Send the POST body as one JSON message; receive accepted, queued... while it waits,
    progress..., then done or error. ``?priority=background``: a prefetch, run after interactive work."""

    async def start(text: str) -> tuple[str, Job | ResultRecord]:
        priority = ws.query_params.get("priority", "interactive")
        if priority not in PRIORITIES:
            raise ValueError(f"priority is one of {', '.join(PRIORITIES)}, not {priority[:40]!r}")
        resolved = await services.visualizations.resolve(VisualizationRequest.model_validate_json(text))
        await ws.send_json({"type": "accepted", "id": resolved.id, "share_url": _share_url(ws, services, resolved)})
        started = await services.visualizations.start(
            resolved, client_of(ws), keep=False, priority=cast(Priority, priority)
        )
        return resolved.id, started

    async def stream(started: tuple[str, Job | ResultRecord], watch: Watch) -> None:
        visualization_id, work = started
        if isinstance(work, ResultRecord):
            await _send_done(ws, VisualizationState.of_record(visualization_id, work))
        else:
            await _follow(ws, services, work, watch)

    await serve_one_request(ws, services.settings.max_body_bytes, start, stream)


async def _follow(ws: WebSocket, services: Services, job: Job, watch: Watch) -> None:
    """Forward the job's newest progress to the client until the job is done or failed."""
    subscription = job.subscribe()
    try:
        while True:
            event = await watch.next(subscription.next())
            if event.type in ("queued", "progress"):
                await ws.send_text(event.message)
            elif event.type == "done":
                await _send_done(ws, await services.visualizations.state(job.id, client_of(ws)))
                return
            else:
                await ws.send_json({"type": "error", "detail": job.detail or "the visualisation failed"})
                return
    finally:
        job.unsubscribe(subscription)


async def _send_done(ws: WebSocket, state: VisualizationState) -> None:
    await ws.send_json({"type": "done", **Visualization.of(state).model_dump(mode="json")})
