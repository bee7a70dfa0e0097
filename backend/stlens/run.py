"""One visualisation run, blocking: optimise, then encode the arrays and media.

The same in a server's job thread and in a ``stlens worker`` process. Progress goes out as the
WebSocket ``progress`` message, JSON-encoded once where the run is, for every viewer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .analysis.faithfulness import Faithfulness, assess
from .engine import Progress, visualize
from .media.outputs import inputs_npz, preview_strips, render_media
from .record import Result
from .request import ResolvedRequest
from .result_checks import result_warnings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutput:
    """A finished run: its result (for the record), the inputs as ``.npz`` and every medium by name."""

    result: Result
    npz: bytes
    media: dict[str, bytes]


def run_visualization(
    resolved: ResolvedRequest,
    cancel: threading.Event,
    on_progress_message: Callable[[str], object],
    preview_interval_s: float,
) -> RunOutput:
    """Optimise one request and encode it. Progress messages come at most every
    ``preview_interval_s`` (and at the last step); raises ``engine.Cancelled`` once ``cancel`` is set."""
    last_preview = 0.0
    start_objective: float | None = None  # after the first step: did the run raise the unit above it?

    def on_progress(progress: Progress) -> None:
        nonlocal last_preview, start_objective
        if progress.step == 1:
            start_objective = progress.objective
        now = time.monotonic()
        if progress.step < progress.steps and now - last_preview < preview_interval_s:
            return
        last_preview = now
        on_progress_message(json.dumps(progress_message(progress)))

    started = time.perf_counter()
    optimised = visualize(
        resolved.model,
        resolved.layer.id,
        [resolved.unit],
        resolved.settings,
        progress=on_progress,
        progress_every=1,
        cancel=cancel,
        start=resolved.start_clips,
    )
    seconds = time.perf_counter() - started
    inputs = {stream: np.asarray(x[0], dtype=np.float32) for stream, x in optimised.inputs.items()}
    alpha = {stream: np.asarray(x[0], dtype=np.float32) for stream, x in optimised.alpha.items()}
    objective = optimised.objective[0]
    faithfulness = measure_faithfulness(resolved, inputs)
    reach = faithfulness.reach.ratio if faithfulness is not None and faithfulness.reach is not None else None
    warnings = result_warnings(objective, start_objective, inputs, reach)
    result = Result.of_run(objective, optimised.steps, list(inputs), seconds, warnings, faithfulness)
    return RunOutput(result, inputs_npz(inputs, alpha), render_media(inputs, alpha))


def measure_faithfulness(resolved: ResolvedRequest, inputs: dict[str, np.ndarray]) -> Faithfulness | None:
    """The finished clip's faithfulness (analysis.faithfulness); None, logged, if it cannot be measured:
    a result is worth keeping without it."""
    try:
        return assess(resolved.model, resolved.layer.id, resolved.unit, resolved.settings, inputs)
    except Exception:
        log.exception("the faithfulness of %s could not be measured", resolved.id)
        return None


def progress_message(progress: Progress) -> dict[str, Any]:
    """The WebSocket ``progress`` message: previews are strips of the T frames."""
    inputs = {stream: np.asarray(x) for stream, x in progress.inputs.items()}
    frames, height, width = next(iter(inputs.values())).shape[:3]
    return {
        "type": "progress",
        "step": progress.step,
        "steps": progress.steps,
        "objective": progress.objective,
        "previews": preview_strips(inputs),
        "frames": frames,
        "height": height,
        "width": width,
    }
