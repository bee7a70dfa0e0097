"""Optimisations stepped from outside: alone exactly visualize's run, together one batch through the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stlens.engine import VisualizationSettings, visualize
from stlens.engine.render import LayerRunner, Optimisation, batch_key, step_together
from stlens.models.builtin import builtin_entries
from stlens.models.registry import prepare

LAYER = "fusion.conv"


@pytest.fixture(scope="module")
def model():
    return prepare(builtin_entries()[0], torch.device("cpu"))


def run_to_the_end(model, optimisations: list[Optimisation], joins: dict[int, Optimisation] | None = None):
    """Step every unfinished optimisation together until all are done; ``joins``: more that join
    after that many rounds."""
    joins = dict(joins or {})
    runner = LayerRunner(model, LAYER, None)
    rounds = 0
    try:
        while (active := [o for o in optimisations if not o.done]) or joins:
            if rounds in joins:
                optimisations.append(joins.pop(rounds))
                active = [o for o in optimisations if not o.done]
            if active:
                step_together(runner, active)
            rounds += 1
        return [o.result(runner) for o in optimisations]
    finally:
        runner.close()


def test_an_optimisation_stepped_alone_is_visualize_bit_for_bit(model):
    settings = VisualizationSettings(steps=6, seed=3)
    alone = visualize(model, LAYER, 5, settings)
    (stepped,) = run_to_the_end(model, [Optimisation(model, LAYER, 5, settings)])
    for stream, clip in alone.inputs.items():
        assert np.array_equal(stepped.inputs[stream], clip) and np.array_equal(stepped.alpha[stream], alone.alpha[stream])
    assert stepped.objective == alone.objective and stepped.steps == 6


def test_optimisations_that_join_and_leave_a_batch_each_follow_their_own_run(model):
    """Different units, seeds, weights and lengths, one joining two steps late: each ends where it
    would alone, up to the batched kernels' rounding (which Adam's normalised steps grow: after 8
    steps a few values in 10^5 differ by 10^-3)."""
    asked = [
        (3, VisualizationSettings(steps=8)),
        (7, VisualizationSettings.model_validate({"steps": 5, "seed": 2, "weights": {"tv_space": 0.2}})),
        (11, VisualizationSettings(steps=6, seed=9, lr=0.03)),
    ]
    first, second, late = (Optimisation(model, LAYER, unit, settings) for unit, settings in asked)
    results = run_to_the_end(model, [first, second], joins={2: late})
    assert [o.step for o in (first, second, late)] == [8, 5, 6]
    for (unit, settings), together in zip(asked, results):
        alone = visualize(model, LAYER, unit, settings)
        for stream, clip in alone.inputs.items():
            difference = np.abs(together.inputs[stream] - clip)
            assert difference.mean() < 1e-4 * np.abs(clip).mean() and difference.max() < 1e-2, stream
        assert together.objective[0] == pytest.approx(alone.objective[0], rel=1e-3)


def test_what_may_step_together(model):
    def key(layer: str = LAYER, **settings):
        return batch_key(model, layer, VisualizationSettings(**settings), has_start=False)

    assert key(steps=2) == key(steps=9, seed=4, lr=0.1)
    assert key(steps=2) != key("logits", steps=2)
    assert key(steps=2) != key(objective="neuron")
    assert key() != batch_key(model, LAYER, VisualizationSettings(), has_start=True)
    assert key(diversity=1.0) is None  # a diversity objective compares its own batch only: it steps alone
