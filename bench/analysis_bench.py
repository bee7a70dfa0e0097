"""Benchmark of the Explain pipeline and the dataset-examples index (figures go to docs/insights.md).

    python bench/analysis_bench.py [--threads 1] [--video PATH ...]

Times, best of three, on the built-in conv-fusion model: decoding a video (each ``--video``, default
the shared samples where present), sampling the clip and estimating flow, and ``explain`` (prediction,
Grad-CAM, top units); then rendering the example clips and indexing all units of ``fusion.conv``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

from stlens.analysis.clip import clip_inputs
from stlens.analysis.examples import dataset_examples
from stlens.analysis.explain import explain
from stlens.analysis.samples import sample_frames
from stlens.analysis.synthset import batches, example_clips
from stlens.analysis.units import default_layer
from stlens.analysis.video import decode_video
from stlens.models.builtin import builtin_entries
from stlens.models.registry import prepare

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"


def best_of_three(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--video", type=Path, nargs="*", default=sorted(SAMPLES.glob("*")) if SAMPLES.is_dir() else [])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = prepare(next(e for e in builtin_entries() if e.spec.id == "synth-conv-fusion"), torch.device("cpu"))
    layer = default_layer(model)
    sources = {"sample synth-walk": sample_frames("synth-walk")}
    for path in args.video:
        data = path.read_bytes()
        print(f"decode {path.name} ({len(data)} bytes): {best_of_three(lambda d=data: decode_video(d)):.3f} s")
        sources[path.name] = decode_video(data).frames
    for name, frames in sources.items():
        clip = clip_inputs(frames, model.spec.inputs)
        prepare_s = best_of_three(lambda f=frames: clip_inputs(f, model.spec.inputs, cache=None))
        explain_s = best_of_three(lambda c=clip: explain(model, c, layer))
        print(f"{name}: clip + flow {prepare_s:.3f} s, explain {explain_s:.3f} s")
    start = time.perf_counter()
    clips = example_clips()
    render_s = time.perf_counter() - start
    index_s = best_of_three(lambda: dataset_examples(model, "fusion.conv", batches(clips), k=8))
    print(f"example clips ({len(clips)}): render + flow {render_s:.2f} s; index all fusion.conv units {index_s:.3f} s")


if __name__ == "__main__":
    main()
