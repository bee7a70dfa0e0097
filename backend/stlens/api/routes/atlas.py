"""Atlases: start one (HTTP or a WebSocket that streams its units as they finish), or look one up."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, WebSocket
from starlette.requests import HTTPConnection

from ...atlas import MAX_ATLAS_UNITS, Atlas
from ...models.registry import ModelRegistry
from ...request import ID_LENGTH, ID_PATTERN, ResolvedRequest, VisualizationRequest, resolve
from ..deps import Services, ServicesDep, client_of
from ..schemas import AtlasRequest, AtlasState, AtlasUnitState, EstimateRequest
from ..websocket import Watch, serve_one_request

router = APIRouter(tags=["atlas"])

AtlasId = Annotated[str, Path(alias="aid", pattern=ID_PATTERN, description=f"an atlas id ({ID_LENGTH} hex digits)")]


def resolve_units(registry: ModelRegistry, body: AtlasRequest | EstimateRequest) -> tuple[list[ResolvedRequest], int]:
    """Every unit's request (the first MAX_ATLAS_UNITS) and the layer's unit count (blocking: loads the model)."""

    def unit(number: int) -> ResolvedRequest:
        asked = VisualizationRequest(model=body.model, layer=body.layer, unit=number, settings=body.settings)
        return resolve(registry, asked)

    first = unit(0)
    return [first, *(unit(number) for number in range(1, min(first.layer.units, MAX_ATLAS_UNITS)))], first.layer.units


async def _start(services: Services, body: AtlasRequest, client: HTTPConnection, run_on: bool) -> Atlas:
    units, total = await asyncio.to_thread(resolve_units, services.registry, body)
    return await services.atlases.start(units, total, client_of(client), run_on)


@router.post("/api/atlas", response_model=AtlasState, status_code=202)
async def create_atlas(body: AtlasRequest, request: Request, services: ServicesDep) -> AtlasState:
    """Every unit of a layer with these settings: the cached ones at once, the others computed in the
    background, after interactive work. Asking again for a running atlas joins it. It runs on to the
    end (nobody watches an HTTP request): ``DELETE`` stops it."""
    return AtlasState.of(await _start(services, body, request, run_on=True), client_of(request))


@router.get("/api/atlas/{aid}", response_model=AtlasState)
async def get_atlas(atlas_id: AtlasId, request: Request, services: ServicesDep) -> AtlasState:
    atlas = services.atlases.get(atlas_id)
    if atlas is None:
        raise HTTPException(404, f"unknown atlas {atlas_id}; POST /api/atlas starts one")
    return AtlasState.of(atlas, client_of(request))


@router.delete(
    "/api/atlas/{aid}",
    response_model=AtlasState,
    responses={403: {"description": "another client started it"}, 404: {"description": "unknown atlas"}},
)
async def cancel_atlas(atlas_id: AtlasId, request: Request, services: ServicesDep) -> AtlasState:
    """Cancel an atlas this client started: no more units start, a running unit stops unless someone else
    watches it; the finished units stay stored, the others fail as cancelled."""
    client = client_of(request)
    return AtlasState.of(services.atlases.cancel(atlas_id, client), client)


@router.websocket("/api/atlas/live")
async def atlas_live(ws: WebSocket, services: ServicesDep) -> None:
    """Send the POST body as one JSON message; receive ``atlas`` (the state), a ``unit`` message for
    every change of a unit (with the atlas's ``eta_s`` then), then ``done`` (the final state), or
    ``error``. Once nobody has watched it for a few seconds it stops, unless ``run_on`` was asked for."""
    client = client_of(ws)

    async def start(text: str) -> Atlas:
        body = AtlasRequest.model_validate_json(text)
        return await _start(services, body, ws, run_on=body.run_on)

    async def stream(atlas: Atlas, watch: Watch) -> None:
        changes = atlas.listen()
        try:
            await ws.send_json({"type": "atlas", **AtlasState.of(atlas, client).model_dump(mode="json")})
            while (unit := await watch.next(changes.get())) is not None:
                state = AtlasUnitState.of(unit).model_dump(mode="json")
                await ws.send_json({"type": "unit", **state, "eta_s": atlas.eta_s})
            await ws.send_json({"type": "done", **AtlasState.of(atlas, client).model_dump(mode="json")})
        finally:
            atlas.unlisten(changes)
            services.atlases.unwatched(atlas)

    await serve_one_request(ws, services.settings.max_body_bytes, start, stream)
