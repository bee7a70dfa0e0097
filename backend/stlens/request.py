"""Visualisation requests: what a client asks for, checked against its model, named by its content.

A request is resolved (the model loaded, the layer and unit checked, the settings' defaults filled
in) into a content id: a hash of everything that determines its result, so the same request gets
the same id everywhere. What is wrong with a request is a domain error (:class:`InvalidRequest`
and its kinds); the web layer decides how to answer it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .analysis.starts import Start, StartClips, StartError, UnknownStart, start_clips
from .engine.eigenclips import has_eigenclips
from .engine.settings import VisualizationSettings
from .models.registry import LoadedModel, ModelRegistry
from .models.spec import LayerInfo

log = logging.getLogger(__name__)

ID_LENGTH = 20
ID_PATTERN = rf"^[0-9a-f]{{{ID_LENGTH}}}$"


class InvalidRequest(ValueError):
    """A request that cannot be served as asked; ``detail`` says why, and how to fix it."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class NotFound(InvalidRequest):
    """The request names a model, a layer or a visualisation that this server does not know."""


class ModelUnavailable(InvalidRequest):
    """A known model that cannot be loaded here (a broken checkpoint or factory): the server's fault."""


class NotYours(InvalidRequest):
    """Work that another client started: only its own client may cancel it."""


class VisualizationRequest(BaseModel):
    """A visualisation as asked for: the body of ``POST /api/visualizations`` and the first
    WebSocket message, and (settings filled in) the request stored with its result and queued
    for a worker. A field added later must be optional, so that stored requests still load."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"model": "synth-conv-fusion", "layer": "fusion.conv", "unit": 3, "settings": {"steps": 32}}]
        },
    )

    model: str = Field(min_length=1, max_length=64)
    layer: str = Field(min_length=1, max_length=256)
    unit: int = Field(ge=0, le=1_000_000, strict=True)  # 3, not true, "3" or 3.0
    settings: VisualizationSettings = Field(default_factory=VisualizationSettings)
    start: Start | None = Field(
        default=None,
        description="start from a real clip instead of noise (feature accentuation): {'example': test clip}, "
        "{'sample': name} or {'upload': the clip id of a POST /api/explain answer}",
    )

    def as_json(self) -> dict[str, Any]:
        """The request as stored, queued, hashed and shown: every setting filled in, and an optional
        field that is not set left out, so a request keeps its form and its id when one is added."""
        return {key: value for key, value in self.model_dump(mode="json").items() if value is not None}


def short_hash(text: str) -> str:
    """The ``ID_LENGTH`` hex digits that name content: visualisations and atlases."""
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]


def content_id(request: VisualizationRequest, weights_hash: str) -> str:
    """The id of a visualisation: a hash of everything that determines its result (the request,
    settings filled in, and the model's weights)."""
    payload = {**request.as_json(), "weights": weights_hash}
    return short_hash(json.dumps(payload, sort_keys=True, separators=(",", ":")))


@dataclass(frozen=True)
class ResolvedRequest:
    """A checked request, with its id, its loaded model and its layer."""

    id: str
    request: VisualizationRequest
    model: LoadedModel
    layer: LayerInfo
    start_clips: StartClips | None = None  # the clips the request's start names, display space

    @property
    def unit(self) -> int:
        return self.request.unit

    @property
    def settings(self) -> VisualizationSettings:
        return self.request.settings

    def as_json(self) -> dict[str, Any]:
        return self.request.as_json()


def load_model(registry: ModelRegistry, model: str) -> LoadedModel:
    """The loaded model (blocking: call from a thread); NotFound or ModelUnavailable."""
    if model not in registry:
        raise NotFound(f"unknown model {model!r}; GET /api/models lists the models")
    try:
        return registry.get(model)
    except Exception as exc:  # a broken checkpoint or factory is the server's problem, reported clearly
        log.exception("model %s could not be loaded", model)
        raise ModelUnavailable(f"model {model!r} could not be loaded: {type(exc).__name__}: {exc}") from exc


def settings_for(
    model: LoadedModel, layer: str, settings: VisualizationSettings, start: bool = False
) -> VisualizationSettings:
    """The settings as this model runs them at ``layer`` (``start``: from a start clip), filled in, so the
    content id covers what runs: an unset ``param`` is the layer's (``pca`` at the class logits of a
    model with natural clips), or ``fourier`` for a model without natural spectra; an unset ``freedom``
    is the layer's. InvalidRequest for a ``param`` the model or the start cannot run."""
    if settings.param in ("spectrum", "pca") and model.spectra is None:
        raise InvalidRequest(
            f"model {model.spec.id!r} declares no natural spectra, which param {settings.param!r} needs;"
            " use 'fourier' or 'pixel'"
        )
    if settings.param == "pca" and model.natural_clips is None:
        raise InvalidRequest(
            f"model {model.spec.id!r} declares no natural clips, which param 'pca' needs; use 'spectrum'"
        )
    if settings.param == "pca" and start:
        raise InvalidRequest("param 'pca' cannot start from a clip (it does not lie in the eigenclips' span);"
                             " use 'spectrum'")
    if settings.param is None and model.spectra is None:
        settings = settings.model_copy(update={"param": "fourier"})
    return settings.for_layer(layer, has_eigenclips(model), start)


def resolve(
    registry: ModelRegistry, request: VisualizationRequest, upload: StartClips | None = None
) -> ResolvedRequest:
    """Check a request against its model (loading it: call from a thread), or raise InvalidRequest.
    ``upload``: the clip an ``{"upload": id}`` start names, as the caller found it (None: not kept)."""
    loaded = load_model(registry, request.model)
    try:
        layer = loaded.layer(request.layer)
    except KeyError:
        raise NotFound(
            f"model {request.model!r} has no layer {request.layer!r}; GET /api/models/{request.model} lists them"
        ) from None
    if not 0 <= request.unit < layer.units:
        raise InvalidRequest(
            f"unit {request.unit} is out of range: layer {request.layer!r} has units 0..{layer.units - 1}"
        )
    settings = settings_for(loaded, layer.id, request.settings, request.start is not None)
    if settings is not request.settings:
        request = request.model_copy(update={"settings": settings})
    clips = None
    if request.start is not None:
        try:
            clips = start_clips(loaded, request.start, lambda _clip_id: upload)
        except UnknownStart as exc:
            raise NotFound(str(exc)) from None
        except StartError as exc:
            raise InvalidRequest(str(exc)) from None
    return ResolvedRequest(
        id=content_id(request, loaded.weights_hash), request=request, model=loaded, layer=layer, start_clips=clips
    )
