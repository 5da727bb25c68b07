"""A small CNN trained on scikit-learn's real 8x8 digits, shared by the tests.

Training takes a few seconds on CPU and is deterministic (fixed seeds, one thread of
randomness via a local generator), so every test sees the same model.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """Two 3x3 conv layers and a linear head for 1x8x8 inputs in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as (N, 1, 8, 8) float32 in [0, 1] and int64 labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    return x, y


@functools.lru_cache(maxsize=1)
def trained_digits_cnn(epochs: int = 15) -> tuple[DigitsCNN, torch.Tensor, torch.Tensor, float]:
    """Train once per process; return (model in eval mode, test x, test y, test accuracy)."""
    x, y = load_digits_tensors()
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    train, test = perm[:1400], perm[1400:]
    state = torch.random.get_rng_state()
    torch.manual_seed(0)  # parameter init; restored below so tests see no global change
    model = DigitsCNN()
    torch.random.set_rng_state(state)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        order = train[torch.randperm(len(train), generator=g)]
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, x[test], y[test], acc
