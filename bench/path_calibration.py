"""Does the path-similarity measure tell real clips from noise? Its calibration, on real clips only.

1. For every class logit of the conv-fusion model: two training-split clips of the class (never among
   the test clips the measure compares with) and one clip of noise (uniform RGB, Gaussian flow of 4 px).
2. For units 0-15 of ``fusion.conv`` and ``motion.conv3``: the training clip (of the first 200) that
   drives the unit hardest.
A faithful measure passes the real clips (path similarity at more than half the earlier layers) and
fails the noise; what real clips reach is the ceiling a visualisation can be held to. No visualisation
takes part, so the measure is not tuned to what it measures.
Run: python bench/path_calibration.py (about two minutes).
"""

from __future__ import annotations

import numpy as np
import torch

from stlens.analysis.faithfulness import assess
from stlens.analysis.units import layer_activations
from stlens.engine import VisualizationSettings
from stlens.flow.estimate import estimate_flow
from stlens.models.builtin import builtin_entries
from stlens.models.registry import LoadedModel, prepare
from stlens.synth.actions import LABELS
from stlens.synth.dataset import SplitData, make_clip

CLIPS_PER_CLASS = 2
TRAINING_CLIPS = 200
UNITS = 16
LAYERS = ("fusion.conv", "motion.conv3")


def training_clip(label: int, index: int) -> dict[str, np.ndarray]:
    clip = make_clip(0, "train", label + len(LABELS) * index)
    return {"appearance": clip.frames[:-1].astype(np.float32) / 255, "motion": estimate_flow(clip.frames)}


def calibrate(model: LoadedModel) -> list[str]:
    """The calibration's findings, a line each."""
    rng = np.random.default_rng(0)
    noise = {
        "appearance": rng.random((8, 64, 64, 3)).astype(np.float32),
        "motion": rng.normal(0, 4, (8, 64, 64, 2)).astype(np.float32),
    }
    settings = VisualizationSettings()
    real, fake = [], []
    for label in range(len(LABELS)):
        for index in range(CLIPS_PER_CLASS):
            path = assess(model, "logits", label, settings, training_clip(label, index)).path
            real.append(path.holds_at / path.of)
        path = assess(model, "logits", label, settings, noise).path
        fake.append(path.holds_at / path.of)
    lines = []
    for name, shares in (("held-out clips of the class", real), ("noise", fake)):
        passed = sum(share > 0.5 for share in shares)
        lines.append(f"class logits, {name}: pass {passed}/{len(shares)}, {100 * np.mean(shares):.0f}% of layers held")
    clips = [make_clip(0, "train", i) for i in range(TRAINING_CLIPS)]
    data = SplitData(
        frames=np.stack([c.frames[:-1] for c in clips]),
        flow=np.stack([estimate_flow(c.frames) for c in clips]).astype(np.float16),
        labels=np.array([c.label for c in clips]),
    )
    for layer in LAYERS:
        batches = [data.batch(slice(i, i + 50)) for i in range(0, TRAINING_CLIPS, 50)]
        means = torch.cat([layer_activations(model, layer, b).flatten(2).mean(-1) for b in batches])
        streams = model.layer(layer).inputs
        passed = 0
        for unit in range(UNITS):
            best = int(means[:, unit].argmax())
            clip = {"appearance": data.frames[best] / 255, "motion": data.flow[best].astype(np.float32)}
            path = assess(model, layer, unit, settings, {s: clip[s].astype(np.float32) for s in streams}).path
            passed += 2 * path.holds_at > path.of
        lines.append(f"`{layer}` units 0-{UNITS - 1}, the strongest of {TRAINING_CLIPS} training clips: pass {passed}/{UNITS}")
    return lines


def conv_fusion() -> LoadedModel:
    return prepare(next(e for e in builtin_entries() if e.spec.id == "synth-conv-fusion"), torch.device("cpu"))


def main() -> None:
    torch.set_num_threads(1)
    for line in calibrate(conv_fusion()):
        print(line)


if __name__ == "__main__":
    main()
