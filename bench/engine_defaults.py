"""The experiment behind the engine's default settings (results in docs/engine.md).

    python bench/engine_defaults.py [--model synth-conv-fusion] [--units 4] [--steps 128]

For each candidate setting it visualises the first ``--units`` units of one layer per stream
kind (appearance, motion, fusion, logits) in one batch and reports, averaged over them:
the objective reached (higher: the unit is driven harder), the objective under the random
transforms (how robust the pattern is), the spatial roughness (mean |neighbour difference|;
RGB in [0, 1] units, flow in pixels) and the temporal change (mean |frame difference|).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from stlens.engine import VisualizationSettings, visualize
from stlens.engine.render import build_objective
from stlens.engine.transforms import SpacetimeJitter
from stlens.models.builtin import builtin_entries
from stlens.models.introspect import probe
from stlens.models.registry import LoadedModel, prepare

LAYERS = ("appearance.conv3", "motion.conv3", "fusion.conv", "logits")

X10 = {"norm": 0.1, "tv_space": 0.5, "tv_time": {"appearance": 10.0, "motion": 10.0}}
X01 = {"norm": 0.001, "tv_space": 0.005, "tv_time": {"appearance": 0.1, "motion": 0.1}}
X001 = {"norm": 0.0001, "tv_space": 0.0005, "tv_time": {"appearance": 0.01, "motion": 0.01}}
CANDIDATES: dict[str, dict] = {
    "defaults (norm .01, tv_space .05, tv_time 1, lr .05, fourier)": {},
    "penalties x10": {"weights": X10},
    "penalties x0.1": {"weights": X01},
    "penalties x0.01": {"weights": X001},
    "lr 0.1": {"lr": 0.1},
    "lr 0.025": {"lr": 0.025},
    "pixel": {"param": "pixel"},
    "no transforms": {"transforms": {"jitter": 0, "zoom": 0, "time_shift": 0}},
}


def robust_objective(model: LoadedModel, layer: str, units: list[int], inputs: dict[str, np.ndarray], draws: int = 8) -> float:
    """The mean objective over random jitters of the result (the default transform ranges)."""
    specs = model.spec.inputs
    defaults = VisualizationSettings()
    jitter = SpacetimeJitter(round(defaults.transforms.jitter * specs["appearance"].height), defaults.transforms.zoom, 1)
    objective = build_objective(defaults, units)
    generators = [torch.Generator().manual_seed(1000 + i) for i in range(len(units))]
    clips = {s: specs[s].to_model(torch.from_numpy(x).movedim(-1, 1)) for s, x in inputs.items()}
    values = []
    with torch.no_grad(), probe(model.module, layer) as run:
        for _ in range(draws):
            draw = jitter.sample(generators, specs["appearance"].frames)
            values.append(objective(run({s: jitter.apply(c, draw, s == "motion") for s, c in clips.items()})).mean())
    return float(torch.stack(values).mean())


def roughness(clips: np.ndarray) -> tuple[float, float]:
    """(spatial, temporal) mean absolute neighbour difference of (B, T, H, W, C) clips."""
    spatial = (np.abs(np.diff(clips, axis=2)).mean() + np.abs(np.diff(clips, axis=3)).mean()) / 2
    return float(spatial), float(np.abs(np.diff(clips, axis=1)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="synth-conv-fusion")
    parser.add_argument("--units", type=int, default=4)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    entry = next(e for e in builtin_entries() if e.spec.id == args.model)
    model = prepare(entry, torch.device("cpu"))
    units = list(range(args.units))
    print(f"{args.model}, {args.steps} steps, units {units} of {', '.join(LAYERS)}\n")
    print("| setting | objective | under jitter | RGB rough (space / time) | flow px rough (space / time) | s |")
    print("|---|---|---|---|---|---|")
    for name, overrides in CANDIDATES.items():
        settings = VisualizationSettings(steps=args.steps, **overrides)
        start = time.perf_counter()
        objective, robust, rough = [], [], {"appearance": [], "motion": []}
        for layer in LAYERS:
            result = visualize(model, layer, units, settings)
            objective.append(np.mean(result.objective))
            robust.append(robust_objective(model, layer, units, result.inputs))
            for stream, clips in result.inputs.items():
                rough[stream].append(roughness(clips))
        seconds = time.perf_counter() - start
        rgb, flow = (np.mean(rough[s], axis=0) for s in ("appearance", "motion"))
        print(
            f"| {name} | {np.mean(objective):.3f} | {np.mean(robust):.3f} | {rgb[0]:.3f} / {rgb[1]:.3f} "
            f"| {flow[0]:.2f} / {flow[1]:.2f} | {seconds:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
