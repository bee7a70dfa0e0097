"""What a model is to the rest of stlens: its inputs, labels and layers.

A model is any ``torch.nn.Module`` whose ``forward`` takes the streams as keyword tensors,
``forward(appearance=(N,3,T,H,W), motion=(N,2,T,H,W))``, and returns class logits (N, K).
The engine works in *display space* (RGB in [0, 1], flow in pixels); an :class:`InputSpec`
turns display space into what the network was trained on.

Modules that set ``partial_inputs = True`` accept a subset of the streams and then compute
only those branches; the engine uses this to skip the stream a layer does not depend on.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

Stream = Literal["appearance", "motion"]
FlowMethod = Literal["dis", "tvl1"]  # the optical-flow estimators of stlens.flow.estimate
LayerStream = Literal["appearance", "motion", "fusion"]
STREAMS: tuple[Stream, ...] = ("appearance", "motion")
LOGITS = "logits"

MAX_FRAMES = 64
MAX_SIDE = 512


@lru_cache(maxsize=64)
def _per_channel(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """A (1, C, 1, 1, 1) constant, made once per device: a GPU loop would otherwise copy it over every step."""
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, -1, 1, 1, 1)


class InputSpec(BaseModel):
    """Shape of one stream's input and the map from display space to model space."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channels: int = Field(ge=1, le=4)
    frames: int = Field(ge=1, le=MAX_FRAMES)
    height: int = Field(ge=8, le=MAX_SIDE)
    width: int = Field(ge=8, le=MAX_SIDE)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    scale: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check_normalisation(self) -> InputSpec:
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is not None and len(values) != self.channels:
                raise ValueError(f"{name} has {len(values)} values but the stream has {self.channels} channels")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        return self

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W): the model-layout shape of one clip."""
        return (self.channels, self.frames, self.height, self.width)

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Display space (N, C, T, H, W) -> model input."""
        if self.mean is not None:
            x = x - _per_channel(self.mean, x.device).to(x.dtype)
        if self.std is not None:
            x = x / _per_channel(self.std, x.device).to(x.dtype)
        if self.scale is not None:
            x = x / self.scale
        return x


class LayerInfo(BaseModel):
    """One visualisable layer: a named conv / linear module, or the class logits."""

    model_config = ConfigDict(frozen=True)

    id: str
    stream: LayerStream
    units: int
    shape: tuple[int, ...]  # output shape without the batch dimension
    forward_flops: int = 0  # floating-point operations of the forward pass up to this layer's output, one item

    @property
    def inputs(self) -> tuple[Stream, ...]:
        """The input streams this layer depends on."""
        return STREAMS if self.stream == "fusion" else (self.stream,)


class ModelSpec(BaseModel):
    """The description of a model that the API and the engine need."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    title: str
    inputs: dict[Stream, InputSpec]
    labels: tuple[str, ...]
    flow: FlowMethod = Field(
        default="dis", description="the optical flow its motion stream was trained on; uploads get the same"
    )
    random_weights: bool = Field(
        default=False, description="built from seeded random weights, never trained: it has learnt nothing"
    )

    @property
    def streams(self) -> list[Stream]:
        return [s for s in STREAMS if s in self.inputs]

    @property
    def num_classes(self) -> int:
        return len(self.labels)
