"""Tiny float64 models for the training-loss tests."""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """3-channel 4x4 inputs, smooth (Softplus) or ReLU units, 4 classes."""

    def __init__(self, act: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = act if act is not None else nn.Softplus(beta=2.0)
        self.head = nn.Linear(4 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv(x)).flatten(1))


def tiny(seed: int = 0, act: nn.Module | None = None) -> TinyCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyCNN(act).double()
        for p in model.parameters():
            p.data.mul_(2.0)
    return model


def batch(seed: int = 1, n: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 4, 4, generator=g, dtype=torch.float64)
    x_adv = (x + 0.2 * (2 * torch.rand(x.shape, generator=g, dtype=torch.float64) - 1)).clamp(0, 1)
    y = torch.randint(0, 4, (n,), generator=g)
    return x, x_adv, y
