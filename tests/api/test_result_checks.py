"""Issue 15: a result that barely moves its unit says so."""

from __future__ import annotations

import numpy as np
from stlens.result_checks import MESSAGES, result_warnings

RNG = np.random.default_rng(0)
PATTERN = {
    "appearance": RNG.random((4, 8, 8, 3), dtype=np.float32),
    "motion": RNG.normal(0, 2, (4, 8, 8, 2)).astype(np.float32),
}


def test_a_unit_that_was_driven_has_no_warnings() -> None:
    assert result_warnings(2.5, 0.1, PATTERN) == []


def test_a_dead_unit_a_flat_clip_and_no_gain_are_named() -> None:
    grey = {"appearance": np.full((4, 8, 8, 3), 0.5, np.float32), "motion": np.full((4, 8, 8, 2), 0.3, np.float32)}
    warnings = result_warnings(0.0, 0.0, grey)  # VGG conv5_1 #0 on random weights: a grey square, objective 0.000
    assert warnings[0] == MESSAGES["dead"]
    assert "RGB clip and the flow hardly varies" in warnings[1]
    assert result_warnings(0.5, 0.5, PATTERN) == [MESSAGES["not_raised"]]
    assert result_warnings(float("nan"), None, PATTERN) == [MESSAGES["dead"]]
    # near zero against what the unit does on real clips: a twentieth of its strongest test clip
    assert result_warnings(0.2, 0.01, PATTERN, reach=0.01) == [MESSAGES["weak"]]
    assert result_warnings(0.2, 0.01, PATTERN, reach=0.5) == []
    almost_uniform = {"motion": PATTERN["motion"] * 0.001}
    assert "flow hardly varies" in result_warnings(0.3, 0.01, almost_uniform)[0]
