"""A model's prediction on a clip: fused, and per stream with the other stream removed."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from pydantic import BaseModel

from ..models.registry import LoadedModel
from .ablation import to_model, without

MAX_TOP = 20


class ClassScore(BaseModel):
    index: int
    label: str
    probability: float
    logit: float


class Prediction(BaseModel):
    """Top classes by source: ``fused`` (all streams) and each stream alone (the other one neutral)."""

    top: dict[str, list[ClassScore]]


def _top(logits: torch.Tensor, labels: tuple[str, ...], k: int) -> list[ClassScore]:
    probs = logits.softmax(-1)
    values, indices = probs.topk(min(k, len(labels)))
    return [
        ClassScore(index=int(i), label=labels[int(i)], probability=float(p), logit=float(logits[int(i)]))
        for p, i in zip(values, indices)
    ]


@torch.no_grad()
def predict(model: LoadedModel, display: Mapping[str, torch.Tensor], top: int = 5) -> Prediction:
    """``display``: one clip per stream, display space (1, C, T, H, W), on the model's device."""
    if not 1 <= top <= MAX_TOP:
        raise ValueError(f"top must be 1 to {MAX_TOP}, got {top}")
    spec = model.spec
    labels = spec.labels
    results = {"fused": _top(model.module(**to_model(spec, display))[0], labels, top)}
    if len(spec.streams) > 1:
        for stream in spec.streams:
            other = next(s for s in spec.streams if s != stream)
            results[stream] = _top(model.module(**without(spec, display, other))[0], labels, top)
    return Prediction(top=results)
