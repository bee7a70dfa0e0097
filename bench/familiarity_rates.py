"""How often the Explain page's out-of-distribution caveat fires (figures go to docs/insights.md).

    python bench/familiarity_rates.py

For each built-in model (stlens.analysis.familiarity): how many of the synthetic samples, of 100 other
test clips and of 50 debiased clips it flags, and how many of six cuts of each real sample video
(strides 1 and 2, from the start, a third and half way in) it flags, and whether the Explain page's own
cut of it (the whole video, stride 1) is flagged. The real samples are the shared ones, where present.
"""

from __future__ import annotations

from pathlib import Path

import torch

from stlens.analysis.clip import clip_inputs, to_tensor
from stlens.analysis.familiarity import familiarity
from stlens.analysis.samples import sample_frames, sample_names
from stlens.analysis.video import decode_video
from stlens.models.builtin import builtin_entries
from stlens.models.registry import prepare
from stlens.synth.dataset import make_clip

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"


def main() -> None:
    torch.set_num_threads(2)
    real = {p.name: decode_video(p.read_bytes()).frames for p in sorted(SAMPLES.glob("*"))} if SAMPLES.is_dir() else {}
    for entry in builtin_entries():
        model = prepare(entry, torch.device("cpu"))

        def flagged(frames, stride=1.0) -> bool:
            clip = clip_inputs(frames, model.spec.inputs, stride)
            return not familiarity(model, {s: to_tensor(x) for s, x in clip.streams.items()}).familiar

        samples = sum(flagged(sample_frames(n)) for n in sample_names())
        test = sum(flagged(make_clip(0, "test", 500 + i, frames=17).frames) for i in range(100))
        debiased = sum(flagged(make_clip(0, "debiased", 300 + i, frames=17).frames) for i in range(50))
        print(f"{entry.spec.id}: samples {samples}/10, other test clips {test}/100, debiased clips {debiased}/50 flagged")
        for name, frames in real.items():
            cuts = [flagged(frames[start:], stride) for stride in (1.0, 2.0) for start in (0, len(frames) // 3, len(frames) // 2)]
            print(f"  {name}: {sum(cuts)}/6 cuts flagged; the page's own cut: {'flagged' if flagged(frames) else 'not flagged'}")


if __name__ == "__main__":
    main()
