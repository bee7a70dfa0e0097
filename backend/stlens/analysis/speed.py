"""Speed tuning (finding 3): how a unit's response changes when its clips are replayed faster or slower.

A set of clips is replayed at each speed (flow recomputed by the caller's ``replay``); each unit is
measured on its own top clips at 1x. The invariance index of a unit is mean(r) / max(r) over the
speeds: 1 when every speed drives it equally, 1/S when only one of S speeds does. A layer's index is
the mean over its active units; plotted over depth it shows whether deeper layers are more invariant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from pydantic import BaseModel

from ..models.registry import LoadedModel
from .units import many_layer_activations, unit_means

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
TOP_CLIPS = 5

Replay = Callable[[float], Mapping[str, torch.Tensor]]  # speed -> model-space inputs of the clip set


class SpeedTuning(BaseModel):
    speeds: list[float]
    responses: list[list[float]]  # (units, speeds), mean over each unit's top clips
    invariance: list[float]  # per unit
    layer_invariance: float


def invariance_index(responses: torch.Tensor) -> torch.Tensor:
    """(units, speeds) -> mean / max per unit (0 for a unit silent at every speed)."""
    peak = responses.amax(1)
    return torch.where(peak > 0, responses.mean(1) / peak.clamp_min(1e-12), torch.zeros_like(peak))


def speed_responses(
    model: LoadedModel, layers: Sequence[str], replay: Replay, speeds: Sequence[float]
) -> dict[str, torch.Tensor]:
    """Per layer: rectified unit means (clips, units, speeds). The clips are replayed once for all layers."""
    per_layer: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    for speed in speeds:
        outputs = many_layer_activations(model, layers, replay(speed))
        for layer in layers:
            per_layer[layer].append(unit_means(torch.relu(outputs[layer])))
    return {layer: torch.stack(r, -1) for layer, r in per_layer.items()}


def speed_tuning(responses: torch.Tensor, speeds: Sequence[float], top_clips: int = TOP_CLIPS) -> SpeedTuning:
    """From (clips, units, speeds) responses: each unit on its top clips at 1x."""
    reference = list(speeds).index(1.0)
    top = responses[..., reference].topk(min(top_clips, len(responses)), dim=0).indices  # (k, units)
    tuned = responses.gather(0, top.unsqueeze(-1).expand(-1, -1, len(speeds))).mean(0)  # (units, speeds)
    index = invariance_index(tuned)
    active = tuned.amax(1) > 0
    return SpeedTuning(
        speeds=list(speeds),
        responses=tuned.tolist(),
        invariance=index.tolist(),
        layer_invariance=float(index[active].mean()) if active.any() else 0.0,
    )
