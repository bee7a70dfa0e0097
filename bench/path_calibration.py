"""Does the path-similarity measure tell real clips from noise? Its calibration, on real clips only.

For every class logit of the conv-fusion model: two training-split clips of the class (never among the
test clips the measure compares with) and one clip of noise (uniform RGB, Gaussian flow of 4 px). A
faithful measure passes the real clips (path similarity at more than half the earlier layers) and fails
the noise. No visualisation takes part, so the measure is not tuned to what it measures.
Run: python bench/path_calibration.py (about a minute).
"""

from __future__ import annotations

import numpy as np
import torch

from stlens.analysis.faithfulness import assess
from stlens.engine import VisualizationSettings
from stlens.flow.estimate import estimate_flow
from stlens.models.builtin import builtin_entries
from stlens.models.registry import prepare
from stlens.synth.actions import LABELS
from stlens.synth.dataset import make_clip

CLIPS_PER_CLASS = 2


def training_clip(label: int, index: int) -> dict[str, np.ndarray]:
    clip = make_clip(0, "train", label + len(LABELS) * index)
    return {"appearance": clip.frames[:-1].astype(np.float32) / 255, "motion": estimate_flow(clip.frames)}


def main() -> None:
    torch.set_num_threads(1)
    model = prepare(next(e for e in builtin_entries() if e.spec.id == "synth-conv-fusion"), torch.device("cpu"))
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
    for name, shares in (("real clips", real), ("noise", fake)):
        passed = sum(share > 0.5 for share in shares)
        print(f"{name}: pass {passed}/{len(shares)}, layers held {100 * np.mean(shares):.0f}% on average")


if __name__ == "__main__":
    main()
