"""Accentuating a real clip: how each parameterisation keeps it, and what it adds.

1. A `fusion.conv` unit of the built-in conv-fusion model, started from test clip 37 (a squatting
   figure), 128 steps, under several parameterisations, phase step sizes and start weights: prints the
   objective and the mean |RGB change| from the clip, and writes docs/images/engine/accentuation.png.
2. The start weight under the default (`spectrum`), for both streams: from test clip 37 and, where
   ../shared is here, the middle of the real video `bikes.mp4` (as an upload to /explain gives it), a
   `fusion.conv` and a `fusion.fc6` unit: the objective from the clip's to the result's, the mean |RGB
   change|, and how much of the clip's flow the result keeps (correlation, and the RMS change over the
   clip's RMS).
Run: python bench/accentuation.py (about three minutes); figures in docs/engine.md.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

import stlens.engine.render as render
from stlens.analysis.clip import model_clip_inputs
from stlens.analysis.synthset import example_clips
from stlens.analysis.video import decode_video
from stlens.engine import VisualizationSettings, visualize
from stlens.flow.coding import direction_coding
from stlens.media.frames import enlarge, strip, to_uint8
from stlens.models.builtin import builtin_entries
from stlens.models.registry import prepare

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "engine" / "accentuation.png"
VIDEO = ROOT.parent / "shared" / "data" / "samples" / "bikes.mp4"
CLIP, LAYER, UNIT = 37, "fusion.conv", 2
# (param, phase step in lr from a clip, start weight); the engine's own is ("spectrum", 1, 3)
RUNS = [("spectrum", 4.0, 1.0), ("spectrum", 1.0, 1.0), ("spectrum", 1.0, 3.0), ("spectrum", 1.0, 10.0),
        ("fourier", 1.0, 3.0), ("pixel", 1.0, 3.0)]
WEIGHTS = (1.0, 3.0, 10.0, 30.0)
UNITS = (("fusion.conv", 2), ("fusion.fc6", 7))


def row(clip: dict[str, np.ndarray]) -> np.ndarray:
    rgb = strip(enlarge(to_uint8(clip["appearance"][::2]), 2))
    return np.concatenate([rgb, strip(enlarge(direction_coding(clip["motion"][::2]), 2))], 1)


def kept(start: dict[str, np.ndarray], clip: dict[str, np.ndarray]) -> str:
    """How much of the start clip the result keeps, in both streams."""
    rgb = float(np.abs(clip["appearance"] - start["appearance"]).mean())
    flow, flow0 = clip["motion"].ravel(), start["motion"].ravel()
    correlation = float(np.corrcoef(flow, flow0)[0, 1])
    change = float(np.sqrt(np.mean((flow - flow0) ** 2) / np.mean(flow0**2)))
    return f"mean |RGB change| {rgb:.3f}, flow: correlation {correlation:+.2f}, RMS change {change:.2f} of the clip's"


def pictures(model, start: dict[str, np.ndarray]) -> None:
    rows = [row(start)]
    for param, phase_step, weight in RUNS:
        render.PHASE_LR_FROM_CLIP, engine_step = phase_step, render.PHASE_LR_FROM_CLIP
        try:
            result = visualize(model, LAYER, UNIT, VisualizationSettings(param=param, weights={"start": weight}), start=start)
        finally:
            render.PHASE_LR_FROM_CLIP = engine_step
        clip = {s: x[0] for s, x in result.inputs.items()}
        print(f"{param:8s} phase step {phase_step:g} lr, weight {weight:g}: objective {result.objective[0]:.2f}, {kept(start, clip)}")
        rows.append(row(clip))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT), cv2.cvtColor(np.concatenate(rows), cv2.COLOR_RGB2BGR))
    print(f"wrote {OUT}")


def weights(model, starts: dict[str, dict[str, np.ndarray]]) -> None:
    for name, start in starts.items():
        for layer, unit in UNITS:
            still = VisualizationSettings(param="spectrum", steps=1, lr=1e-6)  # one step of almost nothing: the clip's
            before = visualize(model, layer, unit, still, start=start).objective[0]
            for weight in WEIGHTS:
                result = visualize(model, layer, unit, VisualizationSettings(param="spectrum", weights={"start": weight}), start=start)
                clip = {s: x[0] for s, x in result.inputs.items()}
                print(f"{name}, {layer} #{unit}, weight {weight:g}: objective {before:.2f} -> {result.objective[0]:.2f}, "
                      f"{kept(start, clip)}", flush=True)


def main() -> None:
    torch.set_num_threads(2)
    model = prepare(next(e for e in builtin_entries() if e.spec.id == "synth-conv-fusion"), torch.device("cpu"))
    clips = example_clips()
    start = {"appearance": clips.frames[CLIP].astype(np.float32) / 255, "motion": clips.flow[CLIP].astype(np.float32)}
    pictures(model, start)
    starts = {f"test clip {CLIP}": start}
    if VIDEO.exists():
        starts["bikes.mp4"] = model_clip_inputs(decode_video(VIDEO.read_bytes()).frames, model.spec, 1.0, None).streams
    else:
        print(f"{VIDEO} is not here: the real video's rows are left out")
    weights(model, starts)


if __name__ == "__main__":
    main()
