"""Tiny two-stream nets with hand-set weights whose units have known preferences."""

from __future__ import annotations

import math
import os

from functools import cache, partial

import numpy as np
import torch
from stlens.models.registry import LoadedModel, ModelEntry, NaturalClipSource, prepare
from stlens.models.spec import InputSpec, ModelSpec
from stlens.models.spectra import NaturalSpectra, measure_spectra
from torch import nn

FRAMES = 4
SIZE = 16
FLOW_SCALE = 2.0
# where the engine tests run: the CPU, or ``STLENS_TEST_DEVICE=cuda`` to run the same proofs on a GPU
DEVICE = torch.device(os.environ.get("STLENS_TEST_DEVICE", "cpu"))


def tiny_inputs(frames: int = FRAMES, size: int = SIZE) -> dict[str, InputSpec]:
    return {
        "appearance": InputSpec(channels=3, frames=frames, height=size, width=size, mean=(0.5,) * 3, std=(0.25,) * 3),
        "motion": InputSpec(channels=2, frames=frames, height=size, width=size, scale=FLOW_SCALE),
    }


@cache
def tiny_world_clips(frames: int = FRAMES, size: int = SIZE, clips: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The tiny nets' world: coloured bars of any orientation on grey, moving along any direction at up
    to 3 px a frame, and in every other clip a camera panning as fast over a still bar (the whole view
    moves), as the hand-set units expect. RGB (N, T, H, W, 3) uint8 and flow (N, T, H, W, 2) pixels."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:size, 0:size]
    rgb = np.empty((clips, frames, size, size, 3), np.uint8)
    flow = np.zeros((clips, frames, size, size, 2), np.float32)
    for n in range(clips):
        angle, direction = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        velocity = rng.uniform(0, 3) * np.array([np.cos(direction), np.sin(direction)])
        colour, ground = rng.integers(0, 256, 3), rng.integers(64, 192)
        panning = n % 2 == 1
        for t in range(frames):
            cx, cy = size / 2 + velocity * t
            across = (xs - cx) * np.sin(angle) - (ys - cy) * np.cos(angle)
            bar = np.abs(across) < 2
            rgb[n, t] = ground
            rgb[n, t][bar] = colour
            if panning:
                flow[n, t] = velocity
            else:
                flow[n, t][bar] = velocity
    return rgb, flow


@cache
def tiny_world_spectra(frames: int = FRAMES, size: int = SIZE) -> NaturalSpectra:
    """The natural spectra of the tiny nets' world (the spectrum parameterisation keeps a clip near its
    model's data, so the data must be what its units see: a pointwise speed unit sees the whole view move)."""
    rgb, flow = tiny_world_clips(frames, size)
    return measure_spectra(rgb, flow, FLOW_SCALE, "moving bars (tests/engine/tiny_nets.py)")


def tiny_world_natural_clips(frames: int = FRAMES, size: int = SIZE) -> dict[str, np.ndarray]:
    """The tiny world's clips as a model's ``natural_clips`` (param "pca")."""
    rgb, flow = tiny_world_clips(frames, size)
    return {"appearance": rgb, "motion": flow}


def load(
    module: nn.Module, inputs: dict[str, InputSpec] | None = None, classes: int = 2, device: torch.device = DEVICE,
    natural_clips: bool = False,
) -> LoadedModel:
    """``natural_clips``: the model declares the tiny world's clips (so its class logits default to "pca")."""
    inputs = inputs or tiny_inputs()
    spec = ModelSpec(id="tiny", title="tiny", inputs=inputs, labels=tuple(f"c{i}" for i in range(classes)))
    frames, size = inputs["appearance" if "appearance" in inputs else "motion"].frames, next(iter(inputs.values())).height
    clips = NaturalClipSource(f"tiny-world-{frames}-{size}", partial(tiny_world_natural_clips, frames, size))
    spectra = partial(tiny_world_spectra, frames, size)
    entry = ModelEntry(spec=spec, build=lambda: module, spectra=spectra, natural_clips=clips if natural_clips else None)
    return prepare(entry, device)


def pointwise(weights: list[list[float]], bias: list[float] | None = None, in_channels: int | None = None) -> nn.Conv3d:
    """A 1x1x1 conv with the given (out, in) weights."""
    w = torch.tensor(weights, dtype=torch.float32)
    conv = nn.Conv3d(in_channels or w.shape[1], w.shape[0], 1, bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(w.view(*w.shape, 1, 1, 1))
        if bias is not None:
            conv.bias.copy_(torch.tensor(bias))
    return conv


def direction(degrees: float) -> list[float]:
    """Unit vector (x, y) of a flow direction, in degrees."""
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


class TwoTowers(nn.Module):
    """``appearance.*`` and ``motion.*`` towers, pooled and summed into logits.

    ``partial_inputs`` as in the built-in models: a tower runs only when its stream is given.
    """

    def __init__(self, appearance: nn.Module, motion: nn.Module, features: int, classes: int = 2, partial_inputs: bool = True):
        super().__init__()
        self.appearance = appearance
        self.motion = motion
        self.partial_inputs = partial_inputs
        self.head = nn.Linear(features, classes)

    def forward(self, appearance: torch.Tensor | None = None, motion: torch.Tensor | None = None) -> torch.Tensor:
        features = []
        for name, x in (("appearance", appearance), ("motion", motion)):
            if x is not None:
                features.append(getattr(self, name)(x).flatten(2).mean(2))
        if len(features) < 2:
            raise ValueError("the logits need both streams")
        return self.head(torch.cat(features, 1))
