"""The classifier that ends a stream: pool its features over space and time, then a linear layer."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class PooledHead(nn.Module):
    """Global ``pool`` (mean or max over T, H, W), dropout, then ``fc`` to the class logits."""

    def __init__(self, channels: int, num_classes: int, dropout: float, pool: Literal["mean", "max"]):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.amax(dim=(2, 3, 4)) if self.pool == "max" else x.mean(dim=(2, 3, 4))
        return self.fc(self.dropout(pooled))
