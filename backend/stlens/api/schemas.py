"""The JSON shapes of the HTTP and WebSocket API (the CONTRACT's, plus a few additions)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..analysis.faithfulness import Faithfulness
from ..atlas import MAX_ATLAS_UNITS, Atlas, AtlasStatus, AtlasUnit
from ..clients import Client
from ..engine.settings import VisualizationSettings
from ..jobs.core import Status
from ..models.spec import FlowMethod, LayerStream, Stream
from ..record import Result
from ..visualizations import VisualizationState
from .sharelink import share_path


def media_url(visualization_id: str, name: str) -> str:
    return f"/api/visualizations/{visualization_id}/media/{name}"


def inputs_url(visualization_id: str) -> str:
    return f"/api/visualizations/{visualization_id}/inputs.npz"


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
    random_weights: bool = Field(default=False, description="never trained: its units and classes mean nothing learnt")
    flow: FlowMethod = Field(default="dis", description="the optical flow its motion stream was trained on")


class InputShape(BaseModel):
    channels: int
    frames: int
    height: int
    width: int


class LayerDefaults(BaseModel):
    """What an unset ``param`` and ``freedom`` become at a layer (the server fills them in by layer)."""

    param: Literal["pixel", "fourier", "spectrum", "pca"]
    freedom: float


class Layer(BaseModel):
    id: str
    stream: LayerStream
    units: int
    shape: list[int]
    defaults: LayerDefaults = Field(description="an unset param and freedom at this layer, without a start clip")
    start_defaults: LayerDefaults = Field(description="the same with a start clip")


class ModelDetail(ModelSummary):
    inputs: dict[Stream, InputShape]
    labels: list[str]
    layers: list[Layer] = Field(description="in forward order; the class logits last")
    dataset_examples: bool = Field(description="whether GET /api/examples has dataset examples for its units")
    card: dict[str, Any] | None = Field(
        default=None, description="how its weights were made (training command, accuracy), where known"
    )


class StepEstimate(BaseModel):
    seconds_per_step: float
    source: Literal["measured", "estimated"] = Field(
        description="measured: the newest run of the layer here; estimated: its operations against this machine's "
        "measured speed (before its first run here)"
    )


class ModelPace(BaseModel):
    model: str
    seconds_per_step: dict[str, float] = Field(
        description="layer id -> seconds an optimisation step took in the newest run of that layer here; "
        "layers that have not run here are absent"
    )
    layers: dict[str, StepEstimate] = Field(
        default_factory=dict, description="every layer: seconds a step takes here, measured or estimated"
    )


class EstimateRequest(BaseModel):
    """The body of ``POST /api/estimates``: some work before it starts."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=64)
    layer: str = Field(min_length=1, max_length=256)
    settings: VisualizationSettings = Field(default_factory=VisualizationSettings)
    runs: int = Field(default=1, ge=1, le=MAX_ATLAS_UNITS, description="visualisations of it (a sweep's columns)")
    atlas: bool = Field(default=False, description="the layer's atlas: one run a unit (its first units)")
    unit: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        strict=True,
        description="one run of this unit (from noise): a result stored here already costs nothing",
    )


class WorkEstimateState(BaseModel):
    seconds: float = Field(description="about how long it takes here, one run after another (an upper bound)")
    runs: int
    seconds_per_step: float
    source: Literal["measured", "estimated"]
    heavy: bool = Field(description="over heavy_s: the page says how long and asks before it starts")
    heavy_s: float
    stored: int = Field(
        default=0, description="of the runs, those stored here already (a unit's, an atlas's): they open at once"
    )


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
    warnings: list[str] = Field(
        default_factory=list, description="why the result may show nothing (a dead unit, a flat clip), a sentence each"
    )
    faithfulness: Faithfulness | None = Field(
        default=None,
        description="how far to trust the picture, measured after the run: reach against the test clips, what "
        "independent judge models see in a class visualisation, path similarity, natural statistics "
        "(docs/faithfulness.md); absent for older results",
    )

    @classmethod
    def of(cls, visualization_id: str, result: Result) -> VisualizationResult:
        return cls(
            objective=result.objective,
            steps=result.steps,
            streams=result.streams,
            media={name: media_url(visualization_id, name) for name in result.media},
            inputs=inputs_url(visualization_id),
            seconds=result.seconds,
            warnings=result.warnings,
            faithfulness=result.faithfulness,
        )


class Cancellation(BaseModel):
    """The answer to ``DELETE /api/visualizations/{id}``."""

    id: str
    stopped: bool = Field(description="true: it stops before its next step; false: live viewers of other "
                          "clients still watch it, and it goes on for them")


class Visualization(BaseModel):
    id: str
    status: Status
    request: dict[str, Any] = Field(description="model, layer, unit and settings with every default filled in")
    result: VisualizationResult | None = None
    detail: str | None = Field(default=None, description="why it failed")
    share_path: str = Field(
        description="the share link, relative to this server: /v/{id} with the request in its query"
    )

    @classmethod
    def of(cls, state: VisualizationState) -> Visualization:
        return cls(
            id=state.id,
            status=state.status,
            request=state.request,
            result=None if state.result is None else VisualizationResult.of(state.id, state.result),
            detail=state.detail,
            share_path=share_path(state.id, state.request),
        )


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    detail: Any


class AtlasRequest(BaseModel):
    """The body of ``POST /api/atlas`` and the first message on ``/api/atlas/live``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"model": "synth-conv-fusion", "layer": "fusion.conv", "settings": {"steps": 32}}]
        },
    )

    model: str = Field(min_length=1, max_length=64)
    layer: str = Field(min_length=1, max_length=256)
    settings: VisualizationSettings = Field(default_factory=VisualizationSettings)
    run_on: bool = Field(
        default=False,
        description="on the live socket: go on when nobody watches it (else it stops once its last viewer has "
        "been gone a few seconds); an atlas started over HTTP always runs on",
    )


class AtlasUnitState(BaseModel):
    unit: int
    id: str = Field(description="the unit's visualisation id, as POST /api/visualizations gives it")
    status: Status = Field(description="failed, with a detail that says so, where the atlas was cancelled first")
    detail: str | None = Field(default=None, description="why it failed")
    media: dict[str, str] | None = Field(default=None, description="medium name -> URL, once done")
    warnings: list[str] = Field(default_factory=list, description="the result's warnings, once done")
    position: int | None = Field(
        default=None,
        description="while queued and submitted: the visualisations ahead of it (0: it starts next), when known",
    )

    @classmethod
    def of(cls, unit: AtlasUnit) -> AtlasUnitState:
        media = {name: media_url(unit.id, name) for name in unit.media()} if unit.status == "done" else None
        return cls(
            unit=unit.unit,
            id=unit.id,
            status=unit.status,
            detail=unit.detail,
            media=media,
            warnings=unit.warnings,
            position=unit.position,
        )


class AtlasState(BaseModel):
    id: str
    model: str
    layer: str
    status: AtlasStatus = Field(description="done once every unit is done or failed (a cancelled one too)")
    units_total: int = Field(description=f"the layer's units; the atlas holds the first {MAX_ATLAS_UNITS} at most")
    units: list[AtlasUnitState]
    eta_s: float | None = Field(default=None, description="while running: about how long the units left take")
    run_on: bool = Field(description="it goes on when nobody watches it")
    cancelled: bool = Field(description="stopped before every unit was computed")
    yours: bool = Field(default=False, description="the client asking started it: only it may cancel it")

    @classmethod
    def of(cls, atlas: Atlas, client: Client) -> AtlasState:
        """The atlas as ``client`` sees it."""
        first = atlas.units[0].resolved
        return cls(
            id=atlas.id,
            model=first.model.spec.id,
            layer=first.layer.id,
            status=atlas.status,
            units_total=atlas.units_total,
            units=[AtlasUnitState.of(u) for u in atlas.units],
            eta_s=atlas.eta_s,
            run_on=atlas.run_on,
            cancelled=atlas.cancelled,
            yours=atlas.client.key == client.key,
        )
