"""The media of one visualisation, by name, from its optimised inputs.

Names come from the fixed table :data:`MEDIA_TYPES` (never from a path), and each belongs to a
stream: a layer that depends on one stream only gets that stream's media.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..flow import coding
from . import encode
from .frames import display_factor, enlarge, strip, to_uint8

MEDIA_TYPES: dict[str, str] = {
    "appearance.gif": "image/gif",
    "appearance.mp4": "video/mp4",
    "appearance.png": "image/png",
    "motion.gif": "image/gif",
    "motion.mp4": "video/mp4",
    "motion-direction.png": "image/png",
    "motion-components.png": "image/png",
    "motion-arrows.png": "image/png",
    "flow-legend.png": "image/png",
    "flow-legend.json": "application/json",
    # the same strips with the transparency map as their alpha channel: where the unit's evidence is
    "appearance-alpha.png": "image/png",
    "motion-alpha.png": "image/png",
}
MEDIA_STREAM = {name: "appearance" if name.startswith("appearance") else "motion" for name in MEDIA_TYPES}


def media_names(streams: Sequence[str]) -> list[str]:
    return [name for name in MEDIA_TYPES if MEDIA_STREAM[name] in streams]


def with_alpha(frames: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 and an alpha map (T, H, W) in [0, 1] -> (T, H, W, 4) uint8."""
    return np.concatenate([frames, (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)[..., None]], -1)


def _appearance_media(rgb: np.ndarray, alpha: np.ndarray) -> dict[str, bytes]:
    frames = to_uint8(rgb)
    factor = display_factor(frames.shape[1])
    big = enlarge(frames, factor)
    return {
        "appearance.gif": encode.gif(frames, factor=factor),
        "appearance.mp4": encode.mp4(big),
        "appearance.png": encode.png(strip(big)),
        "appearance-alpha.png": encode.png(strip(enlarge(with_alpha(frames, alpha), factor), background=0)),
    }


def _motion_media(flow: np.ndarray, alpha: np.ndarray) -> dict[str, bytes]:
    """Every coding at the clip's one saturation scale, which the legend states."""
    scale = coding.saturation_scale(flow)
    factor = display_factor(flow.shape[1])
    coded = coding.direction_coding(flow, scale)
    direction = enlarge(coded, factor)
    return {
        "motion-alpha.png": encode.png(strip(enlarge(with_alpha(coded, alpha), factor), background=0)),
        "motion.gif": encode.gif(coded, factor=factor),
        "motion.mp4": encode.mp4(direction),
        "motion-direction.png": encode.png(strip(direction)),
        "motion-components.png": encode.png(strip(enlarge(coding.component_coding(flow, scale), factor))),
        "motion-arrows.png": encode.png(strip(coding.arrows(flow, direction, scale=scale))),
        "flow-legend.png": encode.png(coding.direction_legend(scale)),
        "flow-legend.json": json.dumps({"rim_px": scale, "percentile": coding.SATURATION_PERCENTILE}).encode(),
    }


def render_media(inputs: Mapping[str, np.ndarray], alpha: Mapping[str, np.ndarray]) -> dict[str, bytes]:
    """Every medium for the streams present in ``inputs`` ({stream: (T, H, W, C) float32}), each
    stream's transparency strip from ``alpha`` ({stream: (T, H, W) in [0, 1]})."""
    media: dict[str, bytes] = {}
    if "appearance" in inputs:
        media |= _appearance_media(inputs["appearance"], alpha["appearance"])
    if "motion" in inputs:
        media |= _motion_media(inputs["motion"], alpha["motion"])
    return media


def preview_strips(inputs: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Small JPEG data URLs for live progress: the T frames side by side at their own size,
    the flow direction-coded."""
    previews = {}
    if "appearance" in inputs:
        previews["appearance"] = encode.jpeg_data_url(strip(to_uint8(inputs["appearance"])))
    if "motion" in inputs:
        previews["motion"] = encode.jpeg_data_url(strip(coding.direction_coding(inputs["motion"])))
    return previews


def inputs_npz(inputs: Mapping[str, np.ndarray], alpha: Mapping[str, np.ndarray] | None = None) -> bytes:
    """The inputs as an ``.npz`` of float32 arrays named by stream, and each stream's transparency
    map (T, H, W) in [0, 1] as ``<stream>_alpha``."""
    arrays: dict[str, Any] = {stream: np.asarray(x, dtype=np.float32) for stream, x in inputs.items()}
    arrays |= {f"{stream}_alpha": np.asarray(x, dtype=np.float32) for stream, x in (alpha or {}).items()}
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()
