"""Accentuating a real clip: how each parameterisation keeps it, and what it adds.

A `fusion.conv` unit of the built-in conv-fusion model, started from test clip 37 (a squatting figure),
128 steps, under several parameterisations, phase step sizes and start weights. Prints the objective and
the mean |RGB change| from the clip, and writes docs/images/engine/accentuation.png (docs/engine.md).
Run: python bench/accentuation.py (about a minute).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

import stlens.engine.render as render
from stlens.analysis.synthset import example_clips
from stlens.engine import VisualizationSettings, visualize
from stlens.flow.coding import direction_coding
from stlens.media.frames import enlarge, strip, to_uint8
from stlens.models.builtin import builtin_entries
from stlens.models.registry import prepare

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "engine" / "accentuation.png"
CLIP, LAYER, UNIT = 37, "fusion.conv", 2
# (param, phase step in lr from a clip, start weight); the engine's own is ("spectrum", 1, 10)
RUNS = [("spectrum", 4.0, 1.0), ("spectrum", 1.0, 1.0), ("spectrum", 1.0, 10.0), ("fourier", 1.0, 1.0),
        ("fourier", 1.0, 10.0), ("pixel", 1.0, 1.0)]


def row(clip: dict[str, np.ndarray]) -> np.ndarray:
    rgb = strip(enlarge(to_uint8(clip["appearance"][::2]), 2))
    return np.concatenate([rgb, strip(enlarge(direction_coding(clip["motion"][::2]), 2))], 1)


def main() -> None:
    torch.set_num_threads(2)
    model = prepare(next(e for e in builtin_entries() if e.spec.id == "synth-conv-fusion"), torch.device("cpu"))
    clips = example_clips()
    start = {"appearance": clips.frames[CLIP].astype(np.float32) / 255, "motion": clips.flow[CLIP].astype(np.float32)}
    rows = [row(start)]
    for param, phase_step, weight in RUNS:
        render.PHASE_LR_FROM_CLIP, engine_step = phase_step, render.PHASE_LR_FROM_CLIP
        try:
            result = visualize(model, LAYER, UNIT, VisualizationSettings(param=param, weights={"start": weight}), start=start)
        finally:
            render.PHASE_LR_FROM_CLIP = engine_step
        clip = {s: x[0] for s, x in result.inputs.items()}
        change = float(np.abs(clip["appearance"] - start["appearance"]).mean())
        print(f"{param:8s} phase step {phase_step:g} lr, weight {weight:g}: objective {result.objective[0]:.2f}, "
              f"mean |RGB change| {change:.3f}")
        rows.append(row(clip))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT), cv2.cvtColor(np.concatenate(rows), cv2.COLOR_RGB2BGR))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
