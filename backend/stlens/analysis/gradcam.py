"""Space-time Grad-CAM: where in space and time each stream's input supports a class.

Grad-CAM (Selvaraju et al. 2017) extended by one dimension: the last 3D conv layer of a stream is
weighted by the class score's mean gradient per channel, summed over channels, rectified, and
upsampled trilinearly to the stream's input (T, H, W). One backward pass serves both streams.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..models.registry import LoadedModel
from ..models.spec import LayerInfo, Stream
from .ablation import to_model


def last_conv_layer(model: LoadedModel, stream: Stream) -> LayerInfo:
    """The deepest layer of one stream with a space-time output (C, T, H, W)."""
    layers = [layer for layer in model.layers if layer.stream == stream and len(layer.shape) == 4]
    if not layers:
        raise ValueError(f"model {model.spec.id!r} has no space-time layer in its {stream} stream")
    return layers[-1]


def gradcam(model: LoadedModel, display: Mapping[str, torch.Tensor], class_index: int) -> dict[Stream, np.ndarray]:
    """For one clip (display space, batch of one), a heatmap (T, H, W) in [0, 1] per stream."""
    spec = model.spec
    if not 0 <= class_index < spec.num_classes:
        raise ValueError(f"class must be 0 to {spec.num_classes - 1}, got {class_index}")
    targets = {s: last_conv_layer(model, s).id for s in spec.streams}
    modules = dict(model.module.named_modules())
    captured: dict[Stream, torch.Tensor] = {}

    def keep(stream: Stream):
        def hook(_m: torch.nn.Module, _i: object, out: torch.Tensor) -> None:
            out.retain_grad()
            captured[stream] = out

        return hook

    handles = [modules[name].register_forward_hook(keep(s)) for s, name in targets.items()]
    try:
        with torch.enable_grad():
            inputs = {s: x.detach().requires_grad_(True) for s, x in to_model(spec, display).items()}
            model.module(**inputs)[0, class_index].backward()
    finally:
        for h in handles:
            h.remove()
    maps = {}
    for s in spec.streams:
        act, grad = captured[s][0].detach(), captured[s].grad[0]
        weights = grad.mean(dim=(1, 2, 3))
        cam = torch.relu((weights.view(-1, 1, 1, 1) * act).sum(0))
        _, t, h, w = spec.inputs[s].shape
        cam = F.interpolate(cam[None, None], size=(t, h, w), mode="trilinear", align_corners=False)[0, 0]
        peak = cam.max()
        maps[s] = (cam / peak if peak > 0 else cam).cpu().numpy()
    return maps
