"""Training: a tiny run keeps the pipeline working; the shipped weights still score what their cards say."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from stlens.models.builtin import WEIGHTS_DIR, builtin_entries
from stlens.models.judges import JUDGES_DIR
from stlens.models.spectra import load_spectra
from stlens.synth.actions import BIASED_CLASS, LABELS
from stlens.synth.dataset import build_split
from stlens.synth.train import MODEL_KINDS, add_train_arguments, fit, per_class_accuracy, predict, run_train

SHIPPED = {"synth-conv-fusion": "conv-fusion", "synth-late-fusion": "late-fusion"}
CHECK_PER_CLASS = 20  # the first clips of the reported splits: same seed, same clips
TOLERANCE = 0.07  # about two binomial standard errors at 200 clips: the first 20 a class vs the card's 80


@pytest.fixture(scope="module")
def tiny_split():
    return build_split(0, "train", 2, progress=False)


@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_a_few_steps_lower_the_loss_of_every_kind(kind, tiny_split):
    torch.manual_seed(0)
    model = MODEL_KINDS[kind](len(LABELS))
    losses = fit(model, tiny_split, epochs=6, batch_size=10, lr=3e-3, seed=0, progress=False)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert predict(model, tiny_split).shape == (len(tiny_split),)


def test_training_is_deterministic_for_a_seed(tiny_split):
    states = []
    for _ in range(2):
        torch.manual_seed(1)
        model = MODEL_KINDS["conv-fusion"](len(LABELS))
        fit(model, tiny_split, epochs=1, batch_size=5, lr=3e-3, seed=1, progress=False)
        states.append(model.state_dict())
    for name, tensor in states[0].items():
        assert torch.equal(tensor, states[1][name]), name


def test_train_command_writes_loadable_weights_and_cards(tmp_path):
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(
        [
            "--train-per-class",
            "1",
            "--test-per-class",
            "1",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--quiet",
            "--models",
            "late-fusion",
            "motion",
            "--out",
            str(tmp_path / "w"),
            "--report",
            str(tmp_path / "r.json"),
        ]
    )
    assert run_train(args) == 0
    card = json.loads((tmp_path / "w" / "synth-late-fusion.json").read_text())
    assert card["labels"] == list(LABELS) and card["title"] and card["description"]
    state = torch.load(tmp_path / "w" / "synth-late-fusion.pt", map_location="cpu", weights_only=True)
    MODEL_KINDS["late-fusion"](len(LABELS)).load_state_dict(state)
    assert not (tmp_path / "w" / "synth-motion.pt").exists()  # baselines are reported, not shipped
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["accuracy"]) == {"late-fusion", "motion"}
    assert set(report["accuracy"]["motion"]) == {"test", "debiased"}


def test_conv_fusion_epochs_apply_to_conv_fusion_only(tmp_path):
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(
        ["--train-per-class", "1", "--test-per-class", "1", "--epochs", "1", "--conv-fusion-epochs", "2"]
        + ["--threads", "1", "--quiet", "--models", "conv-fusion", "appearance", "--out", str(tmp_path / "w")]
        + ["--report", str(tmp_path / "r.json")]
    )
    assert run_train(args) == 0
    assert json.loads((tmp_path / "r.json").read_text())["epochs"] == {"conv-fusion": 2, "appearance": 1}
    card = json.loads((tmp_path / "w" / "synth-conv-fusion.json").read_text())
    assert "--epochs 1 --conv-fusion-epochs 2 " in card["training"]["command"]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(["--test-per-class", "1", "--epochs", "1", "--threads", "1", "--quiet", *argv])


def test_judges_ship_apart_from_the_builtin_models_with_their_seed(tmp_path):
    args = parse("--train-per-class", "1", "--seed", "3", "--judges", "--models", "appearance", "--out", str(tmp_path / "w"))
    assert run_train(args) == 0
    card = json.loads((tmp_path / "w" / "judges" / "synth-appearance-seed3.json").read_text())
    assert card["kind"] == "appearance" and card["labels"] == list(LABELS) and "--judges" in card["training"]["command"]
    state = torch.load(tmp_path / "w" / "judges" / "synth-appearance-seed3.pt", map_location="cpu", weights_only=True)
    MODEL_KINDS["appearance"](len(LABELS)).load_state_dict(state)
    assert not list((tmp_path / "w").glob("*.pt")) and not list((tmp_path / "w").glob("*.spectra.npz"))


def test_spectra_only_measures_the_training_clips_without_training(tmp_path):
    assert run_train(parse("--train-per-class", "2", "--spectra-only", "--out", str(tmp_path / "w"))) == 0
    spectra = load_spectra(tmp_path / "w" / "synth-train-seed0.spectra.npz")
    assert "20 training clips" in spectra.source
    assert spectra.amplitude["appearance"].shape == (3, 8, 64, 33)
    assert not list((tmp_path / "w").glob("*.pt"))


@pytest.mark.parametrize("path", sorted(JUDGES_DIR.glob("*.pt")), ids=lambda p: p.stem)
def test_shipped_judges_reproduce_their_reported_accuracy(path, check_splits):
    card = json.loads(path.with_suffix(".json").read_text())
    model = MODEL_KINDS[card["kind"]](len(LABELS))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    accuracy = per_class_accuracy(predict(model, check_splits["test"]), check_splits["test"].labels)
    assert accuracy["all"] == pytest.approx(card["accuracy"]["test"]["all"], abs=TOLERANCE)


def test_per_class_accuracy_counts_each_class_and_the_pair():
    labels = np.arange(len(LABELS)).repeat(2)
    predictions = labels.copy()
    predictions[labels == LABELS.index("advance")] = LABELS.index("retreat")
    accuracy = per_class_accuracy(predictions, labels)
    assert accuracy["advance"] == 0 and accuracy["retreat"] == 1 and accuracy["pair"] == 0.5
    assert accuracy["all"] == pytest.approx(1 - 1 / len(LABELS))


@pytest.fixture(scope="module")
def check_splits():
    return {s: build_split(0, s, CHECK_PER_CLASS, progress=False) for s in ("test", "debiased")}


@pytest.mark.parametrize("model_id", list(SHIPPED))
def test_shipped_weights_reproduce_their_reported_accuracy(model_id, check_splits):
    card_path = WEIGHTS_DIR / f"{model_id}.json"
    if not (WEIGHTS_DIR / f"{model_id}.pt").exists() or not card_path.exists():
        pytest.skip(f"no shipped weights for {model_id}")
    card = json.loads(card_path.read_text())
    entry = next(e for e in builtin_entries() if e.spec.id == model_id)
    assert list(entry.spec.labels) == list(LABELS)
    model = entry.build()
    for split, data in check_splits.items():
        accuracy = per_class_accuracy(predict(model, data), data.labels)
        assert accuracy["all"] == pytest.approx(card["accuracy"][split]["all"], abs=TOLERANCE), split
    biased = per_class_accuracy(predict(model, check_splits["debiased"]), check_splits["debiased"].labels)
    assert biased[BIASED_CLASS] < card["accuracy"]["test"][BIASED_CLASS]
