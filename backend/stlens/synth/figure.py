"""One articulated capsule figure: a pose (joint angles) -> joint positions -> antialiased drawing.

Lengths are in units of the figure's standing height. Angles are radians from the downward vertical,
positive towards the figure's +x (its facing direction in side view, the viewer's right in front view).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

THIGH = 0.25
SHIN = 0.25
TORSO = 0.30
UPPER_ARM = 0.17
FOREARM = 0.16
HEAD_RADIUS = 0.08
NECK = 0.04
HIP_HEIGHT = THIGH + SHIN
LIMB_WIDTH = 0.07
TORSO_WIDTH = 0.11
SUBPIXEL_BITS = 4  # cv2 drawing with fractional coordinates


@dataclass(frozen=True)
class Limb:
    """A two-segment limb: the angle of the upper segment and the bend of the lower one relative to it."""

    angle: float
    bend: float


@dataclass(frozen=True)
class Pose:
    """Everything that moves. ``hip`` is the hip's offset from its standing position (height units, y up).

    ``arms`` and ``legs`` are (far, near) in side view and (viewer's left, viewer's right) in front view.
    """

    arms: tuple[Limb, Limb]
    legs: tuple[Limb, Limb]
    hip: tuple[float, float] = (0.0, 0.0)
    lean: float = 0.0


@dataclass(frozen=True)
class Outfit:
    """RGB colours (0..255) of the figure's parts."""

    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    skin: tuple[int, int, int]


def _direction(angle: float) -> np.ndarray:
    return np.array([np.sin(angle), -np.cos(angle)])


def _limb_points(root: np.ndarray, limb: Limb, upper: float, lower: float) -> tuple[np.ndarray, np.ndarray]:
    joint = root + upper * _direction(limb.angle)
    return joint, joint + lower * _direction(limb.angle + limb.bend)


def joints(pose: Pose) -> dict[str, np.ndarray]:
    """Joint positions in height units, y up, feet of the standing figure at y = 0."""
    hip = np.array([pose.hip[0], HIP_HEIGHT + pose.hip[1]])
    up = np.array([np.sin(pose.lean), np.cos(pose.lean)])
    neck = hip + TORSO * up
    points = {"hip": hip, "neck": neck, "head": neck + (NECK + HEAD_RADIUS) * up}
    shoulder = hip + 0.92 * TORSO * up
    for i, arm in enumerate(pose.arms):
        points[f"elbow{i}"], points[f"hand{i}"] = _limb_points(shoulder, arm, UPPER_ARM, FOREARM)
    for i, leg in enumerate(pose.legs):
        points[f"knee{i}"], points[f"foot{i}"] = _limb_points(hip, leg, THIGH, SHIN)
    points["shoulder"] = shoulder
    return points


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    red, green, blue = (int(round(c * factor)) for c in colour)
    return red, green, blue


def draw_figure(
    canvas: np.ndarray,
    pose: Pose,
    outfit: Outfit,
    origin: tuple[float, float],
    height: float,
    facing: int,
    side_view: bool,
) -> None:
    """Draw ``pose`` onto ``canvas`` (H, W, 3 uint8, RGB) in place.

    ``origin`` is the screen position (x, y) of the point between the standing feet, ``height`` the
    figure's height in pixels, ``facing`` +1 or -1 mirrors the figure horizontally. In side view the far
    limbs are drawn darker and behind the torso.
    """
    scale = 1 << SUBPIXEL_BITS
    pts = joints(pose)

    def px(p: np.ndarray) -> tuple[int, int]:
        x = origin[0] + facing * p[0] * height
        y = origin[1] - p[1] * height
        return int(round(x * scale)), int(round(y * scale))

    def segment(a: str, b: str, colour: tuple[int, int, int], width: float) -> None:
        thickness = max(1, int(round(width * height)))
        cv2.line(canvas, px(pts[a]), px(pts[b]), colour, thickness, cv2.LINE_AA, SUBPIXEL_BITS)

    def disc(p: str, radius: float, colour: tuple[int, int, int]) -> None:
        cv2.circle(canvas, px(pts[p]), int(round(radius * height * scale)), colour, -1, cv2.LINE_AA, SUBPIXEL_BITS)

    def leg(i: int, factor: float) -> None:
        colour = _shade(outfit.trousers, factor)
        segment("hip", f"knee{i}", colour, LIMB_WIDTH * 1.2)
        segment(f"knee{i}", f"foot{i}", colour, LIMB_WIDTH)

    def arm(i: int, factor: float) -> None:
        segment("shoulder", f"elbow{i}", _shade(outfit.shirt, factor), LIMB_WIDTH)
        segment(f"elbow{i}", f"hand{i}", _shade(outfit.shirt, factor), LIMB_WIDTH * 0.9)
        disc(f"hand{i}", LIMB_WIDTH * 0.6, _shade(outfit.skin, factor))

    if side_view:
        leg(0, 0.7)
        arm(0, 0.7)
        leg(1, 1.0)
        segment("hip", "neck", outfit.shirt, TORSO_WIDTH)
        disc("head", HEAD_RADIUS, outfit.skin)
        arm(1, 1.0)
    else:
        leg(0, 1.0)
        leg(1, 1.0)
        segment("hip", "neck", outfit.shirt, TORSO_WIDTH)
        arm(0, 1.0)
        arm(1, 1.0)
        disc("head", HEAD_RADIUS, outfit.skin)
