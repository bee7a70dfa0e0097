"""The paper's regularisers, one value per batch item, on model-space clips (B, C, T, H, W).

They act on what the network sees (normalised RGB, flow / scale), so one weight means the same
for models trained with different input normalisations. Each has a closed-form gradient;
:func:`weighted_penalty` uses them in one autograd node, which costs a fraction of letting
autograd record every difference and power (the penalties run on every step of every stream).
"""

from __future__ import annotations

from functools import partial

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


def _range_norm_grad(clip: torch.Tensor, vectors: bool) -> torch.Tensor:
    terms = clip[0].numel() // (clip.shape[1] if vectors else 1)
    return clip * _squares(clip, vectors).pow(NORM_ALPHA // 2 - 1) * (NORM_ALPHA / terms)


def _neighbour_grad(clip: torch.Tensor, dim: int) -> torch.Tensor:
    """Gradient of the mean squared difference of neighbours along ``dim`` (no wrap)."""
    size = clip.shape[dim]
    diff = clip.narrow(dim, 1, size - 1) - clip.narrow(dim, 0, size - 1)
    diff = diff * (2 / diff[0].numel())
    grad = torch.zeros_like(clip)
    grad.narrow(dim, 1, size - 1).add_(diff)
    grad.narrow(dim, 0, size - 1).sub_(diff)
    return grad


def _tv_space_grad(clip: torch.Tensor) -> torch.Tensor:
    return _neighbour_grad(clip, -2) + _neighbour_grad(clip, -1)


def _tv_time_grad(clip: torch.Tensor) -> torch.Tensor:
    if clip.shape[2] < 2:
        return torch.zeros_like(clip)
    laplacian = 2 * clip - clip.roll(1, dims=2) - clip.roll(-1, dims=2)
    return laplacian * (2 / clip[0].numel())


class _WeightedPenalty(torch.autograd.Function):
    @staticmethod
    def forward(ctx, clip: torch.Tensor, weights: torch.Tensor, vectors: bool) -> torch.Tensor:
        ctx.save_for_backward(clip, weights)
        ctx.vectors = vectors
        norm = range_norm(clip, vectors)
        return weights[:, 0] * norm + weights[:, 1] * tv_space(clip) + weights[:, 2] * tv_time(clip)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        clip, weights = ctx.saved_tensors
        scale = (weights * grad_out.unsqueeze(1)).view(*weights.shape, 1, 1, 1, 1)
        terms = (partial(_range_norm_grad, vectors=ctx.vectors), _tv_space_grad, _tv_time_grad)
        grad = torch.zeros_like(clip)
        for i, term in enumerate(terms):
            if bool((scale[:, i] != 0).any()):
                grad.add_(term(clip) * scale[:, i])
        return grad, None, None


def weighted_penalty(clip: torch.Tensor, weights: torch.Tensor, vectors: bool = False) -> torch.Tensor:
    """Per item b: weights[b] . (range_norm, tv_space, tv_time) of clip[b]; ``weights`` is (B, 3);
    ``vectors``: the channels are the components of a vector (flow)."""
    return _WeightedPenalty.apply(clip, weights, vectors)
