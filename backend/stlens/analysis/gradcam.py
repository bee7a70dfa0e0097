"""Space-time Grad-CAM: where in space and time each stream's input supports a class.

Grad-CAM (Selvaraju et al. 2017) extended by one dimension: a stream's deepest space-time layer is
weighted by the class score's mean gradient per channel, summed over channels, rectified, and
upsampled trilinearly to the stream's input (T, H, W). One backward pass serves both streams.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..models.introspect import recorded_outputs
from ..models.registry import LoadedModel
from ..models.spec import LayerInfo, Stream
from .ablation import to_model


def spacetime_layers(model: LoadedModel, stream: Stream) -> list[LayerInfo]:
    """One stream's layers with a space-time output (C, T, H, W), in forward order."""
    return [layer for layer in model.layers if layer.stream == stream and len(layer.shape) == 4]


def gradcam(model: LoadedModel, display: Mapping[str, torch.Tensor], class_index: int) -> dict[Stream, np.ndarray]:
    """For one clip (display space, batch of one), a heatmap (T, H, W) in [0, 1] per stream.

    Each stream uses its deepest space-time layer that the class score depends on: a model may expose
    a layer as a side view that its forward pass does not use further, and such a layer has no
    gradient. A stream without any such layer gets no map.
    """
    spec = model.spec
    if not 0 <= class_index < spec.num_classes:
        raise ValueError(f"class must be 0 to {spec.num_classes - 1}, got {class_index}")
    candidates = [(s, layer.id) for s in spec.streams for layer in spacetime_layers(model, s)]
    with recorded_outputs(model.module, [name for _, name in candidates]) as captured, torch.enable_grad():
        inputs = {s: x.detach().requires_grad_(True) for s, x in to_model(spec, display).items()}
        score = model.module(**inputs)[0, class_index]
        names = [name for _, name in candidates if name in captured]
        grads = dict(zip(names, torch.autograd.grad(score, [captured[n] for n in names], allow_unused=True)))
    maps = {}
    for s in spec.streams:
        used = [name for stream, name in candidates if stream == s and grads.get(name) is not None]
        if not used:
            continue
        act, grad = captured[used[-1]][0].detach(), grads[used[-1]][0]
        cam = torch.relu((grad.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1) * act).sum(0))
        _, t, h, w = spec.inputs[s].shape
        cam = F.interpolate(cam[None, None], size=(t, h, w), mode="trilinear", align_corners=False)[0, 0]
        peak = cam.max()
        maps[s] = (cam / peak if peak > 0 else cam).cpu().numpy()
    return maps
