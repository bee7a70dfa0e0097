"""The built-in models of ``stlens serve``: small two-stream nets that run interactively on a CPU.

Trained weights ship in ``weights/<id>.pt`` beside a ``weights/<id>.json`` card (labels, title,
how they were made). Without them a model is built with seeded random weights, so its content
hash, and therefore every visualisation id, is still stable.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from . import small_twostream as small
from .registry import ModelEntry, NaturalClips, NaturalClipSource
from .seeded import seeded, weights_title
from .spec import InputSpec, ModelSpec, Stream
from .spectra import NaturalSpectra, load_spectra

WEIGHTS_DIR = Path(__file__).parent / "weights"
Fusion = Literal["late", "conv"]
RANDOM_CLASSES = 10
SPECTRA = WEIGHTS_DIR / "synth-train-seed0.spectra.npz"  # of the clips both built-ins were trained on


def builtin_spectra() -> NaturalSpectra:
    """The natural spectra of the built-in models' training clips (``stlens train --spectra-only`` makes them)."""
    return load_spectra(SPECTRA)


NATURAL_CLIPS = 1500  # training clips whose principal components the "pca" parameterisation takes


def builtin_natural_clips() -> NaturalClips:
    """The first NATURAL_CLIPS training clips of the built-in models' world (seed 0, as ``stlens train``
    makes them), made again on demand (a few seconds, and nothing to ship; the engine keeps only their
    components)."""
    from ..flow.estimate import estimate_flow  # the world and flow are made from the models' own input specs
    from ..synth.dataset import make_clip

    clips = [make_clip(0, "train", index) for index in range(NATURAL_CLIPS)]
    return {
        "appearance": np.stack([clip.frames[: small.FRAMES] for clip in clips]),
        "motion": np.stack([estimate_flow(clip.frames) for clip in clips]),
    }


def small_inputs() -> dict[Stream, InputSpec]:
    return {
        "appearance": InputSpec(
            channels=3, frames=small.FRAMES, height=small.SIZE, width=small.SIZE,
            mean=small.APPEARANCE_MEAN, std=small.APPEARANCE_STD,
        ),
        "motion": InputSpec(
            channels=2, frames=small.FRAMES, height=small.SIZE, width=small.SIZE, scale=small.FLOW_SCALE
        ),
    }


def _card(model_id: str) -> dict:
    path = WEIGHTS_DIR / f"{model_id}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _build(model_id: str, fusion: Fusion, num_classes: int) -> nn.Module:
    module = seeded(partial(small.SmallTwoStream, num_classes, fusion=fusion))  # where no trained weights ship
    path = WEIGHTS_DIR / f"{model_id}.pt"
    if path.exists():
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return module


def _small_entry(model_id: str, fusion: Fusion, title: str) -> ModelEntry:
    card = _card(model_id)
    labels = tuple(card.get("labels") or (f"class {i}" for i in range(RANDOM_CLASSES)))
    trained = (WEIGHTS_DIR / f"{model_id}.pt").exists()
    spec = ModelSpec(
        id=model_id,
        title=weights_title(card.get("title", title), trained),
        random_weights=not trained,
        inputs=small_inputs(),
        labels=labels,
    )
    build = partial(_build, model_id, fusion, len(labels))
    about = {key: card[key] for key in ("training", "accuracy") if key in card} if trained else None
    description = card.get("description", "")
    return ModelEntry(spec=spec, build=build, description=description, card=about or None, spectra=builtin_spectra,
        natural_clips=NaturalClipSource(f"synth-train-seed0-{NATURAL_CLIPS}", builtin_natural_clips),
    )


def builtin_entries() -> list[ModelEntry]:
    return [
        _small_entry("synth-conv-fusion", "conv", "Synthetic actions, conv fusion"),
        _small_entry("synth-late-fusion", "late", "Synthetic actions, late fusion"),
    ]
