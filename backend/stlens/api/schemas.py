"""The JSON shapes of the HTTP and WebSocket API (the CONTRACT's, plus a few additions)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..engine.settings import VisualizationSettings
from ..models.spec import LayerStream, Stream

Status = Literal["queued", "running", "done", "failed"]
ID_PATTERN = r"^[0-9a-f]{20}$"


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    cache: Literal["ok", "down"]
    device: str
    jobs: int = Field(description="visualisations queued or running")
    jobs_started: int = Field(description="visualisations computed since the server started")


class ModelSummary(BaseModel):
    id: str
    title: str
    streams: list[Stream]
    num_classes: int
    description: str = ""


class InputShape(BaseModel):
    channels: int
    frames: int
    height: int
    width: int


class Layer(BaseModel):
    id: str
    stream: LayerStream
    units: int
    shape: list[int]


class ModelDetail(ModelSummary):
    inputs: dict[Stream, InputShape]
    labels: list[str]
    layers: list[Layer] = Field(description="in forward order; the class logits last")
    dataset_examples: bool = Field(description="whether GET /api/examples has dataset examples for its units")


class ModelPace(BaseModel):
    model: str
    seconds_per_step: dict[str, float] = Field(
        description="layer id -> seconds an optimisation step took in the newest run of that layer here; "
        "layers that have not run here are absent"
    )


class VisualizationRequest(BaseModel):
    """The body of ``POST /api/visualizations`` and the first WebSocket message."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"model": "synth-conv-fusion", "layer": "fusion.conv", "unit": 3, "settings": {"steps": 32}}]
        },
    )

    model: str = Field(min_length=1, max_length=64)
    layer: str = Field(min_length=1, max_length=256)
    unit: int = Field(ge=0, le=1_000_000)
    settings: VisualizationSettings = Field(default_factory=VisualizationSettings)


class VisualizationCreated(BaseModel):
    id: str
    status: Status
    share_url: str


class VisualizationResult(BaseModel):
    objective: float | None = Field(description="the unit's final objective value")
    steps: int
    streams: list[Stream] = Field(description="the inputs the layer depends on")
    media: dict[str, str] = Field(description="medium name -> URL")
    inputs: str = Field(description="URL of the inputs as .npz")
    seconds: float | None = Field(
        default=None, description="how long the optimisation took where it ran (absent for older results)"
    )


class Visualization(BaseModel):
    id: str
    status: Status
    request: dict[str, Any] = Field(description="model, layer, unit and settings with every default filled in")
    result: VisualizationResult | None = None
    detail: str | None = Field(default=None, description="why it failed")
    share_path: str = Field(description="the share link, relative to this server: /v/{id} with the request in its query")


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    detail: Any
