"""Step-cost estimates: operations counted in the layer dry run, a device's speed measured once."""

from __future__ import annotations

import math
import threading

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from stlens.models.builtin import builtin_entries
from stlens.models.introspect import LayerProbe
from stlens.models.registry import prepare
from stlens.engine.eigenclips import COMPONENTS
from stlens.step_cost import StepCostEstimator, convolution_rate, network_flops, step_flops

MODEL = "synth-conv-fusion"


@pytest.fixture(scope="module")
def entry():
    return next(e for e in builtin_entries() if e.spec.id == MODEL)


@pytest.fixture(scope="module")
def model(entry):
    torch.set_num_threads(1)
    return prepare(entry, torch.device("cpu"))


def forward_flops_up_to(model, layer: str) -> int:
    """The forward pass cut at ``layer``, counted on its own: what the dry run's figure must match."""
    probe = LayerProbe(model.module, layer)
    inputs = {s: torch.zeros(1, *spec.shape) for s, spec in model.spec.inputs.items()}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        probe(inputs)
    probe.close()
    return counter.get_total_flops()


def test_each_layers_forward_operations_are_those_of_the_forward_cut_there(model):
    for layer in model.layers:
        assert layer.forward_flops == forward_flops_up_to(model, layer.id) > 0, layer.id
    costs = [layer.forward_flops for layer in model.layers]
    assert costs == sorted(costs) and network_flops(model, "logits") == 2 * costs[-1]
    # the class logits' default basis, the eigenclips, adds a product with the components and one back
    basis = sum(4 * COMPONENTS * math.prod(spec.shape) for spec in model.spec.inputs.values())
    assert model.natural_clips is not None and step_flops(model, "logits") == network_flops(model, "logits") + basis
    assert step_flops(model, "fusion.conv") == network_flops(model, "fusion.conv")


def test_a_measured_pace_wins_and_an_estimate_grows_with_the_layer(model, entry):
    made: list[torch.device] = []

    def reference(device: torch.device):
        made.append(device)
        return prepare(entry, device)

    estimator = StepCostEstimator(reference)
    assert estimator.seconds_per_step(model, "fusion.conv", {"fusion.conv": 0.25}).source == "measured"
    early = estimator.seconds_per_step(model, "appearance.conv1", {"fusion.conv": 0.25})
    late = estimator.seconds_per_step(model, "logits", {})
    assert early.source == late.source == "estimated"
    assert 0 < early.seconds < late.seconds
    assert made == [torch.device("cpu")]  # the device's speed was measured once
    speed = estimator.speed(torch.device("cpu"))
    assert speed.flops_per_second > 0 and speed.overhead_s >= 0


def test_estimating_never_waits_for_a_job_on_the_shared_model(model, entry):
    """The speed is measured on a private copy: holding the shared model's lock does not block it."""
    estimator = StepCostEstimator(lambda device: prepare(entry, device))
    done = threading.Event()
    with model.lock:  # as a running job holds it
        worker = threading.Thread(target=lambda: (estimator.seconds_per_step(model, "logits", {}), done.set()))
        worker.start()
        worker.join(timeout=120)
    assert done.is_set()


def test_the_convolution_rate_is_a_rate():
    assert convolution_rate(torch.device("cpu")) > 1e6
