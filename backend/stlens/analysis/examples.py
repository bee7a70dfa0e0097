"""Dataset examples: for every unit of a layer, the k clips that drive it hardest and where.

One pass over the data serves all units: each batch's per-unit peak (max over positions) is merged
into a running top-k per unit. The place is the peak's (t, y, x) as fractions of the layer's extent,
which is also where it sits in the input (the layers keep the input's layout, only coarser).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from pydantic import BaseModel

from ..models.registry import LoadedModel
from .units import layer_activations

MAX_EXAMPLES = 32


class Example(BaseModel):
    clip: int  # index of the clip in the order the batches gave them
    activation: float
    where: tuple[float, float, float] | None  # (t, y, x) in [0, 1] of the clip; None for a layer without positions


def _peaks(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, C, T, H, W) -> peak values (N, C) and their (t, y, x) fractions (N, C, 3)."""
    if output.ndim != 5:
        return output.flatten(2).amax(-1) if output.ndim > 2 else output, None
    t, h, w = output.shape[2:]
    values, flat = output.flatten(2).max(-1)
    index = torch.stack([flat // (h * w), flat // w % h, flat % w], -1).float()
    return values, (index + 0.5) / index.new_tensor([t, h, w])


def _place(where: torch.Tensor) -> tuple[float, float, float]:
    """A peak's (t, y, x) fractions, rounded to 4 places."""
    t, y, x = (round(float(f), 4) for f in where)
    return t, y, x


def dataset_examples(
    model: LoadedModel, layer_id: str, batches: Iterable[Mapping[str, torch.Tensor]], k: int = 5
) -> list[list[Example]]:
    """For each unit, its top-``k`` clips (strongest first). ``batches`` yield model-space inputs."""
    if not 1 <= k <= MAX_EXAMPLES:
        raise ValueError(f"k must be 1 to {MAX_EXAMPLES}, got {k}")
    spatial = len(model.layer(layer_id).shape) == 4
    best_values: torch.Tensor | None = None
    best_clips: torch.Tensor | None = None
    best_where: torch.Tensor | None = None
    seen = 0
    for batch in batches:
        values, where = _peaks(layer_activations(model, layer_id, batch))
        values = values.t()  # (C, N)
        clips = torch.arange(seen, seen + values.shape[1]).expand_as(values)
        where = where.transpose(0, 1) if where is not None else torch.zeros(*values.shape, 3)
        seen += values.shape[1]
        if best_values is not None and best_clips is not None and best_where is not None:  # set together
            values = torch.cat([best_values, values], 1)
            clips = torch.cat([best_clips, clips], 1)
            where = torch.cat([best_where, where], 1)
        top = values.topk(min(k, values.shape[1]), dim=1).indices
        best_values, best_clips = values.gather(1, top), clips.gather(1, top)
        best_where = where.gather(1, top.unsqueeze(-1).expand(-1, -1, 3))
    if best_values is None or best_clips is None or best_where is None:
        raise ValueError("no clips were given")
    return [
        [
            Example(
                clip=int(c),
                activation=float(v),
                where=_place(w) if spatial else None,
            )
            for v, c, w in zip(vs, cs, ws)
        ]
        for vs, cs, ws in zip(best_values, best_clips, best_where)
    ]
