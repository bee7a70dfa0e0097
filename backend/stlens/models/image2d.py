"""2D image classifiers as appearance-only models on one-frame clips.

The engine works on clips (N, C, T, H, W); a torchvision classifier takes images (N, C, H, W).
Wrapping it as a model whose appearance input has a single frame lets every part of stlens
(layer discovery, the engine, the API) treat it like any other model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from .registry import ModelEntry
from .spec import InputSpec, ModelSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageClassifierClip(nn.Module):
    """``classifier`` applied to the single frame of an appearance clip (N, 3, 1, H, W).

    ``layers`` names modules of the classifier to offer as layers (e.g. ``["layer2"]`` for a
    ResNet's blocks); without it every conv and linear module counts.
    """

    partial_inputs = True

    def __init__(self, classifier: nn.Module, layers: Sequence[str] | None = None):
        super().__init__()
        self.classifier = classifier
        if layers is not None:
            self.stlens_layers = [f"classifier.{name}" for name in layers]

    def forward(self, appearance: torch.Tensor | None = None, motion: torch.Tensor | None = None) -> torch.Tensor:
        if appearance is None or appearance.shape[2] != 1:
            raise ValueError("an image classifier needs an appearance clip of exactly one frame")
        return self.classifier(appearance[:, :, 0])


def _build(make_classifier: Callable[[], nn.Module], layers: Sequence[str] | None) -> nn.Module:
    return ImageClassifierClip(make_classifier(), layers)


def image_classifier_entry(
    model_id: str,
    title: str,
    make_classifier: Callable[[], nn.Module],
    labels: Sequence[str],
    size: int = 224,
    layers: Sequence[str] | None = None,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> ModelEntry:
    """A registry entry for a 2D classifier seen at ``size`` x ``size`` pixels."""
    spec = ModelSpec(
        id=model_id,
        title=title,
        inputs={"appearance": InputSpec(channels=3, frames=1, height=size, width=size, mean=mean, std=std)},
        labels=tuple(labels),
    )
    return ModelEntry(spec=spec, build=partial(_build, make_classifier, None if layers is None else tuple(layers)))
