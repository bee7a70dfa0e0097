"""The Insights page: its numbers (``GET /api/insights``, as last computed by ``python -m
stlens.analysis.insights``) and any unit's dataset examples (``GET /api/examples``)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from ...analysis.examples import MAX_EXAMPLES
from ...analysis.insights import RESULTS_PATH
from ...analysis.unit_examples import UnitExamples, unit_examples
from ...request import InvalidRequest, load_model
from ..deps import ServicesDep

router = APIRouter(tags=["insights"])
EXAMPLES_PER_UNIT = MAX_EXAMPLES // 4  # the clips a unit's index keeps: the most one request may ask for


@router.get("/insights", include_in_schema=False)
async def insights_page(services: ServicesDep) -> FileResponse:
    return FileResponse(services.settings.frontend_dir / "insights.html", media_type="text/html")


@router.get("/api/insights", responses={404: {"description": "not computed yet"}})
async def get_insights(services: ServicesDep) -> dict[str, Any]:
    """The four findings per built-in model; ``stale`` marks a model whose weights changed since."""
    if not RESULTS_PATH.is_file():
        raise HTTPException(
            404, "no insights computed yet; run: python -m stlens.analysis.insights --out docs/insights-numbers.md"
        )
    results = json.loads(await asyncio.to_thread(RESULTS_PATH.read_text))
    for model_id, measured in results["models"].items():
        try:
            loaded = await asyncio.to_thread(load_model, services.registry, model_id)
        except InvalidRequest:
            measured["stale"] = True
            continue
        measured["stale"] = loaded.weights_hash != measured["weights_hash"]
    return results


@router.get("/api/examples", response_model=UnitExamples, responses={404: {"description": "unknown model"}})
async def get_examples(
    services: ServicesDep,
    model: Annotated[str, Query(max_length=64)],
    layer: Annotated[str, Query(max_length=256)],
    unit: Annotated[int, Query(ge=0, le=1_000_000)],
    k: Annotated[int, Query(ge=1, le=EXAMPLES_PER_UNIT)] = 4,
) -> UnitExamples:
    """The unit's top test clips of the synthetic world, the peak boxed (the layer's first request
    indexes all its units in one pass)."""
    loaded = await asyncio.to_thread(load_model, services.registry, model)
    try:
        loaded.layer(layer)
    except KeyError:
        raise HTTPException(422, f"model {model!r} has no layer {layer!r}") from None
    try:
        return await asyncio.to_thread(unit_examples, services.examples, loaded, layer, unit, k)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
