"""``stlens export-dataset``: write held-out splits as real MP4 files, to try the upload path with them.

Each clip becomes ``<out>/<split>/<class>/<split>-<index>.mp4`` (H.264); ``<out>/clips.csv`` lists path,
split, index and class. With the default ``--frames`` (FRAMES + 1) a file holds exactly the frames the
models were evaluated on; longer clips continue the motion (their background is drawn anew at the size the
longer pan needs).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from tqdm import tqdm

from ..media.encode import mp4
from ..media.frames import enlarge
from ..models.small_twostream import FRAMES
from .actions import LABELS
from .dataset import MAX_CLIP_FRAMES, MAX_PER_CLASS, SPLITS, Split, make_clip

MAX_ENLARGE = 8


def export_split(
    out: Path, seed: int, split: Split, per_class: int, frames: int, fps: int, factor: int, progress: bool = True
) -> list[tuple[str, str, int, str]]:
    """Write one split's clips; returns the (relative path, split, index, class) rows."""
    rows: list[tuple[str, str, int, str]] = []
    for index in tqdm(range(per_class * len(LABELS)), desc=f"export {split}", unit="clip", disable=not progress):
        clip = make_clip(seed, split, index, frames)
        name = LABELS[clip.label]
        relative = Path(split) / name.replace(" ", "_") / f"{split}-{index:05d}.mp4"
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(mp4(enlarge(clip.frames, factor), fps=fps))
        rows.append((relative.as_posix(), split, index, name))
    return rows


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="folder to write the videos into")
    parser.add_argument("--splits", nargs="+", choices=list(SPLITS), default=["test", "debiased"])
    parser.add_argument("--seed", type=int, default=0, help="the seed the models were trained and tested with")
    parser.add_argument("--per-class", type=int, default=5, help="clips of each class in each split")
    parser.add_argument("--frames", type=int, default=FRAMES + 1, help="frames a clip")
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--enlarge", type=int, default=1, help="integer pixel enlargement (nearest neighbour)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run_export(args: argparse.Namespace) -> int:
    if not 1 <= args.per_class <= MAX_PER_CLASS:
        raise SystemExit(f"--per-class must be 1 to {MAX_PER_CLASS}")
    if not 2 <= args.frames <= MAX_CLIP_FRAMES:
        raise SystemExit(f"--frames must be 2 to {MAX_CLIP_FRAMES}")
    if not (1 <= args.fps <= 60 and 1 <= args.enlarge <= MAX_ENLARGE):
        raise SystemExit(f"--fps must be 1 to 60 and --enlarge 1 to {MAX_ENLARGE}")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for split in args.splits:
        rows += export_split(
            args.out, args.seed, split, args.per_class, args.frames, args.fps, args.enlarge, not args.quiet
        )
    with (args.out / "clips.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("path", "split", "index", "class"))
        writer.writerows(rows)
    print(f"wrote {len(rows)} clips to {args.out}")
    return 0
