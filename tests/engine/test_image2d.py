"""2D image classifiers run through the engine as one-frame appearance models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stlens.engine import VisualizationSettings, visualize
from stlens.models.image2d import ImageClassifierClip, image_classifier_entry
from stlens.models.registry import prepare
from torch import nn

from .tiny_nets import DEVICE


def tiny_classifier() -> nn.Module:
    torch.manual_seed(0)
    green = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        green.weight.copy_(torch.tensor([[-0.5, 1.0, -0.5], [1.0, -0.5, -0.5]]).view(2, 3, 1, 1))
    return nn.Sequential(green, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))


def test_a_2d_classifier_is_an_appearance_model_of_one_frame():
    entry = image_classifier_entry("tiny-2d", "tiny 2D", tiny_classifier, labels=["a", "b", "c"], size=24, layers=["0", "4"])
    model = prepare(entry, DEVICE)
    assert [(layer.id, layer.stream) for layer in model.layers] == [
        ("classifier.0", "appearance"), ("classifier.4", "appearance"), ("logits", "appearance")
    ]
    rgb = visualize(model, "classifier.0", 0, VisualizationSettings(steps=128)).inputs["appearance"]
    assert rgb.shape == (1, 1, 24, 24, 3)
    assert (rgb[..., 1] - rgb[..., [0, 2]].max(-1)).mean() > 0.3  # unit 0 wants green
    logit = visualize(model, "logits", 2, VisualizationSettings(steps=4))
    assert np.isfinite(logit.objective[0])


def test_wrapper_rejects_a_clip_of_several_frames():
    with pytest.raises(ValueError):
        ImageClassifierClip(tiny_classifier())(appearance=torch.zeros(1, 3, 2, 8, 8))
