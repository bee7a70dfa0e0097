"""Which units of a layer a clip drives hardest, measured as the engine's ``channel`` objective does
(each unit's activation averaged over its positions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from pydantic import BaseModel

from ..models.introspect import probe, recorded_outputs
from ..models.registry import LoadedModel
from ..models.spec import LOGITS, LayerInfo
from .ablation import to_model

MAX_TOP_UNITS = 64


class UnitScore(BaseModel):
    unit: int
    activation: float


def layer_inputs(
    model: LoadedModel, layer: LayerInfo, model_inputs: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Only the streams the layer depends on, where the model can run a subset of them."""
    if getattr(model.module, "partial_inputs", False):
        return {s: model_inputs[s] for s in layer.inputs}
    return dict(model_inputs)


def default_layer(model: LoadedModel) -> str:
    """The deepest fusion layer before the logits (where the streams meet), else the logits."""
    fusion = [layer.id for layer in model.layers[:-1] if layer.stream == "fusion"]
    return fusion[-1] if fusion else model.layers[-1].id


def unit_means(output: torch.Tensor) -> torch.Tensor:
    """(N, C, ...) -> (N, C): the mean over every position of each unit."""
    return output.flatten(2).mean(-1) if output.ndim > 2 else output


@torch.no_grad()
def layer_activations(model: LoadedModel, layer_id: str, model_inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The layer's raw output for a batch of model-space inputs."""
    layer = model.layer(layer_id)
    with probe(model.module, layer_id) as run:
        return run(layer_inputs(model, layer, model_inputs))


@torch.no_grad()
def many_layer_activations(
    model: LoadedModel, layer_ids: Sequence[str], model_inputs: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Several layers' outputs from one full forward pass (both streams are needed for the logits)."""
    with recorded_outputs(model.module, [name for name in layer_ids if name != LOGITS]) as outputs:
        logits = model.module(**model_inputs)
    if LOGITS in layer_ids:
        outputs[LOGITS] = logits
    return {name: outputs[name] for name in layer_ids}


def top_units(model: LoadedModel, display: Mapping[str, torch.Tensor], layer_id: str, k: int = 8) -> list[UnitScore]:
    """The ``k`` units of ``layer_id`` most active on one clip (display space, batch of one), strongest first."""
    if not 1 <= k <= MAX_TOP_UNITS:
        raise ValueError(f"k must be 1 to {MAX_TOP_UNITS}, got {k}")
    means = unit_means(layer_activations(model, layer_id, to_model(model.spec, display)))[0]
    values, indices = means.topk(min(k, means.numel()))
    return [UnitScore(unit=int(i), activation=float(v)) for v, i in zip(values, indices)]
