"""The paper's regularisers, one value per batch item, on model-space clips (B, C, T, H, W).

They act on what the network sees (normalised RGB, flow / scale), so one weight means the same
for models trained with different input normalisations. The functions give the values (for
analysis and tests); the optimisation loop uses :func:`penalty_gradient`, their weighted
gradient in closed form.
"""

from __future__ import annotations

import torch

NORM_ALPHA = 6  # an even power >= 4: nearly free inside the data's range, steep outside (Mahendran & Vedaldi)


def _per_item_mean(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(1)


def _squares(clip: torch.Tensor, vectors: bool) -> torch.Tensor:
    """x^2 per value, or |v|^2 per position when the channels are the components of a vector."""
    return clip.square().sum(1, keepdim=True) if vectors else clip.square()


def range_norm(clip: torch.Tensor, vectors: bool = False) -> torch.Tensor:
    """Bounded-range / L-alpha penalty: mean x^alpha per value (RGB: a soft box), or mean |v|^alpha
    per position for flow (``vectors``: a soft disc, which favours no direction)."""
    return _per_item_mean(_squares(clip, vectors).pow(NORM_ALPHA // 2))


def tv_space(clip: torch.Tensor) -> torch.Tensor:
    """Spatial total variation: mean squared difference of vertical plus of horizontal neighbours."""
    return _per_item_mean((clip[..., 1:, :] - clip[..., :-1, :]).square()) + _per_item_mean(
        (clip[..., 1:] - clip[..., :-1]).square()
    )


def tv_time(clip: torch.Tensor) -> torch.Tensor:
    """Temporal variation: mean squared difference of consecutive frames, the last wrapping to the
    first (the result plays as a loop). Zero for a single frame."""
    if clip.shape[2] < 2:
        return clip.new_zeros(clip.shape[0])
    return _per_item_mean((clip.roll(-1, dims=2) - clip).square())


def penalty_gradient(clip: torch.Tensor, weights: torch.Tensor, vectors: bool = False) -> torch.Tensor:
    """The gradient with respect to ``clip`` of, per item b, weights[b] . (range_norm, tv_space,
    tv_time) of clip[b]; ``weights`` is (B, 3); ``vectors``: the channels are the components of a
    vector (flow).

    Only the gradient: the loop never reports the penalties' values, and the closed form takes
    about half the passes over the clip that values + autograd would (this runs on every step of
    every stream, beside a network that may cost only a few times as much).
    """
    batch = clip.shape[0]
    factor = weights.to(clip.dtype).view(batch, 3, 1, 1, 1, 1).unbind(1)  # each (B, 1, 1, 1, 1)
    # range norm, mean s^(alpha/2) with s = x^2 or |v|^2: d/dx = alpha * x * s^(alpha/2 - 1) / terms
    terms = clip[0, 0].numel() if vectors else clip[0].numel()
    squares = _squares(clip, vectors)
    grad = clip * squares
    for _ in range(NORM_ALPHA // 2 - 2):  # x s^(alpha/2 - 1) by products: a generic pow is ~10x slower
        grad.mul_(squares)
    grad.mul_(factor[0] * (NORM_ALPHA / terms))
    # mean squared neighbour differences: d/dx adds 2d/n to the later value, subtracts it from the earlier
    for dim, which in ((-2, 1), (-1, 1), (2, 2)):
        size = clip.shape[dim]
        if size < 2:
            continue
        # time wraps around (the clip plays as a loop): the last frame's successor is the first
        diff = clip.roll(-1, dims=2) - clip if dim == 2 else torch.diff(clip, dim=dim)
        diff.mul_(factor[which] * (2 / diff[0].numel()))
        if dim == 2:
            grad.add_(diff.roll(1, dims=2)).sub_(diff)
        else:
            grad.narrow(dim, 1, size - 1).add_(diff)
            grad.narrow(dim, 0, size - 1).sub_(diff)
    return grad
