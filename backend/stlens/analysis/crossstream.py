"""Cross-stream dependence (finding 1): does a fusion unit need appearance AND motion together?

Each unit is measured on its own top clips four ways: both inputs (R), motion removed (R_a), appearance
removed (R_m) and both removed (R_0), a removed stream being replaced by its neutral input
(ablation.py). What the streams do together beyond their separate effects is the interaction
I = R - R_a - R_m + R_0 (zero for any unit that adds up an appearance part and a motion part, as late
fusion's logits do). The conjunction score I / (R - R_0), clipped to [0, 1], is 1 for a pure AND (either
stream alone leaves the unit where no input leaves it) and 0 for a unit that one stream drives alone or
that sums the two. Activations are averaged over positions and not rectified, so sums stay sums.
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
    neither: list[float]  # both removed
    conjunction: list[float]
    mean_conjunction: float  # over the units that the clips drive (R > R_0)


def conjunction_score(
    both: torch.Tensor, appearance_only: torch.Tensor, motion_only: torch.Tensor, neither: torch.Tensor
) -> torch.Tensor:
    drive = both - neither
    interaction = both - appearance_only - motion_only + neither
    score = (interaction / drive.clamp_min(1e-12)).clamp(0, 1)
    return torch.where(drive > 0, score, torch.zeros_like(score))


def cross_stream(
    model: LoadedModel, layer_id: str, batches: Iterable[Mapping[str, torch.Tensor]], top_clips: int = TOP_CLIPS
) -> CrossStream:
    """``batches`` yield model-space inputs of both streams; ``layer_id`` must be a fusion layer."""
    if model.layer(layer_id).stream != "fusion":
        raise ValueError(f"layer {layer_id!r} is not a fusion layer")
    specs = model.spec.inputs
    rows: list[torch.Tensor] = []
    for batch in batches:
        still = neutral_model("motion", specs["motion"], batch["motion"])
        flat = neutral_model("appearance", specs["appearance"], batch["appearance"])
        ablated = [
            batch,
            {**batch, "motion": still},
            {**batch, "appearance": flat},
            {"appearance": flat, "motion": still},
        ]
        rows.append(torch.stack([unit_means(layer_activations(model, layer_id, b)) for b in ablated], -1))
    responses = torch.cat(rows)  # (N, C, 4)
    top = responses[..., 0].topk(min(top_clips, len(responses)), dim=0).indices  # (k, C)
    mean = responses.gather(0, top.unsqueeze(-1).expand(-1, -1, 4)).mean(0)  # (C, 4)
    both, appearance_only, motion_only, neither = mean.unbind(-1)
    score = conjunction_score(both, appearance_only, motion_only, neither)
    driven = both > neither
    return CrossStream(
        both=both.tolist(),
        appearance_only=appearance_only.tolist(),
        motion_only=motion_only.tolist(),
        neither=neither.tolist(),
        conjunction=score.tolist(),
        mean_conjunction=float(score[driven].mean()) if driven.any() else 0.0,
    )
