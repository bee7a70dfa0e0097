"""The paper's four findings measured on the built-in models over the synthetic world's test clips.

    python -m stlens.analysis.insights --out docs/insights-numbers.md

writes the numbers as markdown and as JSON (``--json``, default: the file the Insights API serves).
1. cross-stream dependence of the fusion layers (conjunction score),
2. class selectivity over depth (specific and generic units),
3. speed invariance over depth (clips replayed at 0.25x .. 4x, flow recomputed),
4. the designed bias: the biased class's accuracy with and without its background, and how much of
   its logit the appearance stream carries alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from ..models.builtin import builtin_entries
from ..models.registry import LoadedModel, ModelEntry, prepare
from ..synth.actions import BIASED_CLASS, CROSS_STREAM_PAIR, LABELS
from ..synth.dataset import SplitData
from .crossstream import TOP_CLIPS as CROSS_TOP_CLIPS
from .crossstream import cross_stream
from .examples import dataset_examples
from .selectivity import GENERIC, SPECIFIC, class_selectivity
from .speed import SPEEDS, speed_responses, speed_tuning
from .speed import TOP_CLIPS as SPEED_TOP_CLIPS
from .synthset import BATCH, MAX_PER_CLASS, SEED, batches, render_split

RESULTS_PATH = Path(__file__).parent / "results" / "insights.json"


@torch.no_grad()
def accuracy(model: LoadedModel, data: SplitData, label: int) -> float:
    predictions = torch.cat([model.module(**b).argmax(1) for b in batches(data)]).numpy()
    return float((predictions[data.labels == label] == label).mean())


def measure(model: LoadedModel, per_class: int, replays: dict[float, SplitData], debiased: SplitData) -> dict:
    test = replays[1.0]
    test_batches = batches(test)
    labelled = [(b, torch.from_numpy(test.labels[i * BATCH : (i + 1) * BATCH])) for i, b in enumerate(test_batches)]
    layers = [layer.id for layer in model.layers]
    speed = speed_responses(model, layers, lambda s: replays[s].batch(slice(None)), SPEEDS)
    per_layer = []
    for layer in model.layers:
        sel = class_selectivity(model, layer.id, labelled)
        tuning = speed_tuning(speed[layer.id], SPEEDS)
        entry: dict[str, Any] = {  # a JSON row: numbers, lists and the nested cross-stream table
            "layer": layer.id,
            "stream": layer.stream,
            "units": layer.units,
            "selectivity": round(sel.mean_index, 4),
            "specific_count": len(sel.specific),
            "generic_count": len(sel.generic),
            "specific": sel.specific[:8],
            "generic": sel.generic[:8],
            "preferred": sel.preferred,
            "unit_selectivity": [round(v, 4) for v in sel.index],
            "speed_invariance": round(tuning.layer_invariance, 4),
            "speed_responses": [[round(v, 4) for v in row] for row in tuning.responses],
        }
        if layer.stream == "fusion":
            cs = cross_stream(model, layer.id, test_batches)
            entry["conjunction"] = round(cs.mean_conjunction, 4)
            entry["cross_stream"] = {
                "both": cs.both,
                "appearance_only": cs.appearance_only,
                "motion_only": cs.motion_only,
                "neither": cs.neither,
                "conjunction": cs.conjunction,
            }
        per_layer.append(entry)
    logits = per_layer[-1]["cross_stream"]
    biased = LABELS.index(BIASED_CLASS)
    deepest = next((l.id for l in reversed(model.layers[:-1]) if l.stream == "fusion"), model.layers[-1].id)
    examples = dataset_examples(model, deepest, test_batches, k=3)
    return {
        "title": model.spec.title,
        "weights_hash": model.weights_hash,
        "clips_per_class": per_class,
        "layers": per_layer,
        "pair": {name: round(logits["conjunction"][LABELS.index(name)], 4) for name in CROSS_STREAM_PAIR},
        "bias": {
            "class": BIASED_CLASS,
            "unit": biased,
            "accuracy_test": accuracy(model, test, biased),
            "accuracy_debiased": accuracy(model, debiased, biased),
            "logit_both": logits["both"][biased],
            "logit_appearance_only": logits["appearance_only"][biased],
            "logit_motion_only": logits["motion_only"][biased],
            "logit_neither": logits["neither"][biased],
        },
        "examples": {"layer": deepest, "units": [[e.model_dump() for e in unit] for unit in examples]},
    }


def measure_all(per_class: int, entries: list[ModelEntry] | None = None) -> dict:
    """The findings for ``entries`` (default: the built-in models) on ``per_class`` test clips a class."""
    replays = {s: render_split("test", per_class, s) for s in SPEEDS}
    debiased = render_split("debiased", per_class)
    models = {}
    for entry in entries if entries is not None else builtin_entries():
        model = prepare(entry, torch.device("cpu"))
        models[model.spec.id] = measure(model, per_class, replays, debiased)
    return {"labels": list(LABELS), "speeds": list(SPEEDS), "seed": SEED, "models": models}


METHOD = f"""\
How each number is measured (stlens.analysis; activations are averaged over positions):

- **Conjunction** (finding 1, fusion layers only): each unit on its {CROSS_TOP_CLIPS} top test clips with both
  inputs (R), with the motion input removed (zero flow, R_a), with the appearance input removed (a flat
  frame at the normalisation mean, R_m) and with both removed (R_0). The interaction R - R_a - R_m + R_0 over
  the drive R - R_0, clipped to [0, 1]: 1 for a pure AND, 0 for a unit that one stream drives alone or that
  adds up a part from each stream (late fusion's logits are such a sum, so they score 0 by construction).
  Averaged over the units that their clips drive (R > R_0). The designed pair `advance` / `retreat` (class =
  shirt colour XOR direction) can only be told apart by such a conjunction.
- **Selectivity** (finding 2): per unit (mu_max - mu_rest) / (mu_max + mu_rest) over its mean rectified
  activation per class (Morcos et al. 2018); class specific at >= {SPECIFIC}, generic at <= {GENERIC}.
- **Speed invariance** (finding 3): the test clips replayed at 0.25x .. 4x (actor, travel and camera; flow
  recomputed by the training estimator); per unit, on its {SPEED_TOP_CLIPS} top clips at 1x, mean / max of its
  rectified response over the speeds (1: equally driven at every speed, {1 / len(SPEEDS):g}: by one speed only);
  averaged over active units.
- **Bias** (finding 4): the biased class's accuracy on the test split (where its background gives it away)
  and on the debiased split, and its logit on its top clips with each stream removed.
"""


def markdown(results: dict) -> str:
    per_class = next(iter(results["models"].values()))["clips_per_class"]
    speeds = ", ".join(f"{s:g}x" for s in results["speeds"])
    lines = [
        "# Insights: the measured numbers (generated; the reading is in insights.md)",
        "",
        METHOD,
        (
            "Recompute: `python -m stlens.analysis.insights --out docs/insights-numbers.md` "
            f"(test split, seed {results['seed']}, {per_class} clips a class; speeds {speeds})."
        ),
        "",
    ]
    for model_id, m in results["models"].items():
        lines += [
            f"## {m['title']} (`{model_id}`)",
            "",
            "| layer | stream | selectivity | specific | generic | speed invariance | conjunction |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for layer in m["layers"]:
            conjunction = f"{layer['conjunction']:.3f}" if "conjunction" in layer else ""
            lines.append(
                f"| {layer['layer']} | {layer['stream']} | {layer['selectivity']:.3f} | {layer['specific_count']} | "
                f"{layer['generic_count']} | {layer['speed_invariance']:.3f} | {conjunction} |"
            )
        b = m["bias"]
        pair = ", ".join(f"{k} {v:.3f}" for k, v in m["pair"].items())
        lines += [
            "",
            f"Cross-stream pair logits' conjunction: {pair}.",
            (
                f"Bias class `{b['class']}`: accuracy {b['accuracy_test']:.1%} on the test split, "
                f"{b['accuracy_debiased']:.1%} with the bias broken; its logit on its top clips is "
                f"{b['logit_both']:.2f} with both streams, {b['logit_appearance_only']:.2f} from appearance alone, "
                f"{b['logit_motion_only']:.2f} from motion alone, {b['logit_neither']:.2f} from neither."
            ),
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the markdown here")
    parser.add_argument(
        "--json", type=Path, default=RESULTS_PATH, help="write the numbers here (served by /api/insights)"
    )
    parser.add_argument("--per-class", type=int, default=10, choices=range(1, MAX_PER_CLASS + 1), metavar="N")
    args = parser.parse_args(argv)
    results = measure_all(args.per_class)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results))
    if args.out is not None:
        args.out.write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
