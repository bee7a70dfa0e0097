"""Explain a video: ``POST /api/explain`` with an upload or a sample name."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, StreamingResponse

from ...analysis import video
from ...analysis.clip import MAX_STRIDE, MIN_STRIDE, ClipInputs, model_clip_inputs
from ...analysis.explain import Explanation, explain
from ...analysis.samples import sample_frames, sample_names
from ...analysis.starts import clip_id, clip_npz
from ...analysis.units import MAX_TOP_UNITS, default_layer
from ...flow.estimate import Progress
from ...models.registry import LoadedModel
from ...request import load_model
from ..deps import ServicesDep

router = APIRouter(tags=["explain"])

STREAM_TYPE = "application/x-ndjson"
# the upload body may be this large (the file plus the form's other fields); app.py raises its body limit for it
UPLOAD_BODY_LIMIT = video.MAX_BYTES + 64 * 1024


@router.get("/explain", include_in_schema=False)
async def explain_page(services: ServicesDep) -> FileResponse:
    return FileResponse(services.settings.frontend_dir / "explain.html", media_type="text/html")


@router.get("/api/explain/samples", response_model=list[str])
async def list_samples() -> list[str]:
    """Names of the sample clips that ``POST /api/explain`` accepts as ``sample``."""
    return sample_names()


@router.post(
    "/api/explain",
    response_model=Explanation,
    responses={
        200: {
            "content": {STREAM_TYPE: {}},
            "description": f"the explanation; with Accept: {STREAM_TYPE}, JSON lines: progress messages "
            '{"type": "progress", "stage": "flow", "done", "total"} while the flow is estimated, then '
            '{"type": "done", "explanation": {...}} or {"type": "error", "status", "detail"}',
        },
        400: {"description": "not a video we accept (also: too many frames x pixels to decode)"},
        404: {"description": "unknown model or sample"},
        413: {"description": "upload too large"},
        422: {"description": "bad field"},
        503: {"description": "too many uploads are being decoded or waiting; retry after Retry-After seconds"},
    },
)
async def explain_video(
    request: Request,
    services: ServicesDep,
    model: Annotated[str, Form(max_length=64)],
    layer: Annotated[
        str | None, Form(max_length=256, description="default: the deepest fusion layer before the logits")
    ] = None,
    target: Annotated[int | None, Form(ge=0, description="class index; default: the top fused class")] = None,
    units: Annotated[int, Form(ge=1, le=MAX_TOP_UNITS)] = 8,
    stride: Annotated[
        float, Form(ge=MIN_STRIDE, le=MAX_STRIDE, description="source frames between sampled frames")
    ] = 1.0,
    sample: Annotated[str | None, Form(max_length=64, description="a name from GET /api/explain/samples")] = None,
    file: UploadFile | None = None,
) -> Explanation | StreamingResponse:
    """Decode the video (MP4, WebM, AVI or GIF, by content), take a clip from its middle, compute flow with
    the estimator the model was trained on (``flow``: TV-L1 takes about a second a frame, so ask for
    ``Accept: application/x-ndjson`` to hear its progress), and return the prediction, a space-time Grad-CAM
    per stream, the top units and whether the clip looks like the model's training data."""
    if (file is None) == (sample is None):
        raise HTTPException(422, "send exactly one of 'file' (an upload) and 'sample' (a sample name)")
    loaded = await asyncio.to_thread(load_model, services.registry, model)
    if layer is None:
        layer = default_layer(loaded)
    try:
        loaded.layer(layer)
    except KeyError:
        raise HTTPException(422, f"model {model!r} has no layer {layer!r}") from None
    if target is not None and target >= loaded.spec.num_classes:
        raise HTTPException(422, f"target must be below {loaded.spec.num_classes}")
    if file is not None:
        size = min(video.MAX_BYTES if file.size is None else file.size, video.MAX_BYTES + 1)
        try:
            frames = (await services.decoders.decode(size, lambda: file.read(video.MAX_BYTES + 1))).frames
        except video.DecoderBusy as exc:
            raise HTTPException(503, exc.detail, headers={"Retry-After": str(exc.retry_after_s)}) from None
        except video.VideoError as exc:
            raise HTTPException(413 if size > video.MAX_BYTES else 400, str(exc)) from None
    else:
        assert sample is not None  # exactly one of the two, checked above
        try:
            frames = await asyncio.to_thread(sample_frames, sample)
        except KeyError:
            raise HTTPException(404, f"unknown sample {sample!r}; GET /api/explain/samples lists them") from None
    run = partial(_explain_frames, services.explaining, loaded, frames, stride, layer, target, units)

    async def keep_upload(explanation: Explanation, clip: ClipInputs) -> Explanation:
        """An uploaded clip is kept, so that a visualisation can start from it (a sample has its name)."""
        if file is not None:
            explanation.clip_id = clip_id(clip.streams)
            await services.cache.put_clip(explanation.clip_id, clip_npz(clip.streams))
        return explanation

    if STREAM_TYPE in request.headers.get("accept", ""):
        return StreamingResponse(_progress_lines(run, keep_upload), media_type=STREAM_TYPE)
    try:
        explained = await asyncio.to_thread(run, None)
    except ValueError as exc:  # e.g. a model without a space-time layer in a stream
        raise HTTPException(422, f"this model cannot be explained: {exc}") from None
    return await keep_upload(*explained)


async def _progress_lines(
    run: Callable[[Progress | None], tuple[Explanation, ClipInputs]],
    finish: Callable[[Explanation, ClipInputs], Awaitable[Explanation]],
) -> AsyncIterator[str]:
    """The explanation as JSON lines: the flow's progress while it is estimated, then the result."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def progress(done: int, total: int) -> None:
        message = {"type": "progress", "stage": "flow", "done": done, "total": total}
        loop.call_soon_threadsafe(lines.put_nowait, json.dumps(message) + "\n")

    task = asyncio.create_task(asyncio.to_thread(run, progress))
    while not task.done() or not lines.empty():
        getter = asyncio.ensure_future(lines.get())
        await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            yield getter.result()
        else:
            getter.cancel()
    try:
        explanation = await finish(*task.result())
        final: dict[str, object] = {"type": "done", "explanation": explanation.model_dump(mode="json")}
    except ValueError as exc:
        final = {"type": "error", "status": 422, "detail": f"this model cannot be explained: {exc}"}
    yield json.dumps(final) + "\n"


def _explain_frames(
    explaining: threading.Lock,
    loaded: LoadedModel,
    frames: np.ndarray,
    stride: float,
    layer: str,
    target: int | None,
    units: int,
    progress: Progress | None,
) -> tuple[Explanation, ClipInputs]:
    """One explanation at a time (``explaining``): each takes the CPU. The motion input's flow is the
    model's own estimator's, kept per clip; ``progress`` hears of each field it estimates. Returns the
    clip it explained too."""
    with explaining:
        clip = model_clip_inputs(frames, loaded.spec, stride, progress)
        return explain(loaded, clip, layer, target, units), clip
