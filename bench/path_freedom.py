"""How much amplitude freedom should a hidden unit's picture get? Path similarity under freedom 1 and 2.

The class logits' freedom was chosen by the judges (bench/faithfulness.py: phases only, freedom 1, let
the other nets recognise the most pictures). Hidden units have no judges; their faithfulness measure is
path similarity (stlens.analysis.faithfulness): does the picture's activation pattern at the earlier
layers follow the unit's top test clips rather than random ones, at most of them. For `fusion.conv` and
`motion.conv3` of the built-in conv-fusion model the freedom was chosen on units 16-47 (freedom 1, 2 and
4) and then checked on the other 32 (0-15 and 48-63); the other hidden layers were measured once, for
the record. Each set of units is one batch, 128 steps, seed 0, one thread.
Run: python bench/path_freedom.py (about 40 minutes on 2 cores); --layers to measure some.
"""

from __future__ import annotations

import argparse

import torch

from faithfulness import path_similarity  # bench/faithfulness.py, beside this file
from stlens.models.builtin import builtin_entries
from stlens.models.registry import prepare

CHOSEN_ON = list(range(16, 48))
CHECKED_ON = list(range(0, 16)) + list(range(48, 64))
FIRST_32 = list(range(32))
RUNS: list[tuple[str, str, list[int], tuple[float, ...]]] = [  # layer, which units, the units, freedoms
    ("fusion.conv", "16-47 (chosen on)", CHOSEN_ON, (1.0, 2.0, 4.0)),
    ("fusion.conv", "0-15, 48-63 (checked on)", CHECKED_ON, (1.0, 2.0)),
    ("motion.conv3", "16-47 (chosen on)", CHOSEN_ON, (1.0, 2.0, 4.0)),
    ("motion.conv3", "0-15, 48-63 (checked on)", CHECKED_ON, (1.0, 2.0)),
    ("appearance.conv3", "16-47", CHOSEN_ON, (1.0, 2.0)),
    ("fusion.fc6", "0-31", FIRST_32, (1.0, 2.0)),
    ("appearance.conv2", "0-31", FIRST_32, (1.0, 2.0)),
    ("motion.conv2", "0-31", FIRST_32, (1.0, 2.0)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="+", help="only these layers")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = prepare(next(e for e in builtin_entries() if e.spec.id == "synth-conv-fusion"), torch.device("cpu"))
    print("| layer | units | freedom | units passing | layers held | reach |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for layer, which, units, freedoms in RUNS:
        if args.layers and layer not in args.layers:
            continue
        for freedom in freedoms:
            r = path_similarity(model, layer, units, {"param": "spectrum", "freedom": freedom})
            print(
                f"| `{layer}` | {which} | {freedom:g} | {r['passed']}/{r['of']} | {100 * r['layers_held']:.0f}% "
                f"| {r['reach']:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
