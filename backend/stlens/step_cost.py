"""How long one optimisation step of a layer takes here, before it has ever run here.

A visualisation's cost is its steps times the seconds a step of its layer takes on this machine.
Once a layer has run here its pace is measured (the cache keeps it). Before that it is estimated
as ``overhead + operations / rate``:

- the operations of a step are twice those of the forward pass up to the layer (the backward pass
  to the inputs costs about as much as the forward), counted by ``torch.utils.flop_counter`` in the
  dry run that finds the layers when a model is loaded (``LayerInfo.forward_flops``), so nothing is
  run for an estimate;
- the rate is what 3D convolutions achieve on the device, forward and backward to the input, timed
  on a video-net-sized convolution; the overhead is what a real engine step costs beyond its
  operations (transforms, parameterisation, Adam, Python), timed on the built-in conv-fusion net.
  Both are measured once per process and device.

Measured on a busy machine both err towards a higher cost. Deep nets of small convolutions run
below the rate and are underestimated up to about 3 times, and a layer whose backward pass covers
only part of the forward (the first layer of the stream that runs second) is overestimated up to
twice; ``docs/reliability.md`` compares estimates with measured paces.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .engine import VisualizationSettings, visualize
from .engine.eigenclips import COMPONENTS, has_eigenclips
from .models.registry import LoadedModel
from .models.spec import LOGITS

REFERENCE_MODEL = "synth-conv-fusion"  # built in: every server has it
REFERENCE_LAYER = "logits"
REFERENCE_STEPS = 8  # the first is a warm-up; the fastest of the others counts (robust to a busy machine)
RATE_REPEATS = 3


@dataclass(frozen=True)
class StepCost:
    seconds: float
    source: Literal["measured", "estimated"]


@dataclass(frozen=True)
class DeviceSpeed:
    flops_per_second: float  # 3D convolutions, forward and backward to the input
    overhead_s: float  # of an engine step, beyond its operations


def network_flops(model: LoadedModel, layer: str) -> int:
    """Floating-point operations of the network's part of one optimisation step of ``layer``, one item."""
    return 2 * model.layer(layer).forward_flops


def step_flops(model: LoadedModel, layer: str) -> int:
    """Floating-point operations of one optimisation step of ``layer`` for one item under the layer's
    default parameterisation: the network's, and at the class logits of a model with natural clips the
    eigenclip basis's (a product with the components and one back, per stream)."""
    flops = network_flops(model, layer)
    if layer == LOGITS and has_eigenclips(model):
        flops += sum(4 * COMPONENTS * math.prod(model.spec.inputs[s].shape) for s in model.layer(layer).inputs)
    return flops


def _fastest(run: Callable[[], None], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def convolution_rate(device: torch.device) -> float:
    """FLOP a second of a 3D convolution the size of a video net's (forward, backward to the input)."""
    conv = nn.Conv3d(32, 64, 3, padding=1).to(device).requires_grad_(False)
    clip = torch.randn(1, 32, 8, 56, 56, device=device, requires_grad=True)

    def step() -> None:
        conv(clip).sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # warm-up
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / max(_fastest(step, RATE_REPEATS), 1e-9)


class StepCostEstimator:
    """Seconds a step of a layer takes here: its measured pace, else an estimate from its operations
    and this machine's measured speed. ``reference`` makes a private copy of the reference model on
    a device (timing it never waits for a job's lock on the shared one). Thread-safe; each device's
    speed is measured once."""

    def __init__(self, reference: Callable[[torch.device], LoadedModel]):
        self._reference = reference
        self._speeds: dict[str, DeviceSpeed] = {}
        self._lock = threading.Lock()

    def speed(self, device: torch.device) -> DeviceSpeed:
        with self._lock:
            if str(device) not in self._speeds:
                self._speeds[str(device)] = self._measure(device)
            return self._speeds[str(device)]

    def _measure(self, device: torch.device) -> DeviceSpeed:
        rate = convolution_rate(device)
        reference = self._reference(device)
        ticks: list[float] = []
        # spectrum, which never waits for the eigenclips; step_flops adds the pca basis's share
        settings = VisualizationSettings(steps=REFERENCE_STEPS, param="spectrum")
        visualize(reference, REFERENCE_LAYER, 0, settings, progress=lambda _: ticks.append(time.perf_counter()))
        step = min(later - earlier for earlier, later in itertools.pairwise(ticks))
        return DeviceSpeed(rate, max(0.0, step - network_flops(reference, REFERENCE_LAYER) / rate))

    def seconds_per_step(self, model: LoadedModel, layer: str, measured: dict[str, float]) -> StepCost:
        """``measured``: the model's paces here (layer -> seconds a step), as the cache keeps them."""
        if measured.get(layer):
            return StepCost(measured[layer], "measured")
        speed = self.speed(model.device)
        return StepCost(speed.overhead_s + step_flops(model, layer) / speed.flops_per_second, "estimated")
