"""``stlens export-dataset`` writes real, decodable videos of the held-out clips."""

from __future__ import annotations

import argparse
import csv

import av
import numpy as np
import pytest

from stlens.models.small_twostream import FRAMES, SIZE
from stlens.synth.actions import LABELS
from stlens.synth.dataset import make_clip
from stlens.synth.export import add_export_arguments, run_export


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_export_arguments(parser)
    return parser.parse_args(list(argv))


def test_export_writes_one_decodable_mp4_a_clip_and_a_listing(tmp_path):
    assert run_export(_parse(str(tmp_path), "--per-class", "1", "--splits", "debiased", "--quiet")) == 0
    with (tmp_path / "clips.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows] == list(LABELS) and {r["split"] for r in rows} == {"debiased"}
    row = rows[3]
    with av.open(str(tmp_path / row["path"])) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert frames.shape == (FRAMES + 1, SIZE, SIZE, 3)
    original = make_clip(0, "debiased", int(row["index"])).frames
    assert np.abs(frames.astype(int) - original.astype(int)).mean() < 8  # H.264 at crf 18: close, not exact


@pytest.mark.parametrize("argv", [["--per-class", "0"], ["--frames", "1"], ["--enlarge", "20"], ["--fps", "0"]])
def test_export_refuses_out_of_range_sizes(tmp_path, argv):
    with pytest.raises(SystemExit):
        run_export(_parse(str(tmp_path), *argv))
