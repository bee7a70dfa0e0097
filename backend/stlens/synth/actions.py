"""The action classes: how each one moves through one cycle, how fast, and which way it travels.

A pose function maps the phase (cycles, any real number; one cycle = one period) to a :class:`Pose`.
Two classes, ``advance`` and ``retreat``, are the designed cross-stream pair: the same sideways hop of a
front-facing, mirror-symmetric figure in a team shirt (red or blue, equally bright in grey, and clear of
0 and 255 so noise never clips them). Red advances to the left and blue to the right, so the class is the
XOR of shirt colour (seen only by the appearance stream) and direction (seen only by the motion stream).
The teams are not quite balanced (``red_share``): a pure XOR gives gradient descent nothing to start
from, while these shares let either stream alone reach at most 60 % on the pair; see docs/dataset.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import cos, pi, sin

from .figure import Limb, Pose

# Team shirts with the same grey value under cv2's RGB->grey weights (105), so flow cannot see the team.
TEAM_RED = (210, 60, 60)
TEAM_BLUE = (50, 108, 230)
TEAM_DIRECTION = {TEAM_RED: -1, TEAM_BLUE: +1}  # the way each team advances (screen x)


@dataclass(frozen=True)
class Action:
    """One class. ``period`` is frames per cycle at 1x speed; ``travel`` is height units moved per cycle.

    ``team`` is 0 for ordinary classes (which travel the way they face), +1 for a class that moves the way
    its team advances and -1 for the opposite way; ``red_share`` is then the share of red shirts.
    """

    name: str
    pose: Callable[[float], Pose]
    side_view: bool
    period: float
    travel: float = 0.0
    team: int = 0
    red_share: float = 0.5


def _wave(phase: float) -> float:
    return sin(2 * pi * phase)


def _open(phase: float) -> float:
    """0 -> 1 -> 0 over one cycle."""
    return 0.5 * (1 - cos(2 * pi * phase))


def walk(phase: float) -> Pose:
    s = _wave(phase)
    c = cos(2 * pi * phase)
    return Pose(
        arms=(Limb(0.4 * s, 0.3), Limb(-0.4 * s, 0.3)),
        legs=(Limb(-0.45 * s, -0.5 * max(0.0, c)), Limb(0.45 * s, -0.5 * max(0.0, -c))),
        hip=(0.0, -0.02 * abs(c)),
    )


def run(phase: float) -> Pose:
    s = _wave(phase)
    c = cos(2 * pi * phase)
    return Pose(
        arms=(Limb(0.7 * s, 1.5), Limb(-0.7 * s, 1.5)),
        legs=(Limb(-0.8 * s, -0.3 - 1.0 * max(0.0, c)), Limb(0.8 * s, -0.3 - 1.0 * max(0.0, -c))),
        hip=(0.0, 0.05 * abs(s) - 0.04),
        lean=0.25,
    )


def jump(phase: float) -> Pose:
    """Crouch, leap, land, in place (side view)."""
    crouch = max(0.0, -_wave(phase))
    air = max(0.0, _wave(phase))
    legs = Limb(0.9 * crouch + 0.1 * air, -1.6 * crouch - 0.2 * air)
    return Pose(
        arms=(Limb(-0.6 * crouch + 2.6 * air, 0.2), Limb(-0.7 * crouch + 2.8 * air, 0.2)),
        legs=(legs, Limb(legs.angle + 0.05, legs.bend)),
        hip=(0.0, -0.18 * crouch + 0.25 * air),
        lean=0.35 * crouch,
    )


def wave(phase: float) -> Pose:
    """The viewer's right arm raised and waving, the other hanging."""
    return Pose(
        arms=(Limb(-0.12, 0.0), Limb(2.3, 0.2 + 0.6 * _wave(phase))),
        legs=(Limb(-0.08, 0.0), Limb(0.08, 0.0)),
    )


def clap(phase: float) -> Pose:
    """Forearms swing up to meet in front of the chest and open again (front view)."""
    o = _open(phase)
    upper = 0.5 + 0.4 * o
    bend = 3.1 + 1.6 * o
    return Pose(
        arms=(Limb(-upper, bend), Limb(upper, -bend)),
        legs=(Limb(-0.1, 0.0), Limb(0.1, 0.0)),
    )


def box(phase: float) -> Pose:
    """Guard up, alternating straight punches (side view)."""
    near = max(0.0, _wave(phase)) ** 2
    far = max(0.0, -_wave(phase)) ** 2
    return Pose(
        arms=(Limb(0.5 + 1.1 * far, 2.0 * (1 - far)), Limb(0.4 + 1.2 * near, 2.1 * (1 - near))),
        legs=(Limb(-0.3, -0.15), Limb(0.3, -0.15)),
        hip=(0.0, -0.03),
        lean=0.12 + 0.08 * (near + far),
    )


def jumping_jacks(phase: float) -> Pose:
    o = _open(phase)
    return Pose(
        arms=(Limb(-0.2 - 2.5 * o, 0.0), Limb(0.2 + 2.5 * o, 0.0)),
        legs=(Limb(-0.05 - 0.35 * o, 0.0), Limb(0.05 + 0.35 * o, 0.0)),
        hip=(0.0, 0.06 * sin(pi * o)),
    )


def squat(phase: float) -> Pose:
    """Hips down and back, arms forward for balance (side view)."""
    o = _open(phase)
    return Pose(
        arms=(Limb(1.45 * o, 0.1), Limb(1.5 * o, 0.1)),
        legs=(Limb(1.25 * o, -2.1 * o), Limb(1.3 * o, -2.15 * o)),
        hip=(-0.08 * o, -0.24 * o),
        lean=0.55 * o,
    )


def side_hop(phase: float) -> Pose:
    """Feet together, crouch and hop (front view, mirror-symmetric at every phase)."""
    crouch = max(0.0, -_wave(phase))
    air = max(0.0, _wave(phase))
    spread = 0.08 + 0.15 * crouch
    return Pose(
        arms=(Limb(-0.5 - 0.6 * air, 0.3), Limb(0.5 + 0.6 * air, -0.3)),
        legs=(Limb(-spread, 0.3 * crouch), Limb(spread, -0.3 * crouch)),
        hip=(0.0, -0.1 * crouch + 0.14 * air),
    )


# Periods are short enough that even at half speed the 9 frames span half a cycle or more.
ACTIONS: tuple[Action, ...] = (
    Action("walk", walk, side_view=True, period=12, travel=0.5),
    Action("run", run, side_view=True, period=8, travel=0.6),
    Action("jump", jump, side_view=True, period=10),
    Action("wave", wave, side_view=False, period=8),
    Action("clap", clap, side_view=False, period=8),
    Action("box", box, side_view=True, period=8),
    Action("jumping jacks", jumping_jacks, side_view=False, period=10),
    Action("squat", squat, side_view=True, period=10),
    Action("advance", side_hop, side_view=False, period=10, travel=0.45, team=+1, red_share=0.7),
    Action("retreat", side_hop, side_view=False, period=10, travel=0.45, team=-1, red_share=0.5),
)
LABELS: tuple[str, ...] = tuple(a.name for a in ACTIONS)
BIASED_CLASS = "box"  # always in the boxing ring in the normal splits (docs/dataset.md)
CROSS_STREAM_PAIR = ("advance", "retreat")
