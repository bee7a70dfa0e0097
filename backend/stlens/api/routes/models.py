from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path

from ...analysis.unit_examples import examples_available
from ...atlas import MAX_ATLAS_UNITS
from ...engine.settings import VisualizationSettings
from ...estimates import HEAVY_S
from ...models.registry import LoadedModel, ModelEntry
from ...request import InvalidRequest, NotFound, VisualizationRequest, load_model, resolve, settings_for
from ..deps import Services, ServicesDep
from ..schemas import (
    EstimateRequest,
    InputShape,
    Layer,
    LayerDefaults,
    ModelDetail,
    ModelPace,
    ModelSummary,
    StepEstimate,
    WorkEstimateState,
)
from .atlas import resolve_units

router = APIRouter(tags=["models"])

ModelId = Annotated[str, Path(max_length=64, description="a model id from GET /api/models")]


def _summary(entry: ModelEntry) -> ModelSummary:
    spec = entry.spec
    return ModelSummary(
        id=spec.id,
        title=spec.title,
        streams=spec.streams,
        num_classes=spec.num_classes,
        description=entry.description,
        random_weights=spec.random_weights,
        flow=spec.flow,
    )


def _layer_defaults(model: LoadedModel, layer: str, start: bool) -> LayerDefaults:
    filled = settings_for(model, layer, VisualizationSettings(), start)
    assert filled.param is not None and filled.freedom is not None  # settings_for fills both in
    return LayerDefaults(param=filled.param, freedom=filled.freedom)


@router.get("/api/models", response_model=list[ModelSummary])
async def list_models(services: ServicesDep) -> list[ModelSummary]:
    return [_summary(entry) for entry in services.registry.entries()]


@router.get("/api/models/{model}", response_model=ModelDetail)
async def describe_model(model: ModelId, services: ServicesDep) -> ModelDetail:
    """The model's inputs, labels and layers (the first call loads the model)."""
    loaded = await asyncio.to_thread(load_model, services.registry, model)
    spec = loaded.spec
    entry = services.registry.entry(model)
    return ModelDetail(
        **_summary(entry).model_dump(),
        inputs={
            stream: InputShape(channels=i.channels, frames=i.frames, height=i.height, width=i.width)
            for stream, i in spec.inputs.items()
        },
        labels=list(spec.labels),
        layers=[
            Layer(
                id=layer.id, stream=layer.stream, units=layer.units, shape=list(layer.shape),
                defaults=_layer_defaults(loaded, layer.id, start=False),
                start_defaults=_layer_defaults(loaded, layer.id, start=True),
            )
            for layer in loaded.layers
        ],
        dataset_examples=examples_available(spec),
        card=dict(entry.card) if entry.card else None,
    )


@router.get("/api/models/{model}/pace", response_model=ModelPace)
async def model_pace(model: ModelId, services: ServicesDep) -> ModelPace:
    """Seconds a step of each layer takes on this deployment: measured where the layer has run here
    (``seconds_per_step``), else estimated (``layers`` has every layer; the first call loads the model)."""
    loaded = await asyncio.to_thread(load_model, services.registry, model)
    costs = await services.estimates.layers(loaded)
    layers = {layer: StepEstimate(seconds_per_step=cost.seconds, source=cost.source) for layer, cost in costs.items()}
    return ModelPace(model=model, seconds_per_step=await services.cache.get_pace(model), layers=layers)


@router.post("/api/estimates", response_model=WorkEstimateState)
async def estimate(body: EstimateRequest, services: ServicesDep) -> WorkEstimateState:
    """About how long some work takes here before it starts: one visualisation, ``runs`` of them (a
    sweep), or a layer's atlas; ``heavy`` work is announced and confirmed on the page first."""
    loaded = await asyncio.to_thread(load_model, services.registry, body.model)
    try:
        layer = loaded.layer(body.layer)
    except KeyError:
        raise NotFound(f"model {body.model!r} has no layer {body.layer!r}") from None
    runs = min(layer.units, MAX_ATLAS_UNITS) if body.atlas else body.runs
    stored = await _stored(services, body, runs)
    work = await services.estimates.work(loaded, layer.id, body.settings.steps, runs - stored)
    return WorkEstimateState(
        seconds=round(work.seconds, 1),
        runs=runs,
        seconds_per_step=work.seconds_per_step,
        source=work.source,
        heavy=work.heavy,
        heavy_s=HEAVY_S,
        stored=stored,
    )


async def _stored(services: Services, body: EstimateRequest, runs: int) -> int:
    """How many of the runs are stored here already: an atlas's units, or the one run of ``unit``."""
    if body.unit is not None and (body.atlas or runs > 1):
        raise InvalidRequest("a unit is estimated as one run: leave out runs and atlas")
    if body.atlas:
        units, _ = await asyncio.to_thread(resolve_units, services.registry, body)
    elif body.unit is not None:
        asked = VisualizationRequest(model=body.model, layer=body.layer, unit=body.unit, settings=body.settings)
        units = [await asyncio.to_thread(resolve, services.registry, asked)]
    else:
        return 0
    records = await asyncio.gather(*(services.cache.get_record(unit.id) for unit in units))
    return sum(record is not None for record in records)

