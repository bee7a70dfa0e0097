"""Visualisations: create (HTTP or live over a WebSocket), look up, and fetch arrays and media."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Path, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from ...jobs import Busy, InvalidRequest, Job, ResolvedRequest, resolve
from ...media.render import MEDIA_TYPES
from ..deps import Services, ServicesDep
from ..schemas import ID_PATTERN, Status, Visualization, VisualizationCreated, VisualizationRequest, VisualizationResult
from ..sharelink import share_path, share_query

router = APIRouter(tags=["visualizations"])

VisualizationId = Annotated[str, Path(pattern=ID_PATTERN, description="a content id (20 hex digits)")]
MediumName = Annotated[str, Path(max_length=64, description=f"one of {', '.join(MEDIA_TYPES)}")]
FIRST_MESSAGE_TIMEOUT_S = 30.0
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}  # ids are content hashes


def media_url(vid: str, name: str) -> str:
    return f"/api/visualizations/{vid}/media/{name}"


def _result(vid: str, result: dict[str, Any]) -> VisualizationResult:
    return VisualizationResult(
        objective=result["objective"],
        steps=result["steps"],
        streams=result["streams"],
        media={name: media_url(vid, name) for name in result["media"]},
        inputs=f"/api/visualizations/{vid}/inputs.npz",
        seconds=result.get("seconds"),
    )


def _visualization(vid: str, status: Status, request: dict[str, Any], **rest: Any) -> Visualization:
    return Visualization(id=vid, status=status, request=request, share_path=share_path(vid, request), **rest)


def _done(vid: str, record: dict[str, Any]) -> Visualization:
    return _visualization(vid, "done", record["request"], result=_result(vid, record["result"]))


def _share_url(connection: HTTPConnection, resolved: ResolvedRequest) -> str:
    """The absolute share link: ``/v/{id}`` carrying the request, so that it works on another server."""
    page = connection.url_for("visualization_page", vid=resolved.id)
    return str(page.replace(query=urlencode(share_query(resolved.as_json()))))


async def _resolve(s: Services, body: VisualizationRequest) -> ResolvedRequest:
    """Check the request against its model (loaded in a thread); 4xx with a clear detail if wrong."""
    try:
        return await asyncio.to_thread(resolve, s.registry, body.model, body.layer, body.unit, body.settings)
    except InvalidRequest as exc:
        raise HTTPException(exc.status, exc.detail) from None


async def _start(
    s: Services, resolved: ResolvedRequest, client: HTTPConnection, keep: bool
) -> tuple[Status, Job | None]:
    """Remember the request, then answer from the cache, join the running job, or start one.

    ``keep``: the job runs to the end even if no live viewer is left (HTTP clients poll)."""
    await s.cache.put_request(resolved.id, resolved.as_json())
    job = s.jobs.get(resolved.id)
    if job is None or not job.active:
        if await s.cache.get_record(resolved.id) is not None:
            return "done", None
    try:
        job = s.jobs.submit(resolved, keep, client.client.host if client.client else "")
    except Busy as exc:
        raise HTTPException(exc.status, str(exc), headers={"Retry-After": "5"}) from None
    return job.status, job


async def _lookup(s: Services, vid: str, client: HTTPConnection) -> Visualization:
    job = s.jobs.get(vid)
    if job is not None and job.active:
        return _visualization(vid, job.status, job.request)
    record = await s.cache.get_record(vid)
    if record is not None:
        return _done(vid, record)
    if job is not None and job.status == "failed":
        return _visualization(vid, "failed", job.request, detail=job.detail)
    request = await s.cache.get_request(vid)
    if request is None:
        cache_note = "" if s.cache.available else " (the cache is unreachable right now)"
        raise HTTPException(404, f"unknown visualisation {vid}{cache_note}")
    try:
        stored = VisualizationRequest.model_validate(request)
    except ValidationError:
        detail = "this link's request is not valid for this server version any more; make it again"
        return _visualization(vid, "failed", request, detail=detail)
    resolved = await _resolve(s, stored)
    if resolved.id != vid:
        detail = f"the model's weights changed since this link was made; it is now {resolved.id}"
        return _visualization(vid, "failed", request, detail=detail)
    status, _ = await _start(s, resolved, client, keep=True)  # known but no longer cached: compute it again
    return await _lookup(s, vid, client) if status == "done" else _visualization(vid, status, request)


@router.post("/api/visualizations", response_model=VisualizationCreated, status_code=202)
async def create_visualization(body: VisualizationRequest, request: Request, s: ServicesDep) -> VisualizationCreated:
    """Start a visualisation, or find it cached or running; the id is a hash of its content."""
    resolved = await _resolve(s, body)
    status, _ = await _start(s, resolved, request, keep=True)
    return VisualizationCreated(id=resolved.id, status=status, share_url=_share_url(request, resolved))


@router.get("/api/visualizations/{vid}", response_model=Visualization)
async def get_visualization(vid: VisualizationId, request: Request, s: ServicesDep) -> Visualization:
    """Its status and, once done, its result; a known id that fell out of the cache is recomputed."""
    return await _lookup(s, vid, request)


@router.get("/api/visualizations/{vid}/inputs.npz", response_class=Response)
async def get_inputs(vid: VisualizationId, s: ServicesDep) -> Response:
    """The optimised inputs: ``appearance`` (T, H, W, 3) in [0, 1], ``motion`` (T, H, W, 2) in pixels."""
    data = await s.cache.get_npz(vid)
    if data is None:
        raise HTTPException(404, f"no finished visualisation {vid}")
    headers = {**IMMUTABLE, "Content-Disposition": f'attachment; filename="{vid}-inputs.npz"'}  # as the page names it
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get("/api/visualizations/{vid}/media/{name}", response_class=Response)
async def get_media(
    vid: VisualizationId,
    name: MediumName,
    s: ServicesDep,
) -> Response:
    if name not in MEDIA_TYPES:
        raise HTTPException(404, f"unknown medium {name!r}; one of {', '.join(MEDIA_TYPES)}")
    data = await s.cache.get_media(vid, name)
    if data is None:
        raise HTTPException(404, f"no {name} for visualisation {vid} (not finished, or not a stream of its layer)")
    return Response(data, media_type=MEDIA_TYPES[name], headers=IMMUTABLE)


def error_detail(exc: Exception) -> Any:
    """The ``detail`` of an error message, shaped like the HTTP API's 4xx bodies."""
    if isinstance(exc, ValidationError):
        return exc.errors(include_url=False, include_context=False, include_input=False)
    if isinstance(exc, HTTPException):
        return exc.detail
    return str(exc)


async def receive_first_message(ws: WebSocket, s: Services) -> str:
    """The client's one JSON text message (ValueError if it is late, too large or not JSON)."""
    try:
        message = await asyncio.wait_for(ws.receive(), FIRST_MESSAGE_TIMEOUT_S)
    except TimeoutError:
        raise ValueError(f"no request within {FIRST_MESSAGE_TIMEOUT_S:.0f} s") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:  # a binary frame: accepted if it is UTF-8 JSON all the same
        text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
    if len(text.encode()) > s.settings.max_body_bytes:
        raise ValueError(f"message too large (at most {s.settings.max_body_bytes} bytes)")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the message is not JSON: {exc}") from None
    return text


@router.websocket("/api/visualizations/live")
async def live(ws: WebSocket, s: ServicesDep) -> None:
    """Send the POST body as one JSON message; receive accepted, progress..., then done or error."""
    await ws.accept()
    try:
        try:
            text = await receive_first_message(ws, s)
            resolved = await _resolve(s, VisualizationRequest.model_validate_json(text))
            await ws.send_json({"type": "accepted", "id": resolved.id, "share_url": _share_url(ws, resolved)})
            _, job = await _start(s, resolved, ws, keep=False)
        except (ValueError, HTTPException) as exc:  # ValidationError is a ValueError; busy is a 503
            await ws.send_json({"type": "error", "detail": error_detail(exc)})
            await ws.close()
            return
        if job is None:
            await ws.send_json({"type": "done", **(await _lookup(s, resolved.id, ws)).model_dump(mode="json")})
            await ws.close()
            return
        await _follow(ws, s, job)
        await ws.close()
    except WebSocketDisconnect:
        return


async def until_closed(ws: WebSocket) -> None:
    """Returns when the client goes away (anything it sends meanwhile is ignored)."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def _follow(ws: WebSocket, s: Services, job: Job) -> None:
    """Forward the job's newest progress to this client until it is done or failed, or the client leaves."""
    subscription = job.subscribe()
    closed = asyncio.ensure_future(until_closed(ws))
    try:
        while True:
            upcoming = asyncio.ensure_future(subscription.next())
            await asyncio.wait({upcoming, closed}, return_when=asyncio.FIRST_COMPLETED)
            if closed.done():
                upcoming.cancel()
                raise WebSocketDisconnect(1001)
            event = upcoming.result()
            if event.type == "progress":
                await ws.send_text(event.message)
            elif event.type == "done":
                await ws.send_json({"type": "done", **(await _lookup(s, job.id, ws)).model_dump(mode="json")})
                return
            else:
                await ws.send_json({"type": "error", "detail": job.detail or "the visualisation failed"})
                return
    finally:
        closed.cancel()
        job.unsubscribe(subscription)
