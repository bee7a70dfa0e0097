"""The settings of one visualisation: the CONTRACT's ``settings`` object, with bounds.

Every field has a documented default (chosen by experiment: docs/engine.md); the filled-in
settings are part of a visualisation's content id, so two requests that mean the same thing
share one id.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..models.spec import LOGITS

MAX_STEPS = 1024
# the spectrum basis's freedom where a request leaves it unset, chosen by faithfulness (docs/engine.md):
CLASS_FREEDOM = 1.0  # class logits, phases only: the independent judges recognise the most pictures
UNIT_FREEDOM = 2.0  # hidden units: their pictures follow their top clips' path through the net more often


class TemporalWeights(BaseModel):
    """Temporal variation weight per stream: larger means slower, smoother in time."""

    model_config = ConfigDict(extra="forbid")

    appearance: float = Field(default=1.0, ge=0, le=1000)
    motion: float = Field(default=1.0, ge=0, le=1000)


class RegularizerWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    norm: float = Field(default=0.01, ge=0, le=1000, description="bounded-range / L-alpha norm penalty")
    tv_space: float = Field(default=0.05, ge=0, le=1000, description="spatial total variation")
    tv_time: TemporalWeights = Field(default_factory=TemporalWeights)
    start: float = Field(
        default=3.0, ge=0, le=1000,
        description="with a start clip: pull back to that clip (per stream, the mean squared difference over the "
        "clip's own mean square)",
    )


class TransformSettings(BaseModel):
    """Random robustness transforms drawn afresh every step (all zero: none)."""

    model_config = ConfigDict(extra="forbid")

    jitter: float = Field(default=0.05, ge=0, le=0.25, description="spatial shift, a fraction of the side")
    zoom: float = Field(default=0.1, ge=0, le=0.5, description="zoom uniform in [1 - zoom, 1 + zoom]")
    time_shift: int = Field(default=1, ge=0, le=16, strict=True, description="circular shift in frames")
    views: int = Field(
        default=1, ge=1, le=8, strict=True, description="transformed views a step averages the objective over"
    )


class VisualizationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=128, ge=1, le=MAX_STEPS, strict=True)  # integers only: not true, "6" or 6.0
    seed: int = Field(default=0, ge=0, le=2**31 - 1, strict=True)
    lr: float = Field(default=0.05, gt=0, le=1.0)
    objective: Literal["channel", "neuron"] = "channel"
    weights: RegularizerWeights = Field(default_factory=RegularizerWeights)
    param: Literal["pixel", "fourier", "spectrum", "pca"] | None = Field(
        default=None, description="the clip's basis: pca (the principal components of the model's training "
        "clips), spectrum (their natural amplitude spectrum, free phases), fourier or pixel; unset: pca for the "
        "class logits of a model with natural clips, spectrum otherwise",
    )
    freedom: float | None = Field(
        default=None, ge=1, le=16, description="spectrum parameterisation: the factor by which an amplitude may "
        f"rise above the natural one (1: phases only); unset: {CLASS_FREEDOM:g} for the class logits, "
        f"{UNIT_FREEDOM:g} for hidden units",
    )
    direction: Literal["max", "min"] = Field(default="max", description="min: the negative direction")
    diversity: float = Field(default=0.0, ge=0, le=100, description="weight of diversity across a batch")
    transforms: TransformSettings = Field(default_factory=TransformSettings)

    def for_layer(self, layer: str, eigenclips: bool = False, start: bool = False) -> VisualizationSettings:
        """These settings as a run of ``layer`` uses them, filled in by the layer: an unset ``param`` is
        ``pca`` for the class logits of a model with ``eigenclips`` and no ``start`` clip, else
        ``spectrum``; an unset ``freedom`` is the layer's (1 for every parameterisation but ``spectrum``,
        where it means nothing: the old default, so their content ids stay as they were)."""
        update: dict[str, object] = {}
        param = self.param
        if param is None:
            param = update["param"] = "pca" if layer == LOGITS and eigenclips and not start else "spectrum"
        if self.freedom is None:
            freedom = CLASS_FREEDOM if layer == LOGITS else UNIT_FREEDOM
            update["freedom"] = freedom if param == "spectrum" else 1.0
        return self.model_copy(update=update) if update else self
