"""The synthetic world's clips as the analyses render them."""

from __future__ import annotations

import numpy as np
import pytest
from stlens.analysis.synthset import render_split, split_indices
from stlens.synth.actions import CROSS_STREAM_PAIR, LABELS


def test_a_split_of_some_classes_holds_only_their_clips_in_the_split_order():
    pair = tuple(LABELS.index(n) for n in CROSS_STREAM_PAIR)
    some = render_split("test", 2, classes=pair)
    assert list(some.labels) == [pair[0], pair[1]] * 2
    assert split_indices(2, pair) == [pair[0], pair[1], pair[0] + len(LABELS), pair[1] + len(LABELS)]
    whole = render_split("test", 2)
    np.testing.assert_array_equal(some.frames[2], whole.frames[pair[0] + len(LABELS)])
    np.testing.assert_array_equal(some.flow[3], whole.flow[pair[1] + len(LABELS)])


def test_a_split_needs_a_clip_a_class():
    with pytest.raises(ValueError, match="per_class"):
        render_split("test", 0, classes=(1,))
    with pytest.raises(ValueError, match="per_class"):
        split_indices(10_000)
