"""Small hand-made models for the attack tests (label flips at known points)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BumpModel(nn.Module):
    r"""Two classes on inputs ``(N, 4)``: class 1 iff ``a < x_0 < b``.

    ``logits = [0, 100 (x_0 - a)(b - x_0)]`` with per-example ``(a, b)`` given as an additional
    forward argument of shape ``(N, 2)``. Walking ``x_0`` upwards from below ``a`` flips the
    label at ``a`` and flips it back at ``b``.
    """

    def forward(self, x: Tensor, bounds: Tensor) -> Tensor:
        a, b = bounds[:, 0], bounds[:, 1]
        bump = 100 * (x[:, 0] - a) * (b - x[:, 0])
        return torch.stack([torch.zeros_like(bump), bump], dim=1)


def identity_explainer(model, inputs, target, additional_forward_args=None):
    """The "attribution" is the input itself (with its graph): the walk is fully predictable."""
    return inputs * 1.0


def region_first_feature(n: int, d: int = 4) -> Tensor:
    r = torch.zeros(n, d, dtype=torch.float64)
    r[:, 0] = 1.0
    return r


def small_mlp(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    """A 6 -> 8 -> 3 MLP with an inplace ReLU and a ReLU6, parameters requiring grad."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Linear(6, 8), nn.ReLU(inplace=True), nn.Linear(8, 8), nn.ReLU6(), nn.Linear(8, 3)
        )
    return model.to(dtype)
