"""Whether a finished visualisation shows anything: the warnings of its stored result.

A unit that nothing drives (a dead unit, or one the layer's nonlinearity keeps at zero) still gives a
"result": a grey square, objective 0.000. The page must not present that as a success, so each result
carries the reasons it may show nothing (``Result.warnings``), each one sentence for the person
looking at it:

- ``dead``: the final objective is all but zero (below ``DEAD_OBJECTIVE`` in absolute value);
- ``not_raised``: the optimisation did not raise the objective above where it started (by at least
  ``MIN_GAIN`` of the start's size), so the picture is not what drives the unit;
- ``flat``: the optimised clip hardly varies (pixel standard deviation below ``FLAT_RGB`` for RGB in
  [0, 1], below ``FLAT_FLOW_PX`` pixels for flow): there is no pattern to see;
- ``weak``: the picture drives the unit less than ``WEAK_REACH`` of what the strongest real test clip
  does (its faithfulness reach, where the model has test clips): near zero against the unit's activation
  on real clips, so it shows little of what the unit responds to.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

DEAD_OBJECTIVE = 1e-3
MIN_GAIN = 0.05  # a run with the default settings raises its unit several times over
FLAT_RGB = 0.01
FLAT_FLOW_PX = 0.02
WEAK_REACH = 0.05

MESSAGES = {
    "dead": "This unit hardly responds to anything here (objective near zero): a dead unit?",
    "not_raised": (
        "The optimisation did not raise this unit's response above where it started: the picture is not what drives it."
    ),
    "flat": "The optimised {streams} hardly varies: there is no pattern to see.",
    "weak": (
        "This picture drives the unit less than a twentieth as hard as its strongest test clip does:"
        " it shows little of what the unit responds to."
    ),
}


def result_warnings(
    objective: float,
    start_objective: float | None,
    inputs: Mapping[str, np.ndarray],
    reach: float | None = None,
) -> list[str]:
    """The warnings of one result: ``inputs`` the optimised clips in display space ((T, H, W, C) a stream),
    ``start_objective`` the objective after the first step (None where it was not seen), ``reach`` the
    objective over the strongest test clip's (None where the model has no test clips)."""
    warnings = []
    if not np.isfinite(objective) or abs(objective) < DEAD_OBJECTIVE:
        warnings.append(MESSAGES["dead"])
    elif reach is not None and reach < WEAK_REACH:
        warnings.append(MESSAGES["weak"])
    elif start_objective is not None:
        gain = objective - start_objective
        if gain <= MIN_GAIN * max(abs(start_objective), DEAD_OBJECTIVE):
            warnings.append(MESSAGES["not_raised"])
    flat = [
        stream
        for stream, clip in inputs.items()
        if float(np.std(clip, axis=(0, 1, 2)).max()) < (FLAT_FLOW_PX if stream == "motion" else FLAT_RGB)
    ]
    if flat:
        names = {"appearance": "RGB clip", "motion": "flow"}
        warnings.append(MESSAGES["flat"].format(streams=" and the ".join(names.get(s, s) for s in flat)))
    return warnings
