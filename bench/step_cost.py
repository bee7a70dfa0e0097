"""Step-cost estimates against measured steps: ``python bench/step_cost.py [MODEL:LAYER ...]``.

For each layer: the estimate ``stlens.step_cost`` makes before a layer has run (its operations over
the rate measured on the reference model) and the fastest of a few real engine steps.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import torch

from stlens.engine import VisualizationSettings, visualize
from stlens.models.catalogue import model_entries
from stlens.models.registry import ModelRegistry, prepare
from stlens.step_cost import StepCostEstimator, step_flops

DEFAULT = [
    "synth-conv-fusion:motion.conv2",
    "synth-conv-fusion:fusion.conv",
    "vgg16-twostream-small:logits",
    "st-resnet-small:logits",
    "tv-r3d_18:appearance.layer2.0",
    "i3d-kinetics400:logits",
]


def measured_step(model, layer: str, steps: int) -> float:
    ticks: list[float] = []
    visualize(model, layer, 0, VisualizationSettings(steps=steps), progress=lambda _: ticks.append(time.perf_counter()))
    return min(b - a for a, b in itertools.pairwise(ticks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("layers", nargs="*", default=DEFAULT, help="MODEL:LAYER")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    device = torch.device("cpu")
    entries = {e.spec.id: e for e in model_entries(include_heavy=True)}
    registry = ModelRegistry(list(entries.values()), device, 2)
    estimator = StepCostEstimator(lambda d: prepare(entries["synth-conv-fusion"], d))
    speed = estimator.speed(device)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print(f"convolution rate {speed.flops_per_second / 1e9:.1f} GFLOP/s, step overhead {speed.overhead_s:.3f} s")
    print("| model:layer | GFLOP a step | estimate | measured | estimate / measured |")
    print("| --- | --- | --- | --- | --- |")
    for item in args.layers:
        model_id, layer = item.split(":", 1)
        model = registry.get(model_id)
        estimate = estimator.seconds_per_step(model, layer, {}).seconds
        real = measured_step(model, layer, args.steps)
        flops = step_flops(model, layer) / 1e9
        print(f"| {item} | {flops:.2f} | {estimate:.3f} s | {real:.3f} s | {estimate / real:.2f} |", flush=True)


if __name__ == "__main__":
    main()
