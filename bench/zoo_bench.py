"""Benchmark of the model zoo on this machine (figures go to docs/benchmarks.md).

    python bench/zoo_bench.py [--threads 2] [--steps 4] [--heavy] [--device cpu] [IDS ...]

For each zoo entry: the time to build it and find its layers (``ModelRegistry.get``), and the
seconds per optimisation step of ``visualize`` for unit 0 of a middle layer of each stream kind
(appearance / motion / fusion) and of the class logits, with the default settings. Every step
figure is the best of two runs of ``--steps`` steps (the machine is shared).
"""

from __future__ import annotations

import argparse
import time

import torch

from stlens.engine import VisualizationSettings, visualize
from stlens.models.registry import ModelRegistry
from stlens.models.zoo import zoo_entries


def seconds_per_step(registry: ModelRegistry, model_id: str, layer: str, steps: int) -> float:
    model = registry.get(model_id)
    settings = VisualizationSettings(steps=steps)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        visualize(model, layer, 0, settings)
        times.append((time.perf_counter() - start) / steps)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help="zoo ids (default: all listed)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--heavy", action="store_true", help="include the full-size entries")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    entries = zoo_entries(include_heavy=args.heavy)
    registry = ModelRegistry(entries, torch.device(args.device), max_resident=1)
    print("| model | build + layers (s) | layer: s/step |")
    print("|---|---|---|")
    for entry in entries:
        if args.ids and entry.spec.id not in args.ids:
            continue
        start = time.perf_counter()
        model = registry.get(entry.spec.id)
        built = time.perf_counter() - start
        picked = []
        for kind in ("appearance", "motion", "fusion"):
            of_kind = [layer.id for layer in model.layers[:-1] if layer.stream == kind]
            if of_kind:
                picked.append(of_kind[len(of_kind) // 2])
        picked.append(model.layers[-1].id)
        cells = ", ".join(
            f"{layer}: {seconds_per_step(registry, entry.spec.id, layer, args.steps):.2f}" for layer in picked
        )
        print(f"| {entry.spec.id} | {built:.1f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
