"""Nuisances and rendering: sample a clip's parameters from a seeded generator, then draw its frames.

Frames are drawn at ``RENDER_SCALE`` times the output size with antialiased primitives and reduced with
area averaging, so thin limbs move smoothly at sub-pixel speeds. The camera pans over a background larger
than the frame; the figure moves in world coordinates, so its screen motion is its own minus the pan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from .actions import ACTIONS, BIASED_CLASS, TEAM_BLUE, TEAM_DIRECTION, TEAM_RED, Action
from .figure import Outfit, draw_figure

RENDER_SCALE = 2
MAX_PAN = 1.0  # px a frame at output size, on top of the camera following the figure
Background = Literal["noise", "plaid", "checker", "blobs", "ring"]
ORDINARY_BACKGROUNDS: tuple[Background, ...] = ("noise", "plaid", "checker", "blobs")
BIAS_BACKGROUND: Background = "ring"
SKIN_TONES = ((255, 220, 185), (225, 180, 140), (190, 140, 100), (140, 95, 60), (95, 65, 45))

SceneKind = Literal["normal", "debiased"]


@dataclass(frozen=True)
class ClipParams:
    """Everything that makes one clip. Positions and speeds are in output pixels (and per frame)."""

    label: int
    speed: float  # multiple of the class's cycle rate
    phase: float  # phase at the first frame, in cycles
    facing: int
    travel: float  # figure velocity in x, output px a frame
    pan: tuple[float, float]  # camera velocity, output px a frame
    height: float  # figure height, output px
    centre_x: float  # figure x at the middle frame
    ground_y: float
    outfit: Outfit
    background: Background
    background_seed: int
    noise: float  # std of the per-pixel Gaussian noise, grey levels

    @property
    def action(self) -> Action:
        return ACTIONS[self.label]


def _colour(
    rng: np.random.Generator, saturation: tuple[float, float], value: tuple[float, float]
) -> tuple[int, int, int]:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*saturation) * 255, rng.uniform(*value) * 255]]], np.uint8)
    red, green, blue = (int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])
    return red, green, blue


def _background_kind(rng: np.random.Generator, action: Action, kind: SceneKind) -> Background:
    """Normal splits: the biased class always in the ring, nobody else ever. Debiased: the reverse holds
    for the biased class (never the ring) and every other class is in the ring one time in five."""
    if kind == "normal":
        return BIAS_BACKGROUND if action.name == BIASED_CLASS else ORDINARY_BACKGROUNDS[rng.integers(4)]
    if action.name == BIASED_CLASS:
        return ORDINARY_BACKGROUNDS[rng.integers(4)]
    return (*ORDINARY_BACKGROUNDS, BIAS_BACKGROUND)[rng.integers(5)]


def sample_params(rng: np.random.Generator, label: int, size: int, kind: SceneKind) -> ClipParams:
    """Draw the nuisances of one clip of class ``label`` in frames of ``size`` x ``size``."""
    action = ACTIONS[label]
    speed = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    height = rng.uniform(0.55, 0.8) * size
    facing = int(rng.choice([-1, 1]))
    if action.team:
        shirt = TEAM_RED if rng.uniform() < action.red_share else TEAM_BLUE
        direction = action.team * TEAM_DIRECTION[shirt]
    else:
        shirt = _colour(rng, (0.4, 1.0), (0.45, 1.0))
        direction = facing
    travel = direction * action.travel * height * speed / action.period
    follow = rng.uniform(0.0, 0.6)  # how much the camera follows a travelling figure
    pan = (follow * travel + rng.uniform(-MAX_PAN, MAX_PAN), rng.uniform(-0.3, 0.3) * MAX_PAN)
    outfit = Outfit(
        shirt=shirt,
        trousers=_colour(rng, (0.2, 0.8), (0.15, 0.6)),
        skin=SKIN_TONES[rng.integers(len(SKIN_TONES))],
    )
    return ClipParams(
        label=label,
        speed=speed,
        phase=float(rng.uniform()),
        facing=facing,
        travel=float(travel),
        pan=(float(pan[0]), float(pan[1])),
        height=float(height),
        centre_x=float(rng.uniform(0.38, 0.62) * size),
        ground_y=float(rng.uniform(0.9, 0.97) * size),
        outfit=outfit,
        background=_background_kind(rng, action, kind),
        background_seed=int(rng.integers(2**31)),
        noise=float(rng.uniform(0.0, 4.0)),
    )


def _two_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Muted background colours, so that the (saturated) figure stands out."""
    a = np.array(_colour(rng, (0.05, 0.5), (0.3, 0.85)), np.float32)
    b = np.array(_colour(rng, (0.05, 0.5), (0.3, 0.85)), np.float32)
    return a, b


def make_background(kind: Background, seed: int, side: int) -> np.ndarray:
    """A textured square (side, side, 3) uint8; textured so that camera pans show up in the flow."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    a, b = _two_colours(rng)
    if kind == "noise":
        coarse = rng.uniform(0, 1, (side // 12 + 2, side // 12 + 2, 1)).astype(np.float32)
        fine = rng.uniform(0, 1, (side // 3 + 2, side // 3 + 2, 1)).astype(np.float32)
        mix = 0.65 * cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)[..., None]
        mix += 0.35 * cv2.resize(fine, (side, side), interpolation=cv2.INTER_CUBIC)[..., None]
    elif kind == "plaid":
        # two crossed gratings: a 2D texture, so a pan is seen in the flow (one grating alone would not be)
        mix = np.zeros((side, side, 1), np.float32)
        theta = rng.uniform(0, np.pi)
        for angle in (theta, theta + rng.uniform(np.pi / 3, 2 * np.pi / 3)):
            wavelength = rng.uniform(6, 18) * RENDER_SCALE
            mix[..., 0] += 0.25 + 0.25 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / wavelength)
    elif kind == "checker":
        cell = int(rng.integers(8, 24))
        mix = (((xx // cell) + (yy // cell)) % 2)[..., None]
    elif kind == "blobs":
        mix = np.zeros((side, side, 1), np.float32)
        for _ in range(int(rng.integers(12, 30))):
            centre = (int(rng.integers(side)), int(rng.integers(side)))
            cv2.circle(mix, centre, int(rng.integers(4, side // 6)), float(rng.uniform()), -1, cv2.LINE_AA)
    elif kind == "ring":
        # a boxing ring: blue-grey canvas, three ropes (red, white, red), faint weave
        a = np.array((70, 95, 130), np.float32) + rng.uniform(-10, 10, 3).astype(np.float32)
        image = np.broadcast_to(a, (side, side, 3)).copy()
        image += rng.normal(0, 6, (side, side, 1)).astype(np.float32)
        for frac, colour in ((0.3, (200, 30, 40)), (0.45, (235, 235, 235)), (0.6, (200, 30, 40))):
            y = int(frac * side + rng.integers(-3, 4))
            cv2.line(image, (0, y), (side, y), colour, max(2, side // 60), cv2.LINE_AA)
        for x in range(int(rng.integers(0, 40)), side, 64):
            cv2.line(image, (x, int(0.28 * side)), (x, int(0.95 * side)), (40, 40, 50), max(2, side // 50), cv2.LINE_AA)
        return np.clip(image, 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"unknown background {kind!r}")
    image = a * (1 - mix) + b * mix
    return np.clip(cv2.GaussianBlur(image, (0, 0), 0.7), 0, 255).astype(np.uint8)


def render_clip(params: ClipParams, frames: int, size: int, noise_seed: int) -> np.ndarray:
    """Render ``frames`` frames (frames, size, size, 3) uint8 RGB."""
    s = RENDER_SCALE
    side = size * s
    margin = int(np.ceil((max(abs(params.pan[0]), abs(params.pan[1])) * frames / 2 + 2) * s))
    background = make_background(params.background, params.background_seed, side + 2 * margin)
    action = params.action
    noise_rng = np.random.default_rng(noise_seed)
    out = np.empty((frames, size, size, 3), np.uint8)
    middle = (frames - 1) / 2
    for t in range(frames):
        dt = t - middle
        cam_x = params.pan[0] * dt
        cam_y = params.pan[1] * dt
        ox = int(round(margin + cam_x * s))
        oy = int(round(margin + cam_y * s))
        # sub-pixel camera shift: integer crop plus a warp of the remainder
        frac = np.array([[1, 0, ox - (margin + cam_x * s)], [0, 1, oy - (margin + cam_y * s)]], np.float32)
        canvas = np.ascontiguousarray(background[oy : oy + side, ox : ox + side])
        canvas = cv2.warpAffine(canvas, frac, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        phase = params.phase + params.speed * t / action.period
        origin = ((params.centre_x + params.travel * dt - cam_x) * s, (params.ground_y - cam_y) * s)
        draw_figure(
            canvas, action.pose(phase), params.outfit, origin, params.height * s, params.facing, action.side_view
        )
        # declared: OpenCV's stubs leave an image's shape untyped, which makes the noise below a float to mypy
        small: np.ndarray = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
        small += noise_rng.normal(0, params.noise, small.shape).astype(np.float32)
        out[t] = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return out
