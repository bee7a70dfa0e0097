"""Remove one stream's input by replacing it with a neutral one, to see what the other stream does alone.

Neutral means "no information": zero flow for motion, and for appearance the normalisation mean (a
flat frame that the network sees as all zeros), or mid grey where the model declares no mean.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..models.spec import InputSpec, ModelSpec, Stream


def neutral_display(stream: Stream, spec: InputSpec, like: torch.Tensor) -> torch.Tensor:
    """A display-space tensor shaped like ``like`` (N, C, T, H, W) that carries no information."""
    if stream == "motion":
        return torch.zeros_like(like)
    level = like.new_tensor(spec.mean if spec.mean is not None else (0.5,) * spec.channels)
    return level.view(1, -1, 1, 1, 1).expand_as(like).clone()


def without(spec: ModelSpec, display: Mapping[str, torch.Tensor], removed: Stream) -> dict[str, torch.Tensor]:
    """Model-space inputs with ``removed`` made neutral and the other streams as given (display space)."""
    out: dict[str, torch.Tensor] = {}
    for s in spec.streams:
        x = display[s]
        if s == removed:
            x = neutral_display(s, spec.inputs[s], x)
        out[s] = spec.inputs[s].to_model(x)
    return out


def to_model(spec: ModelSpec, display: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {s: spec.inputs[s].to_model(display[s]) for s in spec.streams}


def neutral_model(stream: Stream, spec: InputSpec, like: torch.Tensor) -> torch.Tensor:
    """The neutral input in model space, shaped like the model-space batch ``like``."""
    return spec.to_model(neutral_display(stream, spec, like))
