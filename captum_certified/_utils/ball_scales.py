"""Scales of uniform l2-ball noise: one value per example, shared by all its input tensors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def _row_values(scale: Tensor, shape: Sequence[int], name: str) -> Tensor:
    """The per-row value of a scale broadcastable to ``shape``; ValueError if it varies in a row."""
    s = scale.detach()
    if s.dim() < len(shape):
        s = s.reshape((1,) * (len(shape) - s.dim()) + tuple(s.shape))
    flat = s.reshape(s.shape[0], -1)
    if flat.shape[1] > 1 and not torch.equal(flat.amin(dim=1), flat.amax(dim=1)):
        raise ValueError(
            f"`{name}` of uniform l2-ball noise must be one value per example, shared by all "
            "features and inputs (the ball is isotropic); got a per-feature or per-channel value"
        )
    return flat[:, 0].expand(int(shape[0]))


def check_ball_scales(
    shapes: Sequence[Sequence[int]], scales: Sequence[Tensor], name: str = "radius"
) -> Tensor:
    """Check that l2-ball scales are one value per row shared by all inputs; return ``(N,)``."""
    rows = [_row_values(s, shape, name) for s, shape in zip(scales, shapes)]
    for other in rows[1:]:
        # a relative tolerance lets inputs of different float dtypes share a radius
        if not torch.allclose(other.to(rows[0]), rows[0], rtol=1e-6, atol=0.0):
            raise ValueError(
                f"`{name}` of uniform l2-ball noise must be the same for all input tensors of "
                "an example (the noise is one ball over all their features)"
            )
    return rows[0]
