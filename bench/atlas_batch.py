"""Why atlases optimise one unit at a time: a batch is faster but does not give a single request's result.

For a few units of a layer: the time of ``visualize`` on each unit alone and on all of them in one
batch, and how far each batched result is from the same unit optimised alone (mean absolute
difference and correlation of the inputs). Run: ``python bench/atlas_batch.py [--layer L] [--steps N]``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from stlens.engine import VisualizationSettings, visualize
from stlens.models.builtin import builtin_entries
from stlens.models.registry import ModelRegistry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="synth-conv-fusion")
    parser.add_argument("--layer", default="fusion.conv")
    parser.add_argument("--units", type=int, default=4, choices=range(2, 17))
    parser.add_argument("--steps", type=int, default=64, choices=range(1, 1025), metavar="N")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = ModelRegistry(builtin_entries(), torch.device("cpu")).get(args.model)
    settings = VisualizationSettings(steps=args.steps)
    units = list(range(args.units))

    started = time.perf_counter()
    alone = [visualize(model, args.layer, [unit], settings) for unit in units]
    alone_s = time.perf_counter() - started
    started = time.perf_counter()
    batch = visualize(model, args.layer, units, settings)
    batch_s = time.perf_counter() - started

    print(f"{args.model} {args.layer}, {args.units} units, {args.steps} steps, 1 torch thread, load {os.getloadavg()[0]:.1f}")
    print(f"one at a time: {alone_s:.1f} s; one batch: {batch_s:.1f} s")
    for stream in batch.inputs:
        diffs = [np.abs(batch.inputs[stream][i] - alone[i].inputs[stream][0]).mean() for i in units]
        scales = [np.abs(alone[i].inputs[stream][0]).mean() for i in units]
        correlations = [
            np.corrcoef(batch.inputs[stream][i].ravel(), alone[i].inputs[stream][0].ravel())[0, 1] for i in units
        ]
        print(
            f"{stream}: batched vs alone, mean |difference| {np.mean(diffs):.3g} (mean |value| {np.mean(scales):.3g}),"
            f" correlation {min(correlations):.2f} .. {max(correlations):.2f}"
        )


if __name__ == "__main__":
    main()
