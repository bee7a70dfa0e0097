"""``stlens natural-clips``: cut a clips file for a model of a model file, from videos of its world.

Each video gives ``--per-video`` clips, their starts spread evenly over it; a clip is T + 1
consecutive frames, cropped and resized as the page's explain path does (stlens.analysis.clip),
with the flow between them by the model's own estimator (``flow`` in its table). The model file's
table is only read (not built), so its ``natural_clips`` may already name the file being made.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import av
import numpy as np
from pydantic import ValidationError
from tqdm import tqdm

from ..models.modelfile import ModelFile, ModelFileModel
from ..models.natural_clips import MIN_CLIPS, check_clips_file, save_clips_file
from ..models.registry import NaturalClips
from ..models.spec import FlowMethod, InputSpec, Stream
from .clip import clip_inputs

MAX_PER_VIDEO = 64
MAX_FRAMES = 3000  # of one video: at most its first 3000 frames are decoded (about 1.3 GB at 224 px)


def _frames(path: Path, side: int) -> np.ndarray:
    """The frames of ``path`` (the first MAX_FRAMES) as RGB uint8, the shorter side brought to ``side``
    (what the crop needs)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        scale = side / min(width, height)
        size = max(side, round(width * scale)), max(side, round(height * scale))
        frames = [
            f.reformat(*size, format="rgb24").to_ndarray() for f, _ in zip(container.decode(stream), range(MAX_FRAMES))
        ]
    if not frames:
        raise ValueError(f"{path} has no frames")
    return np.stack(frames)


def _starts(frames: int, length: int, count: int) -> Iterator[int]:
    """Up to ``count`` distinct starts of ``length``-frame windows, spread evenly over ``frames``."""
    if frames < length:
        return iter(())
    return iter(sorted(set(np.linspace(0, frames - length, count).round().astype(int).tolist())))


def cut_clips(
    videos: list[Path], inputs: Mapping[Stream, InputSpec], flow: FlowMethod, per_video: int, progress: bool = True
) -> NaturalClips:
    """The clips of ``videos`` for a model of ``inputs``: RGB uint8 and flow in pixels, (N, T, H, W, C)."""
    length = max(spec.frames for spec in inputs.values()) + 1
    side = max(max(spec.height, spec.width) for spec in inputs.values())
    cut: dict[Stream, list[np.ndarray]] = {s: [] for s in inputs}
    for path in tqdm(videos, desc="natural clips", unit="video", disable=not progress):
        frames = _frames(path, side)
        for start in _starts(len(frames), length, per_video):
            clip = clip_inputs(frames[start : start + length], inputs, 1.0, flow, cache=None)
            for stream, values in clip.streams.items():
                cut[stream].append(np.rint(values * 255).astype(np.uint8) if stream == "appearance" else values)
    return {s: np.stack(x) for s, x in cut.items() if x}


def _model(path: Path, model_id: str) -> ModelFileModel:
    try:
        parsed = ModelFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise SystemExit(f"{path}: cannot be read as a model file: {' '.join(str(exc).split())}") from exc
    for model in parsed.models:
        if model.id == model_id:
            return model
    raise SystemExit(f"{path} has no model {model_id!r} (it has {', '.join(m.id for m in parsed.models)})")


def add_natural_clips_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", type=Path, nargs="+", help="videos of the model's world (MP4, WebM, AVI, ...)")
    parser.add_argument("--models", type=Path, required=True, help="the model file (TOML) that has the model")
    parser.add_argument("--model", required=True, help="the model's id in it")
    parser.add_argument("--out", type=Path, required=True, help="the clips file to write (.npz)")
    parser.add_argument("--per-video", type=int, default=8, help=f"clips cut from each video (1 to {MAX_PER_VIDEO})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_natural_clips(args: argparse.Namespace) -> int:
    if not 1 <= args.per_video <= MAX_PER_VIDEO:
        raise SystemExit(f"--per-video must be 1 to {MAX_PER_VIDEO}")
    model = _model(args.models, args.model)
    try:
        clips = cut_clips(args.videos, model.inputs, model.flow, args.per_video, progress=not args.quiet)
    except (OSError, ValueError, av.error.FFmpegError) as exc:
        raise SystemExit(f"cannot cut clips: {exc}") from exc
    count = min((len(x) for x in clips.values()), default=0)
    if len(clips) < len(model.inputs) or count < MIN_CLIPS:
        raise SystemExit(f"{count} clips cut; a clips file needs at least {MIN_CLIPS}: give more or longer videos")
    save_clips_file(args.out, clips)
    check_clips_file(args.out, model.inputs)
    print(f"{count} clips of {len(args.videos)} videos written to {args.out}")
    return 0
