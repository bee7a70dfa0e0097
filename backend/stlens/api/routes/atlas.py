"""Atlases: start one (HTTP or a WebSocket that streams its units as they finish), or look one up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from ...atlas import MAX_ATLAS_UNITS, Atlas, AtlasManager, AtlasStatus, AtlasUnit, UnitStatus
from ...engine.settings import VisualizationSettings
from ...jobs import Busy, InvalidRequest, ResolvedRequest, resolve
from ...models.registry import ModelRegistry
from ..deps import Services, ServicesDep
from ..schemas import ID_PATTERN
from .visualizations import error_detail, media_url, receive_first_message, until_closed


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's own lifespan (FastAPI nests a router's): the jobs and cache exist."""
    services: Services = app.state.services
    app.state.atlases = AtlasManager(services.jobs, services.cache)
    try:
        yield
    finally:
        await app.state.atlases.aclose()


router = APIRouter(tags=["atlas"], lifespan=lifespan)


def atlases(connection: HTTPConnection) -> AtlasManager:
    return connection.app.state.atlases


AtlasesDep = Annotated[AtlasManager, Depends(atlases)]
AtlasId = Annotated[str, Path(pattern=ID_PATTERN, description="an atlas id (20 hex digits)")]


class AtlasRequest(BaseModel):
    """The body of ``POST /api/atlas`` and the first message on ``/api/atlas/live``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "synth-conv-fusion", "layer": "fusion.conv", "settings": {"steps": 32}}]},
    )

    model: str = Field(min_length=1, max_length=64)
    layer: str = Field(min_length=1, max_length=256)
    settings: VisualizationSettings = Field(default_factory=VisualizationSettings)


class AtlasUnitState(BaseModel):
    unit: int
    id: str = Field(description="the unit's visualisation id, as POST /api/visualizations gives it")
    status: UnitStatus
    detail: str | None = Field(default=None, description="why it failed")
    media: dict[str, str] | None = Field(default=None, description="medium name -> URL, once done")

    @classmethod
    def of(cls, unit: AtlasUnit) -> AtlasUnitState:
        media = {name: media_url(unit.id, name) for name in unit.media()} if unit.status == "done" else None
        return cls(unit=unit.unit, id=unit.id, status=unit.status, detail=unit.detail, media=media)


class AtlasState(BaseModel):
    id: str
    model: str
    layer: str
    status: AtlasStatus = Field(description="done once every unit is done or failed")
    units_total: int = Field(description=f"the layer's units; the atlas holds the first {MAX_ATLAS_UNITS} at most")
    units: list[AtlasUnitState]

    @classmethod
    def of(cls, atlas: Atlas) -> AtlasState:
        first = atlas.units[0].request
        return cls(
            id=atlas.id,
            model=first.model.spec.id,
            layer=first.layer.id,
            status=atlas.status,
            units_total=atlas.units_total,
            units=[AtlasUnitState.of(u) for u in atlas.units],
        )


def _resolve_units(registry: ModelRegistry, body: AtlasRequest) -> tuple[list[ResolvedRequest], int]:
    """Every unit's request (the first MAX_ATLAS_UNITS) and the layer's unit count (blocking: loads the model)."""
    first = resolve(registry, body.model, body.layer, 0, body.settings)
    count = min(first.layer.units, MAX_ATLAS_UNITS)
    rest = [resolve(registry, body.model, body.layer, unit, body.settings) for unit in range(1, count)]
    return [first, *rest], first.layer.units


async def _start(s: Services, manager: AtlasManager, body: AtlasRequest, client: HTTPConnection) -> Atlas:
    try:
        units, total = await asyncio.to_thread(_resolve_units, s.registry, body)
        return await manager.start(units, total, client.client.host if client.client else "")
    except InvalidRequest as exc:
        raise HTTPException(exc.status, exc.detail) from None
    except Busy as exc:
        raise HTTPException(exc.status, str(exc), headers={"Retry-After": "30"}) from None


@router.post("/api/atlas", response_model=AtlasState, status_code=202)
async def create_atlas(body: AtlasRequest, request: Request, s: ServicesDep, manager: AtlasesDep) -> AtlasState:
    """Every unit of a layer with these settings: the cached ones at once, the others computed in the
    background at low priority, a unit for each free job worker. Asking again for a running atlas joins it."""
    return AtlasState.of(await _start(s, manager, body, request))


@router.get("/api/atlas/{aid}", response_model=AtlasState)
async def get_atlas(aid: AtlasId, manager: AtlasesDep) -> AtlasState:
    atlas = manager.get(aid)
    if atlas is None:
        raise HTTPException(404, f"unknown atlas {aid}; POST /api/atlas starts one")
    return AtlasState.of(atlas)


@router.websocket("/api/atlas/live")
async def atlas_live(ws: WebSocket, s: ServicesDep, manager: AtlasesDep) -> None:
    """Send the POST body as one JSON message; receive ``atlas`` (the state), a ``unit`` message for
    every change of a unit, then ``done`` (the final state), or ``error``. Leaving does not stop the atlas."""
    await ws.accept()
    try:
        try:
            text = await receive_first_message(ws, s)
            atlas = await _start(s, manager, AtlasRequest.model_validate_json(text), ws)
        except (ValueError, HTTPException) as exc:
            await ws.send_json({"type": "error", "detail": error_detail(exc)})
            await ws.close()
            return
        changes = atlas.listen()
        closed = asyncio.ensure_future(until_closed(ws))
        try:
            await ws.send_json({"type": "atlas", **AtlasState.of(atlas).model_dump(mode="json")})
            while True:
                change = asyncio.ensure_future(changes.get())
                await asyncio.wait({change, closed}, return_when=asyncio.FIRST_COMPLETED)
                if closed.done():
                    change.cancel()
                    return
                unit = change.result()
                if unit is None:
                    break
                await ws.send_json({"type": "unit", **AtlasUnitState.of(unit).model_dump(mode="json")})
            await ws.send_json({"type": "done", **AtlasState.of(atlas).model_dump(mode="json")})
            await ws.close()
        finally:
            closed.cancel()
            atlas.unlisten(changes)
    except WebSocketDisconnect:
        return
