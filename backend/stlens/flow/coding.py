"""Ways to show optical flow (T, H, W, 2) in pixels (x, y) as colour images.

Every coding uses one scale for the whole clip, so how fast the motion is can be compared across
frames: a frame that moves less looks paler, not the same. The scale is robust: the clip's 99th
percentile flow magnitude is full saturation and faster flow is clipped to it, so that one spike
does not wash the rest of the clip out to white (as scaling by the largest vector would).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
from torchvision.utils import flow_to_image

GREY = 128
ARROW_COLOUR = (20, 20, 20)
LABEL_COLOUR = (40, 40, 40)
SATURATION_PERCENTILE = 99.0
MIN_SCALE = 1e-6  # px: the scale of a clip without motion


def _check_flow(flow: np.ndarray) -> np.ndarray:
    if flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be (T, H, W, 2), got {flow.shape}")
    return np.nan_to_num(np.asarray(flow, dtype=np.float32))


def _magnitude(flow: np.ndarray) -> np.ndarray:
    return np.sqrt((flow**2).sum(-1, keepdims=True))


def saturation_scale(flow: np.ndarray, percentile: float = SATURATION_PERCENTILE) -> float:
    """The flow magnitude, in pixels, that the codings show at full saturation: a high percentile
    of the clip's magnitudes (a tiny positive number for no motion)."""
    if not 0.0 < percentile <= 100.0:
        raise ValueError("percentile must be in (0, 100]")
    flow = _check_flow(flow)
    if flow.size == 0:
        return MIN_SCALE
    return max(float(np.percentile(_magnitude(flow), percentile)), MIN_SCALE)


def _unit_flow(flow: np.ndarray, scale: float | None) -> np.ndarray:
    """Flow in units of ``scale`` (the clip's saturation scale by default), magnitudes clipped to 1."""
    flow = _check_flow(flow)
    scale = saturation_scale(flow) if scale is None else scale
    if not scale > 0:
        raise ValueError("the scale must be positive")
    unit = flow / scale
    return unit / np.maximum(_magnitude(unit), 1.0)


WHEEL_STEPS = 511  # a unit vector's x and y, each on this many steps over [-1, 1] (odd: rest is a step)


@functools.cache
def _wheel() -> np.ndarray:
    """torchvision's ``flow_to_image`` (the Middlebury wheel) of every unit vector on the grid,
    (WHEEL_STEPS, WHEEL_STEPS, 3) indexed by (y, x): a lookup instead of its dozens of small
    tensor operations a frame, which made the live previews of a batch a third of a step's cost.
    A grid step is 1/255 of full saturation, under a level of colour, except at the wheel's own seam
    (along +x, where torchvision's wheel jumps by 43 levels of blue), where the nearest step
    may fall on the other side."""
    axis = torch.arange(WHEEL_STEPS) / ((WHEEL_STEPS - 1) / 2) - 1.0  # the middle step is exactly 0: white
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    grid = torch.stack([x, y])
    grid = grid / grid.norm(dim=0).clamp(min=1.0)  # the disk: longer vectors never reach it
    # flow_to_image divides by the batch's largest vector, which is 1 here: the scale is ours
    return flow_to_image(grid[None].contiguous())[0].permute(1, 2, 0).numpy()


def direction_coding(flow: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Hue = direction, saturation = magnitude up to ``scale`` px (the clip's saturation scale by
    default), on white: the Middlebury wheel of torchvision's ``flow_to_image``."""
    unit = _unit_flow(flow, scale)
    index = np.rint((unit + 1.0) * ((WHEEL_STEPS - 1) / 2)).astype(np.intp)
    return _wheel()[index[..., 1], index[..., 0]]


def component_coding(flow: np.ndarray, scale: float | None = None) -> np.ndarray:
    """x, y and magnitude in the red, green and blue channels, around a grey zero-motion level;
    ``scale`` px (the clip's saturation scale by default) is full intensity."""
    unit = _unit_flow(flow, scale)
    components = np.concatenate([unit, _magnitude(unit)], axis=-1)
    return np.clip(GREY + 127 * components, 0, 255).astype(np.uint8)


def arrows(flow: np.ndarray, backgrounds: np.ndarray, spacing: int = 16, scale: float | None = None) -> np.ndarray:
    """A coarse quiver over ``backgrounds`` (T, H', W', 3), an upscaled view of the clip.

    Arrows sit on a grid ``spacing`` display pixels apart; flow of ``scale`` px (the clip's
    saturation scale by default) or faster is one grid cell long: directions and relative speeds
    read at a glance.
    """
    unit = _unit_flow(flow, scale)
    frames, height, width, _ = unit.shape
    if backgrounds.shape[0] != frames or backgrounds.ndim != 4:
        raise ValueError("one background image a flow frame is needed")
    out_h, out_w = backgrounds.shape[1:3]
    length = 0.9 * spacing
    ys = np.arange(spacing // 2, out_h, spacing)
    xs = np.arange(spacing // 2, out_w, spacing)
    drawn = np.ascontiguousarray(backgrounds.copy())
    for t in range(frames):
        for y in ys:
            for x in xs:
                dx, dy = unit[t, y * height // out_h, x * width // out_w]
                tip = (round(x + dx * length), round(y + dy * length))
                if tip != (x, y):
                    cv2.arrowedLine(drawn[t], (int(x), int(y)), tip, ARROW_COLOUR, 1, cv2.LINE_AA, tipLength=0.35)
    return drawn


def direction_wheel(side: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """The colour wheel of :func:`direction_coding` as an image (side, side, 3) and the disc's mask
    (side, side): the pixel at offset (x, y) from the centre shows flow (x, y), so the wheel's right
    is motion to the right and its top motion up (image y grows downwards), its rim full saturation."""
    if not 64 <= side <= 1024:
        raise ValueError("legend side must be in [64, 1024]")
    coords = np.linspace(-1.0, 1.0, side, dtype=np.float32)
    x, y = np.meshgrid(coords, coords)
    inside = (x**2 + y**2) <= 1.0
    return direction_coding(np.stack([x * inside, y * inside], axis=-1)[None], scale=1.0)[0], inside


def direction_legend(scale: float, side: int = 128) -> np.ndarray:
    """The colour wheel of :func:`direction_coding`, its rim full saturation, labelled with what
    that is in pixels (``scale``): an image (side + label band, side, 3)."""
    wheel, _ = direction_wheel(side)
    band = np.full((side // 6, side, 3), 255, np.uint8)
    text = f"rim = {scale:.3g} px"
    font_scale = side / 320
    (text_w, text_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    origin = (max(0, (side - text_w) // 2), (band.shape[0] + text_h) // 2)
    cv2.putText(band, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, LABEL_COLOUR, 1, cv2.LINE_AA)
    return np.concatenate([wheel, band])
