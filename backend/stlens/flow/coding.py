"""Ways to show optical flow (T, H, W, 2) in pixels (x, y) as colour images.

Every coding uses one scale for the whole clip (its largest flow magnitude), so how fast the
motion is can be compared across frames: a frame that moves less looks paler, not the same.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.utils import flow_to_image

GREY = 128
ARROW_COLOUR = (20, 20, 20)


def _check_flow(flow: np.ndarray) -> np.ndarray:
    if flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be (T, H, W, 2), got {flow.shape}")
    return np.nan_to_num(np.asarray(flow, dtype=np.float32))


def clip_scale(flow: np.ndarray) -> float:
    """The largest flow magnitude in the clip, in pixels (a tiny positive number for no motion)."""
    flow = _check_flow(flow)
    return max(float(np.sqrt((flow**2).sum(-1)).max(initial=0.0)), 1e-6)


def direction_coding(flow: np.ndarray) -> np.ndarray:
    """Hue = direction, saturation = magnitude, on white (Middlebury wheel, torchvision's
    ``flow_to_image``, which scales the whole batch, i.e. the clip, by one maximum)."""
    flow = _check_flow(flow)
    images = flow_to_image(torch.from_numpy(flow).permute(0, 3, 1, 2).contiguous())
    return images.permute(0, 2, 3, 1).numpy()


def component_coding(flow: np.ndarray) -> np.ndarray:
    """x, y and magnitude in the red, green and blue channels, around a grey zero-motion level."""
    flow = _check_flow(flow)
    scale = clip_scale(flow)
    magnitude = np.sqrt((flow**2).sum(-1, keepdims=True))
    components = np.concatenate([flow, magnitude], axis=-1) / scale
    return np.clip(GREY + 127 * components, 0, 255).astype(np.uint8)


def arrows(flow: np.ndarray, backgrounds: np.ndarray, spacing: int = 16) -> np.ndarray:
    """A coarse quiver over ``backgrounds`` (T, H', W', 3), an upscaled view of the clip.

    Arrows sit on a grid ``spacing`` display pixels apart and are scaled so that the clip's
    largest flow is one grid cell long: directions and relative speeds read at a glance.
    """
    flow = _check_flow(flow)
    frames, height, width, _ = flow.shape
    if backgrounds.shape[0] != frames or backgrounds.ndim != 4:
        raise ValueError("one background image a flow frame is needed")
    out_h, out_w = backgrounds.shape[1:3]
    length = 0.9 * spacing / clip_scale(flow)
    ys = np.arange(spacing // 2, out_h, spacing)
    xs = np.arange(spacing // 2, out_w, spacing)
    drawn = np.ascontiguousarray(backgrounds.copy())
    for t in range(frames):
        for y in ys:
            for x in xs:
                dx, dy = flow[t, y * height // out_h, x * width // out_w]
                tip = (round(x + dx * length), round(y + dy * length))
                if tip != (x, y):
                    cv2.arrowedLine(drawn[t], (int(x), int(y)), tip, ARROW_COLOUR, 1, cv2.LINE_AA, tipLength=0.35)
    return drawn


def direction_legend(side: int = 128) -> np.ndarray:
    """The colour wheel of :func:`direction_coding`: the edge is the clip's largest magnitude."""
    if not 16 <= side <= 1024:
        raise ValueError("legend side must be in [16, 1024]")
    coords = np.linspace(-1.0, 1.0, side, dtype=np.float32)
    x, y = np.meshgrid(coords, coords)
    inside = (x**2 + y**2) <= 1.0
    flow = np.stack([x * inside, y * inside], axis=-1)[None]
    return direction_coding(flow)[0]
