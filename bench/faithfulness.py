"""How true are the pictures? The faithfulness of each parameterisation and its main settings.

For each configuration, on the built-in models with their trained weights:

* **transfer**: the class-logit visualisations of each built-in model (all 10 classes, ``--seeds``
  seeds each), and which class each independent judge (stlens.models.judges: the other built-in
  model, a conv-fusion net of another seed, the appearance-only and motion-only baselines) and the
  model itself predict for them;
* **path similarity** (Geirhos et al. 2024): for units of ``fusion.conv`` and ``motion.conv3`` of the
  conv-fusion model, at how many earlier layers the visualisation's activations are closer, by rank
  correlation, to the unit's top test clips than to random ones; a unit passes when that holds at
  most (more than half) of its earlier layers;
* **reach**: the objective against the unit's strongest test clip, and the seconds a visualisation
  takes on this machine (batched, one thread);
* a picture strip of the classes walk, jump, box and wave (every other frame: RGB, then the flow in
  direction coding);
* a **reference** no optimisation takes part in: for each class, the two test clips (of 400) that the
  model itself is most confident are of it, judged the same way. A visualisation is the input the model finds
  most class-like; these are the real clips it finds most class-like, so what the judges make of them
  is what a picture can be held to (and how many of them are truly of the class says how clear the
  model's own idea of the class is).

The judges never take part in an optimisation: they only predict afterwards. Writes
``docs/faithfulness.md`` and its pictures. Run: ``python bench/faithfulness.py`` (about 20 minutes
on 2 cores); ``--quick`` runs two configurations with fewer units.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from stlens.analysis.faithfulness import STATISTIC_WORDS, assess, placement
from stlens.analysis.synthset import batches, render_split
from stlens.engine import VisualizationSettings, visualize
from stlens.flow.coding import direction_coding
from stlens.media.frames import enlarge, strip, to_uint8
from stlens.models.builtin import builtin_entries
from stlens.models.judges import judges_of
from stlens.models.registry import prepare

from path_calibration import calibrate  # bench/path_calibration.py, beside this file

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PICTURES = Path("images") / "faithfulness"  # beside the report (--out)
STRIP_CLASSES = ("walk", "jump", "box", "wave")
SUBJECTS = ("synth-conv-fusion", "synth-late-fusion")
PATH_LAYERS = ("fusion.conv", "motion.conv3")

DEFAULT = "the default: eigenclips (pca) at the logits, spectrum with amplitudes up to x2 at hidden units"
SPECTRUM_BY_LAYER = "spectrum by layer (the default before pca): phases only at the logits, amplitudes up to x2 at hidden units"
CONFIGURATIONS: dict[str, dict[str, Any]] = {  # new ones go last: a picture's file is numbered by its place
    "fourier (the old default)": {"param": "fourier"},
    "pixel": {"param": "pixel"},
    "spectrum, phases only": {"param": "spectrum", "freedom": 1.0},
    "spectrum, amplitudes up to x2": {"param": "spectrum", "freedom": 2.0},
    "spectrum, 2 views a step": {"param": "spectrum", "freedom": 1.0, "transforms": {"views": 2}},
    "spectrum, 256 steps": {"param": "spectrum", "freedom": 1.0, "steps": 256},
    "spectrum, no penalties": {
        "param": "spectrum",
        "freedom": 1.0,
        "weights": {"norm": 0, "tv_space": 0, "tv_time": {"appearance": 0, "motion": 0}},
    },
    SPECTRUM_BY_LAYER: {"param": "spectrum"},
    DEFAULT: {},  # param and freedom unset: filled in by layer
}
QUICK = ("fourier (the old default)", "spectrum, phases only")
REFERENCE = "real clips: the 2 the model is surest of, each class (reference)"
REFERENCE_CLIPS_PER_CLASS = 40  # test clips of each class the strongest are picked from
REFERENCE_PICKS = 2


def settings_of(config: dict[str, Any], seed: int) -> VisualizationSettings:
    return VisualizationSettings.model_validate({**config, "seed": seed})


def class_strip(inputs: dict[str, np.ndarray], labels: tuple[str, ...]) -> np.ndarray:
    """Rows of STRIP_CLASSES: every other RGB frame, a gap, every other flow frame (direction coding)."""
    rows = []
    for name in STRIP_CLASSES:
        k = labels.index(name)
        rgb = strip(enlarge(to_uint8(inputs["appearance"][k][::2]), 2))
        flow = strip(enlarge(direction_coding(inputs["motion"][k][::2]), 2))
        rows.append(np.concatenate([rgb, np.full((rgb.shape[0], 12, 3), 255, np.uint8), flow], 1))
    gap = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([x for row in rows for x in (row, gap)][:-1])


def count_placements(counts: dict[str, dict[str, int]], verdict) -> None:
    """Add where a picture's natural statistics lie against the training clips' middle 90%."""
    if verdict.natural is not None:
        for key, where in placement(verdict.natural).items():
            counts.setdefault(key, {"below": 0, "inside": 0, "above": 0})[where] += 1


def transfer(model, config: dict[str, Any], seeds: int, first_seed: int = 0) -> dict[str, Any]:
    """Class-logit visualisations of every class (seeds ``first_seed`` on) and what the model and each
    judge make of them."""
    labels = model.spec.labels
    classes = list(range(len(labels)))
    started = time.perf_counter()
    seed_list = range(first_seed, first_seed + seeds)
    runs = [visualize(model, "logits", classes, settings_of(config, seed)) for seed in seed_list]
    seconds = (time.perf_counter() - started) / (seeds * len(classes))
    counts: dict[str, int] = {"self": 0}
    judges = judges_of(model.spec.id)
    counts.update({j.id: 0 for j in judges})
    misses: dict[str, list[tuple[str, str]]] = {name: [] for name in counts}  # (the class, what it was taken for)
    reach = []
    statistics: dict[str, dict[str, int]] = {}
    for seed, run in zip(seed_list, runs):
        for k in classes:
            inputs = {s: x[k] for s, x in run.inputs.items()}
            verdict = assess(model, "logits", k, settings_of(config, seed), inputs)
            count_placements(statistics, verdict)
            display = {s: torch.from_numpy(x).permute(3, 0, 1, 2).unsqueeze(0) for s, x in inputs.items()}
            with torch.no_grad():
                own = model.module(**{s: model.spec.inputs[s].to_model(display[s]) for s in display})
            counts["self"] += int(own.argmax(1)) == k
            if int(own.argmax(1)) != k:
                misses["self"].append((labels[k], labels[int(own.argmax(1))]))
            for judgement in verdict.judges or []:
                counts[judgement.judge] += judgement.agrees
                if not judgement.agrees:
                    misses[judgement.judge].append((labels[k], judgement.predicted))
            if verdict.reach is not None and verdict.reach.ratio is not None:
                reach.append(verdict.reach.ratio)
    return {
        "counts": counts,
        "of": seeds * len(classes),
        "misses": misses,
        "two_stream": [j.id for j in judges if j.two_stream],
        "reach": float(np.mean(reach)) if reach else None,
        "seconds": seconds,
        "statistics": statistics,
        "strip": class_strip(runs[0].inputs, labels),
    }


def real_reference(model) -> dict[str, Any]:
    """What the model and the judges make of the real test clips the model scores highest for each class."""
    data = render_split("test", REFERENCE_CLIPS_PER_CLASS)
    inputs = batches(data)
    with torch.no_grad():
        logits = torch.cat([model.module(**batch) for batch in inputs])
    classes = range(len(model.spec.labels))
    # by the model's confidence in the class, not the raw logit: a late-fusion net's largest logits of a
    # class are often on clips it takes for another (every logit large)
    confidence = logits.log_softmax(1)
    picks = [int(i) for k in classes for i in confidence[:, k].argsort(descending=True)[:REFERENCE_PICKS]]
    wanted = np.repeat(np.arange(len(classes)), REFERENCE_PICKS)
    picked = data.batch(np.array(picks))
    judges = judges_of(model.spec.id)
    counts = {"self": int((logits[picks].argmax(1).numpy() == wanted).sum())}
    counts.update({j.id: int((j.probabilities(picked).argmax(1).numpy() == wanted).sum()) for j in judges})
    statistics: dict[str, dict[str, int]] = {}
    settings = settings_of({}, 0)
    for k, i in zip(wanted, picks):
        clip = {"appearance": data.frames[i].astype(np.float32) / 255, "motion": data.flow[i].astype(np.float32)}
        count_placements(statistics, assess(model, "logits", int(k), settings, clip))
    return {
        "statistics": statistics,
        "counts": counts,
        "of": len(picks),
        "two_stream": [j.id for j in judges if j.two_stream],
        "truly_of_the_class": int((data.labels[picks] == wanted).sum()),
    }


def path_similarity(model, layer: str, units: list[int], config: dict[str, Any]) -> dict[str, Any]:
    """For each unit, whether its visualisation's activations follow the top test clips' at most earlier layers."""
    settings = settings_of(config, 0)
    started = time.perf_counter()
    result = visualize(model, layer, units, settings)
    seconds = (time.perf_counter() - started) / len(units)
    passed, layer_share, reach = 0, [], []
    statistics: dict[str, dict[str, int]] = {}
    for i, unit in enumerate(units):
        verdict = assess(model, layer, unit, settings, {s: x[i] for s, x in result.inputs.items()})
        count_placements(statistics, verdict)
        path = verdict.path
        assert path is not None
        passed += 2 * path.holds_at > path.of
        layer_share.append(path.holds_at / path.of)
        if verdict.reach is not None and verdict.reach.ratio is not None:
            reach.append(verdict.reach.ratio)
    return {
        "passed": passed,
        "of": len(units),
        "layers_held": float(np.mean(layer_share)),
        "reach": float(np.mean(reach)) if reach else None,
        "seconds": seconds,
        "statistics": statistics,
    }


def run(names: list[str], seeds: int, units: int, first_seed: int, folder: Path) -> dict[str, Any]:
    """Every configuration of ``names``; the picture strips go to ``folder`` / PICTURES."""
    models = {e.spec.id: prepare(e, torch.device("cpu")) for e in builtin_entries() if e.spec.id in SUBJECTS}
    results: dict[str, Any] = {}
    (folder / PICTURES).mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        config = CONFIGURATIONS[name]
        print(f"[{index + 1}/{len(names)}] {name}", flush=True)
        entry: dict[str, Any] = {"settings": config, "transfer": {}, "path": {}}
        for subject, model in models.items():
            t = transfer(model, config, seeds, first_seed)
            # numbered by the configuration's place in the full table, so a run of some (--only, --quick)
            # replaces their own pictures only, never another configuration's
            picture = folder / PICTURES / f"{list(CONFIGURATIONS).index(name)}-{subject}.png"
            cv2.imwrite(str(picture), cv2.cvtColor(t.pop("strip"), cv2.COLOR_RGB2BGR))
            t["picture"] = str(picture.relative_to(folder))
            entry["transfer"][subject] = t
            print(f"  {subject}: {t['counts']} of {t['of']}", flush=True)
        for layer in PATH_LAYERS:
            entry["path"][layer] = path_similarity(models["synth-conv-fusion"], layer, list(range(units)), config)
            print(f"  path {layer}: {entry['path'][layer]['passed']} of {units}", flush=True)
        results[name] = entry
    results[REFERENCE] = {"transfer": {subject: real_reference(model) for subject, model in models.items()}}
    return results


def short(judge: str) -> str:
    return judge.removeprefix("synth-")


def markdown(results: dict[str, Any], calibration: list[str]) -> str:
    lines = [
        "# Faithfulness: how true are the pictures?",
        "",
        "Written by `bench/faithfulness.py` (the measures: `stlens.analysis.faithfulness`; the judges:",
        "`stlens.models.judges`). Class-logit visualisations of each built-in model (10 classes, as many seeds",
        "as each row's counts say), counted as recognised when a judge's top class is the visualised one;",
        "path similarity over units of the conv-fusion model (a unit passes when its visualisation's activations",
        "are closer to its top test clips than to random test clips at more than half of the earlier layers);",
        "reach: the objective over the strongest of 100 test clips' (mean); seconds: per visualisation, batched,",
        "on this 2-core CPU while other work shared it.",
        "",
        "Commands (a row's figures come from the run that names it, or from the full run):",
        "",
        *[f"- `{command}`" for command in dict.fromkeys(e["command"] for e in results.values() if "command" in e)],
        "",
        "What these figures decided, and which targets they leave unmet: docs/engine.md, \"Defaults and how",
        "they were chosen\". The judges never take part in an optimisation; they only predict afterwards.",
        "",
    ]
    for subject in SUBJECTS:
        first = next(iter(results.values()))["transfer"][subject]
        judges = [k for k in first["counts"] if k != "self"]
        lines += [
            f"## Class visualisations of `{subject}`: recognised by",
            "",
            "| configuration | itself | " + " | ".join(f"`{short(j)}`" + (" (2-stream)" if j in first["two_stream"] else "") for j in judges)
            + " | reach | s |",
            "| --- | ---: |" + " ---: |" * len(judges) + " ---: | ---: |",
        ]
        for name, entry in results.items():
            t = entry["transfer"][subject]
            cells = [f"{t['counts']['self']}/{t['of']}"] + [f"{t['counts'][j]}/{t['of']}" for j in judges]
            reach = f"{t['reach']:.2f}x" if t.get("reach") is not None else "-"
            seconds = f"{t['seconds']:.1f}" if "seconds" in t else "-"
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {reach} | {seconds} |")
        if DEFAULT in results and "misses" in results[DEFAULT]["transfer"][subject]:
            lines += ["", "The pictures of the default the model itself and the two-stream judges miss (a class: what it was "
                      "taken for, each time):", ""]
            for judge, missed in results[DEFAULT]["transfer"][subject]["misses"].items():
                if judge == "self" or judge in first["two_stream"]:
                    taken: dict[str, list[str]] = {}
                    for wanted, seen in missed:
                        taken.setdefault(wanted, []).append(seen)
                    said = "; ".join(f"{c}: {', '.join(seen)}" for c, seen in sorted(taken.items(), key=lambda x: -len(x[1])))
                    lines.append(f"- {'itself' if judge == 'self' else f'`{short(judge)}`'}: {said or 'none'}")
        reference = results[REFERENCE]["transfer"][subject]
        true, of = reference["truly_of_the_class"], reference["of"]
        others = "" if true == of else "; the others are clips of another class that the model is sure of"
        lines += ["", f"Of the reference row's clips, {true} of {of} are truly of the class they were picked for{others}.", ""]
    lines += [
        "## Path similarity (conv-fusion model)",
        "",
        "| configuration | " + " | ".join(f"`{layer}` units passing | layers held" for layer in PATH_LAYERS) + " |",
        "| --- |" + " ---: | ---: |" * len(PATH_LAYERS),
    ]
    configurations = {name: entry for name, entry in results.items() if name != REFERENCE}
    for name, entry in configurations.items():
        cells = []
        for layer in PATH_LAYERS:
            p = entry["path"][layer]
            cells += [f"{p['passed']}/{p['of']}", f"{100 * p['layers_held']:.0f}%"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "How far a visualisation can be held to: the same measure on real clips and on noise",
        "(`bench/path_calibration.py`, no visualisation involved):",
        "",
        *[f"- {line}" for line in calibration],
        "",
        *statistics_table(results),
        "## Pictures: walk, jump, box, wave (RGB every other frame, then the flow)",
        "",
    ]
    for name, entry in configurations.items():
        lines.append(f"### {name}")
        lines.append("")
        for subject in SUBJECTS:
            lines.append(f"`{subject}`:")
            lines.append("")
            lines.append(f"![{name}, {subject}]({entry['transfer'][subject]['picture']})")
            lines.append("")
    return "\n".join(lines) + "\n"


def statistics_table(configurations: dict[str, Any]) -> list[str]:
    """Where the pictures' natural statistics lie against the middle 90% of the model's training clips:
    for each configuration measured with them, the class pictures of each subject and the hidden units."""
    rows = []
    for name, entry in configurations.items():
        clips = "real test clips" if name == REFERENCE else "class pictures"
        measured = [(f"`{subject}` {clips}", t) for subject, t in entry["transfer"].items()]
        measured += [(f"`{layer}` units", p) for layer, p in entry.get("path", {}).items()]
        for what, figures in measured:
            if figures.get("statistics"):
                cells = []
                for key in STATISTIC_WORDS:
                    c = figures["statistics"].get(key)
                    cells.append(f"{c['inside']} / {c['below']} / {c['above']}" if c else "-")
                rows.append(f"| {name} | {what} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    header = " | ".join(f"{words[0]}: inside / {words[2]} / {words[3]}" for words in STATISTIC_WORDS.values())
    return [
        "## Natural statistics: the pictures against the training clips",
        "",
        "How many pictures lie inside the middle 90% of the model's training clips, and how many below or",
        "above it (stlens.models.spectra.clip_statistics; the ranges ship with the spectra). Rows measured",
        "before these counts existed are left out.",
        "",
        f"| configuration | pictures | {header} |",
        "| --- | --- |" + " ---: |" * len(STATISTIC_WORDS),
        *rows,
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0, help="the class pictures' first seed (others: held out)")
    parser.add_argument("--units", type=int, default=16, help="units of each path-similarity layer (from 0)")
    parser.add_argument("--only", nargs="+", choices=list(CONFIGURATIONS), help="these configurations")
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK}, 1 seed, 8 units")
    parser.add_argument("--out", type=Path, default=DOCS / "faithfulness.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.units, args.only = 1, 8, list(QUICK)
    names = args.only or list(CONFIGURATIONS)
    command = "python bench/faithfulness.py" + (f" --seeds {args.seeds} --units {args.units}")
    if args.first_seed:
        command += f" --first-seed {args.first_seed}"
    if args.only:
        command += " --only " + " ".join(f"'{n}'" for n in names)
    results = run(names, args.seeds, args.units, args.first_seed, args.out.parent)
    for entry in results.values():
        entry["command"] = command
    stored = args.out.with_suffix(".json")
    if args.only and stored.exists():  # the other configurations keep their figures from the last run
        earlier = json.loads(stored.read_text())
        order = [DEFAULT, *(name for name in CONFIGURATIONS if name != DEFAULT), REFERENCE]
        results = {name: results.get(name, earlier.get(name)) for name in order}
        results = {name: entry for name, entry in results.items() if entry is not None}
    calibration = calibrate(prepare(next(e for e in builtin_entries() if e.spec.id == "synth-conv-fusion"), torch.device("cpu")))
    args.out.write_text(markdown(results, calibration))
    stored.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
