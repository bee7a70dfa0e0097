"""Cross-stream dependence (finding 1): does a fusion unit need appearance AND motion together?

Each unit is measured on its own top clips three ways: both inputs (R), motion removed (R_a) and
appearance removed (R_m), a removed stream being replaced by its neutral input (ablation.py). The
conjunction score (R - max(R_a, R_m)) / R, clipped to [0, 1], is 0 for a unit that one stream drives
alone and near 1 for one that needs both at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from pydantic import BaseModel

from ..models.registry import LoadedModel
from .ablation import neutral_model
from .units import layer_activations, unit_means

TOP_CLIPS = 10


class CrossStream(BaseModel):
    both: list[float]  # per unit, mean over its top clips
    appearance_only: list[float]  # motion removed
    motion_only: list[float]  # appearance removed
    conjunction: list[float]
    mean_conjunction: float


def conjunction_score(both: torch.Tensor, appearance_only: torch.Tensor, motion_only: torch.Tensor) -> torch.Tensor:
    gain = (both - torch.maximum(appearance_only, motion_only)) / both.clamp_min(1e-12)
    return torch.where(both > 0, gain.clamp(0, 1), torch.zeros_like(both))


def cross_stream(
    model: LoadedModel, layer_id: str, batches: Iterable[Mapping[str, torch.Tensor]], top_clips: int = TOP_CLIPS
) -> CrossStream:
    """``batches`` yield model-space inputs of both streams; ``layer_id`` must be a fusion layer."""
    if model.layer(layer_id).stream != "fusion":
        raise ValueError(f"layer {layer_id!r} is not a fusion layer")
    specs = model.spec.inputs
    rows: list[torch.Tensor] = []
    for batch in batches:
        ablated = [
            batch,
            {**batch, "motion": neutral_model("motion", specs["motion"], batch["motion"])},
            {**batch, "appearance": neutral_model("appearance", specs["appearance"], batch["appearance"])},
        ]
        rows.append(torch.stack([unit_means(torch.relu(layer_activations(model, layer_id, b))) for b in ablated], -1))
    responses = torch.cat(rows)  # (N, C, 3)
    top = responses[..., 0].topk(min(top_clips, len(responses)), dim=0).indices  # (k, C)
    mean = responses.gather(0, top.unsqueeze(-1).expand(-1, -1, 3)).mean(0)  # (C, 3)
    both, appearance_only, motion_only = mean.unbind(-1)
    score = conjunction_score(both, appearance_only, motion_only)
    active = both > 0
    return CrossStream(
        both=both.tolist(),
        appearance_only=appearance_only.tolist(),
        motion_only=motion_only.tolist(),
        conjunction=score.tolist(),
        mean_conjunction=float(score[active].mean()) if active.any() else 0.0,
    )
