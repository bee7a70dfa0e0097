"""The paper's regularisers, one value per batch item, on model-space clips (B, C, T, H, W).

They act on what the network sees (normalised RGB, flow / scale), so one weight means the same
for models trained with different input normalisations. Each has a closed-form gradient;
:func:`weighted_penalty` computes all three and their gradient in one autograd node, which costs
a fraction of letting autograd record every difference and power (the penalties run on every
step of every stream).
"""

from __future__ import annotations

import torch

NORM_ALPHA = 6  # an even power: nearly free inside the data's range, steep outside (Mahendran & Vedaldi)


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


class _WeightedPenalty(torch.autograd.Function):
    """Values and gradient in one pass over the clip: every difference is taken once and serves
    both; the gradient (closed form) is kept for the backward, which only scales it."""

    @staticmethod
    def forward(ctx, clip: torch.Tensor, weights: torch.Tensor, vectors: bool) -> torch.Tensor:
        batch = clip.shape[0]
        per_item = clip[0].numel()

        def weight(i: int) -> torch.Tensor:
            return weights[:, i].view(batch, 1, 1, 1, 1)

        # range norm: mean s^(alpha/2), s = x^2 or |v|^2; d/dx = alpha x s^(alpha/2 - 1) / terms
        squares = _squares(clip, vectors)
        terms = per_item // (clip.shape[1] if vectors else 1)
        power = squares.pow(NORM_ALPHA // 2 - 1)
        value = weights[:, 0] * _per_item_mean(power * squares)
        grad = clip * power * (weight(0) * (NORM_ALPHA / terms))
        # neighbour differences: d/dx of mean d^2 adds 2d/n to the later and subtracts it from the earlier
        for dim, weight_index in ((-2, 1), (-1, 1), (2, 2)):
            size = clip.shape[dim]
            if size < 2:
                continue
            if dim == 2:  # time wraps around: the last frame's successor is the first
                diff = clip.roll(-1, dims=2) - clip
            else:
                diff = clip.narrow(dim, 1, size - 1) - clip.narrow(dim, 0, size - 1)
            value = value + weights[:, weight_index] * _per_item_mean(diff.square())
            diff = diff * (weight(weight_index) * (2 / diff[0].numel()))
            if dim == 2:
                grad.add_(diff.roll(1, dims=2)).sub_(diff)
            else:
                grad.narrow(dim, 1, size - 1).add_(diff)
                grad.narrow(dim, 0, size - 1).sub_(diff)
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (grad,) = ctx.saved_tensors
        return grad * grad_out.view(-1, 1, 1, 1, 1), None, None


def weighted_penalty(clip: torch.Tensor, weights: torch.Tensor, vectors: bool = False) -> torch.Tensor:
    """Per item b: weights[b] . (range_norm, tv_space, tv_time) of clip[b]; ``weights`` is (B, 3);
    ``vectors``: the channels are the components of a vector (flow)."""
    return _WeightedPenalty.apply(clip, weights, vectors)
