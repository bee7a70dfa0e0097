"""Small visualisation requests for tests: few steps, so each job takes a fraction of a second."""

from __future__ import annotations

from typing import Any

MODEL = "synth-conv-fusion"


def request(
    layer: str = "fusion.conv", unit: int = 3, steps: int = 6, model: str = MODEL, **settings: Any
) -> dict[str, Any]:
    return {"model": model, "layer": layer, "unit": unit, "settings": {"steps": steps, **settings}}
