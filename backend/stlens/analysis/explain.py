"""Explain one video: its clip as the model sees it, the prediction, Grad-CAM for a class, top units.

Pictures are returned as data URLs of frame strips (the T frames left to right, enlarged), so a page
can show them without another request.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from pydantic import BaseModel, Field

from ..flow import coding
from ..media import encode
from ..media.frames import display_factor, enlarge, strip, to_uint8
from ..models.registry import LoadedModel
from ..models.spec import Stream
from .clip import ClipInputs, to_tensor
from .familiarity import Familiarity, familiarity
from .gradcam import gradcam
from .predict import ClassScore, predict
from .units import UnitScore, top_units

HEAT_ALPHA = 0.5


class Explanation(BaseModel):
    model: str
    target: ClassScore = Field(description="the class that Grad-CAM explains")
    top: dict[str, list[ClassScore]] = Field(description="top classes: fused and per stream (the other one neutral)")
    clip: dict[str, str] = Field(description="stream -> frame strip (data URL) of the model's input")
    gradcam: dict[str, str] = Field(
        description="stream -> frame strip (data URL) with the heatmap over the input; a stream whose last "
        "space-time layer does not feed the logits has none"
    )
    layer: str
    units: list[UnitScore] = Field(description="the layer's units most active on the clip, strongest first")
    familiarity: Familiarity = Field(description="whether the clip looks like the model's training data")
    clip_id: str | None = Field(
        default=None,
        description="an uploaded clip's id: a visualisation may start from it, start {'upload': clip_id} (kept a day)",
    )


def stream_pictures(streams: dict[Stream, np.ndarray]) -> dict[Stream, np.ndarray]:
    """Display-space inputs -> uint8 RGB frames: the RGB frames, the flow direction-coded."""
    pictures: dict[Stream, np.ndarray] = {}
    if "appearance" in streams:
        pictures["appearance"] = to_uint8(streams["appearance"])
    if "motion" in streams:
        pictures["motion"] = coding.direction_coding(streams["motion"])
    return pictures


def heat_overlay(frames: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Blend a JET-coloured heatmap (T, H, W) in [0, 1] over uint8 RGB frames (T, H, W, 3)."""
    coloured = np.stack([cv2.applyColorMap((h * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1] for h in heat])
    return (frames * (1 - HEAT_ALPHA) + coloured * HEAT_ALPHA).astype(np.uint8)


def strip_url(frames: np.ndarray) -> str:
    return encode.jpeg_data_url(strip(enlarge(frames, display_factor(frames.shape[1], 96))), quality=90)


def explain(
    model: LoadedModel, clip: ClipInputs, layer_id: str, class_index: int | None = None, units: int = 8
) -> Explanation:
    """``class_index`` None explains the fused prediction's top class. Holds the model's lock: a
    visualisation's layer probe must not cut these forward passes short (nor they its own)."""
    with model.lock:
        return _explain(model, clip, layer_id, class_index, units)


def _explain(model: LoadedModel, clip: ClipInputs, layer_id: str, class_index: int | None, units: int) -> Explanation:
    display: dict[str, torch.Tensor] = {s: to_tensor(x, model.device) for s, x in clip.streams.items()}
    prediction = predict(model, display, top=5)
    labels = model.spec.labels
    if class_index is None:
        class_index = prediction.top["fused"][0].index
    if not 0 <= class_index < len(labels):
        raise ValueError(f"class must be 0 to {len(labels) - 1}, got {class_index}")
    with torch.no_grad():
        logits = model.module(**{s: model.spec.inputs[s].to_model(display[s]) for s in model.spec.streams})[0]
    target = ClassScore(
        index=class_index,
        label=labels[class_index],
        probability=float(logits.softmax(-1)[class_index]),
        logit=float(logits[class_index]),
    )
    pictures = stream_pictures(clip.streams)
    heat = gradcam(model, display, class_index)
    return Explanation(
        model=model.spec.id,
        target=target,
        top=prediction.top,
        clip={s: strip_url(p) for s, p in pictures.items()},
        gradcam={s: strip_url(heat_overlay(pictures[s], heat[s])) for s in heat},
        layer=layer_id,
        units=top_units(model, display, layer_id, units),
        familiarity=familiarity(model, display),
    )
