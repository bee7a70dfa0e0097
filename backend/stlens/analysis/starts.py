"""Where a visualisation may start: a real clip, so that the result answers "what in this clip drives
this unit" (feature accentuation, Hamblin et al. 2024) instead of "what drives it" from noise.

A start is part of the request (so of its content id and share link): a dataset example of the synthetic
world (``{"example": 17}``: test clip 17, as ``GET /api/models/{model}/layers/{layer}/units/{unit}/examples``
numbers them), a sample clip (``{"sample": "synth-walk"}``, as ``GET /api/explain/samples`` names them), or
a clip sent to ``POST /api/explain`` (``{"upload": id}``, the ``clip`` id its answer gives). The clip's own
flow is the motion stream's start, by the model's flow estimator.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from ..models.registry import LoadedModel
from ..models.spec import Stream
from .clip import model_clip_inputs
from .samples import sample_frames, sample_names
from .synthset import example_clips
from .unit_examples import examples_available

CLIP_ID_LENGTH = 20
CLIP_ID_PATTERN = rf"^[0-9a-f]{{{CLIP_ID_LENGTH}}}$"
MAX_CLIP_BYTES = 64 * 2**20


class ExampleStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # bounded as an id, not by the examples: start_clips says how many there are
    example: Annotated[int, Field(strict=True, ge=0, le=2**31 - 1, description="a dataset example: test clip index")]


class SampleStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample: str = Field(max_length=64, description="a name from GET /api/explain/samples")


def _clip_id(value: str) -> str:
    if not re.fullmatch(CLIP_ID_PATTERN, value):  # said as what it is, not as the pattern
        raise PydanticCustomError(
            "clip_id", f"an upload is the clip id a POST /api/explain answer gave ({CLIP_ID_LENGTH} hex digits)"
        )
    return value


class UploadStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload: Annotated[str, Field(max_length=CLIP_ID_LENGTH * 4, json_schema_extra={"pattern": CLIP_ID_PATTERN},
                                 description="the clip id of a POST /api/explain answer"), AfterValidator(_clip_id)]


START_KINDS: dict[str, type[BaseModel]] = {"example": ExampleStart, "sample": SampleStart, "upload": UploadStart}


def _start_kind(value: Any) -> str | None:
    """Which kind of start ``value`` is, by its key (or its class), so that an error names only that kind."""
    if isinstance(value, dict):
        return next((kind for kind in START_KINDS if kind in value), None)
    return next((kind for kind, cls in START_KINDS.items() if isinstance(value, cls)), None)


Start = Annotated[
    Annotated[ExampleStart, Tag("example")]
    | Annotated[SampleStart, Tag("sample")]
    | Annotated[UploadStart, Tag("upload")],
    Discriminator(
        _start_kind,
        custom_error_type="start_kind",
        custom_error_message='a start is {"example": N}, {"sample": "name"} or {"upload": "clip id"}',
    ),
]
StartClips = dict[Stream, np.ndarray]  # display space, (T, H, W, C) float32 per stream


class StartError(ValueError):
    """A start clip that does not fit the model (its kind, shape or streams)."""


class UnknownStart(StartError):
    """A start that names no clip this server has."""


def start_clips(model: LoadedModel, start: Start, uploads: Callable[[str], StartClips | None]) -> StartClips:
    """The display-space clips ``start`` names, for ``model`` (``uploads`` looks a clip id up)."""
    if isinstance(start, ExampleStart):
        if not examples_available(model.spec):
            raise StartError(f"model {model.spec.id!r} has no dataset examples: start from a sample or an upload")
        clips = example_clips()
        if start.example >= len(clips):
            raise UnknownStart(f"there are {len(clips)} dataset examples (0..{len(clips) - 1}), not {start.example}")
        found: StartClips = {
            "appearance": clips.frames[start.example].astype(np.float32) / 255,
            "motion": clips.flow[start.example].astype(np.float32),
        }
    elif isinstance(start, SampleStart):
        if start.sample not in sample_names():
            raise UnknownStart(f"unknown sample {start.sample!r}; GET /api/explain/samples lists them")
        found = model_clip_inputs(sample_frames(start.sample), model.spec).streams
    else:
        clip = uploads(start.upload)
        if clip is None:
            raise UnknownStart(f"no uploaded clip {start.upload!r} is kept here; send the video to /api/explain again")
        found = clip
    streams = {s: found[s] for s in model.spec.streams if s in found}
    for stream, array in streams.items():
        spec = model.spec.inputs[stream]
        expected = (spec.frames, spec.height, spec.width, spec.channels)
        if array.shape != expected:
            raise StartError(
                f"the start clip's {stream} stream is {array.shape}; model {model.spec.id!r} takes {expected}"
            )
    return streams


def clip_id(clip: StartClips) -> str:
    """The content id of a clip: a hash of its streams' shapes and values."""
    digest = hashlib.sha256()
    for stream in sorted(clip):
        array = np.ascontiguousarray(clip[stream], dtype=np.float32)
        digest.update(f"{stream}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:CLIP_ID_LENGTH]


def clip_npz(clip: StartClips) -> bytes:
    """A clip as a compressed ``.npz`` (float16: what it is kept as between its upload and its use)."""
    out = io.BytesIO()
    arrays: dict[str, Any] = {stream: np.asarray(x, np.float16) for stream, x in clip.items()}
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def clip_of_npz(data: bytes) -> StartClips:
    """The clip :func:`clip_npz` made (no pickles; ValueError for anything else)."""
    if len(data) > MAX_CLIP_BYTES:
        raise ValueError("the stored clip is too large")
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        clip: StartClips = {}
        for stream, channels in (("appearance", 3), ("motion", 2)):
            if stream in stored:
                array = stored[stream].astype(np.float32)
                if array.ndim != 4 or array.shape[-1] != channels or not np.isfinite(array).all():
                    raise ValueError(f"the stored clip's {stream} stream is malformed")
                clip[stream] = array  # type: ignore[index]
    return clip
