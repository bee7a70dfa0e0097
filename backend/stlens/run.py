"""One visualisation run: how its optimisation starts, its progress message, how it finishes.

The stepper (``stlens.jobs.stepper``) steps the optimisation, the same in a server and in a
``stlens worker`` process; progress goes out as the WebSocket ``progress`` message, JSON-encoded
once where the run is, for every viewer; a finished one is measured (faithfulness) and encoded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .analysis.faithfulness import Faithfulness, assess
from .engine.eigenclips import eigenclips_ready, eigenclips_stored, warm_eigenclips
from .engine.render import Optimisation, Visualization
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


# computing the built-in models' eigenclips took 26 s on the idle 2-core CPU, reading them 0.12 s (docs/engine.md)
EIGENCLIPS_COMPUTE_S = 30.0
EIGENCLIPS_READ_S = 1.0


@dataclass(frozen=True)
class Preparation:
    """Work a run needs done once before it can start that takes too long for the stepper's thread,
    where it would hold up every other run: reading or computing its model's eigenclips. Runs with
    the same ``key`` wait for the same one; ``reason`` and ``estimate_s`` are for their viewers."""

    key: tuple[str, ...]
    reason: str
    estimate_s: float
    prepare: Callable[[], None]


def preparation(resolved: ResolvedRequest) -> Preparation | None:
    """What must be done before ``resolved`` can start, if anything (None: it starts at once)."""
    model = resolved.model
    if resolved.settings.param != "pca" or eigenclips_ready(model):
        return None
    if eigenclips_stored(model):
        reason, estimate_s = "reading this model's eigenclips", EIGENCLIPS_READ_S
    else:
        reason = "computing this model's eigenclips from its training clips (once on this machine)"
        estimate_s = EIGENCLIPS_COMPUTE_S
    key = ("eigenclips", model.spec.id, model.weights_hash)
    return Preparation(key, reason, estimate_s, lambda: warm_eigenclips(model))


def start_optimisation(resolved: ResolvedRequest) -> Optimisation:
    """The request's optimisation, before its first step (the stepper runs it)."""
    return Optimisation(resolved.model, resolved.layer.id, resolved.unit, resolved.settings, resolved.start_clips)


def finish_run(
    resolved: ResolvedRequest, optimised: Visualization, seconds: float, start_objective: float | None
) -> RunOutput:
    """A finished optimisation's result, arrays and media. ``seconds``: what its optimisation cost
    (its share of the steps it was in, the pace its record keeps); ``start_objective``: the unit's
    objective after the first step (the result checks ask whether it rose)."""
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


def progress_message(step: int, steps: int, objective: float, inputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The WebSocket ``progress`` message: previews are strips of the T frames ({stream: (T, H, W, C)})."""
    frames, height, width = next(iter(inputs.values())).shape[:3]
    return {
        "type": "progress",
        "step": step,
        "steps": steps,
        "objective": objective,
        "previews": preview_strips(inputs),
        "frames": frames,
        "height": height,
        "width": width,
    }


def queued_message(position: int, eta_s: float, reason: str | None = None) -> str:
    """The WebSocket ``queued`` message, JSON-encoded: ``position`` visualisations hold it back (those
    waiting ahead of it beyond the places free now; 0: it starts next), and it starts in about ``eta_s``
    seconds; ``reason``, when it waits for a :class:`Preparation` rather than for other runs."""
    message: dict[str, Any] = {"type": "queued", "position": position, "eta_s": round(eta_s, 1)}
    if reason is not None:
        message["reason"] = reason
    return json.dumps(message)
