"""Random-weight models: the same weights on every build, in any thread, without touching anyone's random stream."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from stlens.models.registry import weights_hash
from stlens.models.seeded import seeded, weights_title


def wide() -> nn.Module:
    return nn.Sequential(*(nn.Linear(64, 64) for _ in range(8)))


def test_a_seeded_build_leaves_the_global_generator_where_it_was():
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    seeded(wide)
    assert torch.equal(torch.rand(4), expected)


def test_seeded_builds_in_many_threads_give_the_same_weights():
    alone = weights_hash(seeded(wide))
    with ThreadPoolExecutor(max_workers=4) as pool:
        hashes = set(pool.map(lambda _: weights_hash(seeded(wide)), range(8)))
    assert hashes == {alone}


def test_titles_say_where_the_weights_come_from():
    assert weights_title("Net", trained=False, source="Kinetics-400") == "Net (random weights)"
    assert weights_title("Net", trained=True, source="Kinetics-400") == "Net (Kinetics-400)"
    assert weights_title("Net", trained=True) == "Net"
