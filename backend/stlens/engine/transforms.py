"""Robustness transforms: a random spatial jitter + scale and a temporal shift, fresh every step.

A pattern that survives small shifts in space and time is a feature of the unit, not an
adversarial texture tuned to one pixel grid. Both streams of a batch item get the same draw, so
appearance and motion stay aligned for fusion units. Zooming a flow field by s also multiplies
its displacements by s, so flow vectors are rescaled with the zoom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Draw:
    """One step's random transform, per batch item."""

    shift_xy: torch.Tensor  # (B, 2) integer pixel offsets
    zoom: torch.Tensor  # (B,) magnification
    shift_t: torch.Tensor  # (B,) integer frame offsets (circular: clips are shown as loops)

    def copy_(self, other: Draw) -> None:
        """Overwrite these tensors in place (the static inputs of a CUDA graph)."""
        for mine, theirs in zip((self.shift_xy, self.zoom, self.shift_t), (other.shift_xy, other.zoom, other.shift_t)):
            mine.copy_(theirs)


@dataclass(frozen=True)
class SpacetimeJitter:
    """Draws and applies a :class:`Draw`; all-zero ranges make it the identity."""

    jitter_px: int
    zoom_range: float  # zoom is uniform in [1 - zoom_range, 1 + zoom_range]
    time_shift: int

    def sample(self, generators: Sequence[torch.Generator], frames: int) -> Draw:
        """One draw per batch item from that item's generator (a batch item's path depends only on its seed)."""
        shift_xy, zoom, shift_t = [], [], []
        max_shift_t = min(self.time_shift, frames - 1)
        for g in generators:
            shift_xy.append(torch.randint(-self.jitter_px, self.jitter_px + 1, (2,), generator=g))
            zoom.append(1.0 + (torch.rand((), generator=g) * 2 - 1) * self.zoom_range)
            shift_t.append(torch.randint(-max_shift_t, max_shift_t + 1, (), generator=g))
        return Draw(torch.stack(shift_xy).float(), torch.stack(zoom), torch.stack(shift_t))

    def sample_steps(
        self, generators: Sequence[torch.Generator], frames: int, steps: int, device: torch.device
    ) -> list[Draw]:
        """Every step's draw up front (the same values as ``steps`` calls of :meth:`sample`),
        moved to ``device`` in one copy a field: a GPU loop would otherwise wait on a copy every
        step."""
        draws = [self.sample(generators, frames) for _ in range(steps)]
        fields = [torch.stack([getattr(d, name) for d in draws]).to(device) for name in ("shift_xy", "zoom", "shift_t")]
        return [Draw(*step) for step in zip(*fields)]

    @property
    def moves_space(self) -> bool:
        return self.jitter_px > 0 or self.zoom_range > 0

    def apply(self, clip: torch.Tensor, draw: Draw, is_flow: bool) -> torch.Tensor:
        """Transform a (B, C, T, H, W) display-space clip."""
        if self.moves_space:
            clip = _warp(clip, draw, is_flow)
        if self.time_shift > 0 and clip.shape[2] > 1:
            clip = _roll_time(clip, draw.shift_t)
        return clip


def _resampling_matrices(size: int, zoom: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, size, size) bilinear interpolation matrices for a zoom about the centre and a shift in
    pixels, clamped at the border: row i holds the weights of output pixel i over the inputs."""
    centre = (size - 1) / 2
    out = torch.arange(size, device=zoom.device, dtype=torch.float32)
    source = (out.view(1, -1) - centre) / zoom.view(-1, 1) + centre - shift.view(-1, 1)
    source = source.clamp(0, size - 1)
    return (1 - (source.unsqueeze(2) - out.view(1, 1, -1)).abs()).clamp(min=0)


def _warp(clip: torch.Tensor, draw: Draw, is_flow: bool) -> torch.Tensor:
    """Zoom + shift, separable in x and y: two small batched matmuls instead of a grid sample."""
    batch, channels, frames, height, width = clip.shape
    zoom = draw.zoom.to(clip.device)
    shift = draw.shift_xy.to(clip.device)
    rows = _resampling_matrices(height, zoom, shift[:, 1])
    cols = _resampling_matrices(width, zoom, shift[:, 0])
    out = torch.bmm(clip.reshape(batch, -1, width), cols.transpose(1, 2))  # along x
    out = rows.unsqueeze(1) @ out.view(batch, channels * frames, height, width)  # along y
    out = out.view_as(clip)
    return out * zoom.view(-1, 1, 1, 1, 1) if is_flow else out


def _roll_time(clip: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Circular shift of each batch item's frames by its own offset. Offsets on the CPU are read
    as Python ints (a plain roll); on a GPU they stay there (:func:`_gather_time`)."""
    if shift.device != torch.device("cpu"):
        return _gather_time(clip, shift)
    if bool((shift == shift[0]).all()):
        return clip.roll(int(shift[0]), dims=2)
    return torch.cat([item.roll(int(k), dims=1).unsqueeze(0) for item, k in zip(clip, shift)])


def _gather_time(clip: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """The same circular shift as a gather: the host never reads the offsets, so a GPU step
    neither waits for them nor stops a CUDA graph from recording it."""
    batch, frames = clip.shape[0], clip.shape[2]
    source = (torch.arange(frames, device=clip.device) - shift.view(-1, 1)) % frames  # out[t] = in[t - k]
    return clip.gather(2, source.view(batch, 1, frames, 1, 1).expand_as(clip))
