from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path

from ...analysis.unit_examples import examples_available
from ...models.registry import ModelEntry
from ...request import NotFound, load_model
from ..deps import ServicesDep
from ..schemas import InputShape, Layer, ModelDetail, ModelPace, ModelSummary

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
            Layer(id=layer.id, stream=layer.stream, units=layer.units, shape=list(layer.shape))
            for layer in loaded.layers
        ],
        dataset_examples=examples_available(spec),
        card=dict(entry.card) if entry.card else None,
    )


@router.get("/api/models/{model}/pace", response_model=ModelPace)
async def model_pace(model: ModelId, services: ServicesDep) -> ModelPace:
    """Seconds a step of each layer that has run on this deployment: the page's estimate of how
    long a visualisation will take (steps x pace) before it starts."""
    if model not in services.registry:
        raise NotFound(f"unknown model {model!r}")
    return ModelPace(model=model, seconds_per_step=await services.cache.get_pace(model))

