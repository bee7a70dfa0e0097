"""Judges: independently trained nets of the synthetic world that say what a visualisation shows.

A class visualisation of one model is only evidence of the class if models that never took part in
its optimisation recognise it too. The judges are the other built-in models and the nets that
``stlens train --judges`` ships in ``weights/judges/`` (a second conv-fusion net from another seed, the
appearance-only and motion-only baselines). The engine never optimises against a judge: only
``stlens.analysis.faithfulness`` loads them, after a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import small_twostream as small
from .builtin import WEIGHTS_DIR

JUDGES_DIR = WEIGHTS_DIR / "judges"
_BUILDERS = {
    "conv-fusion": small.small_conv_fusion,
    "late-fusion": small.small_late_fusion,
    "appearance": lambda n: small.small_single_stream(n, "appearance"),
    "motion": lambda n: small.small_single_stream(n, "motion"),
}
_BUILTIN_KINDS = {"synth-conv-fusion": "conv-fusion", "synth-late-fusion": "late-fusion"}


def judge_id(kind: str, seed: int) -> str:
    """The id a judge of ``kind`` trained with ``seed`` ships under."""
    return f"synth-{kind}-seed{seed}"


@dataclass(frozen=True)
class Judge:
    """A judge ready to predict: its id, the streams it reads and its module (eval mode, CPU)."""

    id: str
    title: str
    kind: str
    streams: tuple[str, ...]
    module: nn.Module
    card: dict[str, Any]

    @property
    def two_stream(self) -> bool:
        return len(self.streams) == 2

    @torch.no_grad()
    def probabilities(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Class probabilities (N, K) for model-space inputs of the built-in models."""
        return self.module(**{s: inputs[s] for s in self.streams}).softmax(1)


def _load(path: Path, kind: str, model_id: str) -> Judge:
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    labels = card.get("labels") or []
    module = _BUILDERS[kind](len(labels))
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    streams = ("appearance", "motion") if kind in ("conv-fusion", "late-fusion") else (kind,)
    return Judge(id=model_id, title=card.get("title", model_id), kind=kind, streams=streams, module=module, card=card)


@lru_cache(maxsize=1)
def all_judges() -> tuple[Judge, ...]:
    """Every trained net of the synthetic world that ships: the built-ins and the judges (loaded once)."""
    found = [
        _load(WEIGHTS_DIR / f"{model_id}.pt", kind, model_id)
        for model_id, kind in _BUILTIN_KINDS.items()
        if (WEIGHTS_DIR / f"{model_id}.pt").exists()
    ]
    for path in sorted(JUDGES_DIR.glob("*.pt")):
        card = json.loads(path.with_suffix(".json").read_text())
        found.append(_load(path, card["kind"], path.stem))
    return tuple(found)


def judges_of(model_id: str) -> list[Judge]:
    """The judges of a built-in model: every other shipped net of the synthetic world (none for other models)."""
    if model_id not in _BUILTIN_KINDS:
        return []
    return [j for j in all_judges() if j.id != model_id]
