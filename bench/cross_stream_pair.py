"""What each built-in model takes for `advance` and `retreat`: the test clips of the pair by shirt and direction.

The pair is the XOR of the shirt's colour and the direction of travel (docs/dataset.md): red advances
to the left and blue to the right. A late-fusion net sums an appearance score (the shirt) and a motion
score (the direction), so it cannot compute an XOR: whatever it has learnt, one of the four kinds of
clip gets the wrong class. This shows which, for each built-in model and judge, and so what a faithful
class picture of its `retreat` must show: a visualisation shows the input the model scores highest for a
class, and where that input is truly of the other class, an XOR-knowing judge must call it that
(docs/engine.md, "Met and not met").

Run: ``python bench/cross_stream_pair.py`` (about 2 minutes on 2 cores); prints a Markdown table.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from stlens.analysis.synthset import SEED, batches, render_split, split_indices
from stlens.models.builtin import builtin_entries
from stlens.models.judges import judges_of
from stlens.models.registry import prepare
from stlens.synth.actions import CROSS_STREAM_PAIR, LABELS, TEAM_RED
from stlens.synth.dataset import clip_params

SUBJECTS = ("synth-conv-fusion", "synth-late-fusion")
PAIR = tuple(LABELS.index(name) for name in CROSS_STREAM_PAIR)  # (advance, retreat)


def kind_of(index: int) -> str:
    """'red, moving left (advance)' for test clip ``index`` of the pair."""
    params = clip_params(SEED, "test", index)
    shirt = "red" if params.outfit.shirt == TEAM_RED else "blue"
    return f"{shirt}, moving {'right' if params.travel > 0 else 'left'} ({LABELS[params.label]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=80, help="test clips of each of the two classes")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = render_split("test", args.per_class, classes=PAIR)
    kinds = np.array([kind_of(i) for i in split_indices(args.per_class, PAIR)])
    cpu = torch.device("cpu")
    loaded = [prepare(e, cpu) for e in builtin_entries() if e.spec.id in SUBJECTS]
    nets = {m.spec.id: (m.module, m.spec.streams) for m in loaded}  # each: the module and the streams it reads
    nets.update({j.id: (j.module, j.streams) for j in judges_of(SUBJECTS[0]) if j.id not in nets})
    predictions, logits = {}, {}
    with torch.no_grad():
        for name, (module, streams) in nets.items():
            logits[name] = torch.cat([module(**{s: batch[s] for s in streams}) for batch in batches(data)]).numpy()
            predictions[name] = logits[name].argmax(1)
    names = list(predictions)
    print("| clips (test split) | n | " + " | ".join(f"`{n.removeprefix('synth-')}`" for n in names) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in names) + " |")
    advance, retreat = PAIR
    for kind in sorted(set(kinds)):
        chosen = kinds == kind
        cells = [
            f"{int((predictions[n][chosen] == advance).sum())} / {int((predictions[n][chosen] == retreat).sum())}"
            for n in names
        ]
        print(f"| {kind} | {int(chosen.sum())} | " + " | ".join(cells) + " |")
    print("\nEach cell: clips called advance / retreat (the rest: another class).\n")
    # a class picture maximises the class's logit, not its lead over the others: where are they largest?
    print("| clips (test split) | " + " | ".join(f"`{n.removeprefix('synth-')}`" for n in SUBJECTS) + " |")
    print("| --- | " + " | ".join("---:" for _ in SUBJECTS) + " |")
    for kind in sorted(set(kinds)):
        chosen = kinds == kind
        cells = [f"{logits[n][chosen, advance].mean():.2f} / {logits[n][chosen, retreat].mean():.2f}" for n in SUBJECTS]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print("\nEach cell: the mean advance / retreat logit.")


if __name__ == "__main__":
    main()
