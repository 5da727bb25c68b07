"""Streaming per-example statistics of per-sample maps (O(d) memory per example)."""

from __future__ import annotations

import torch
from torch import Tensor


class StreamingMoments:
    r"""Running sum and centred second moment of per-sample maps, merged chunk by chunk.

    The sum is kept in float64, so for {0, 1}-valued maps it is an exact count (up to 2**53
    samples). The centred second moment ``m2 = sum_t (a_t - mean)^2`` is merged with Chan et
    al.'s pairwise update, never as ``E[a^2] - E[a]^2``, which cancels catastrophically.

    Args:
        track_second_moment (bool, optional): Whether to keep ``m2`` (needed for variance-based
                    outputs such as ``vargrad``). Default: False
    """

    def __init__(self, track_second_moment: bool = False) -> None:
        self.track_second_moment = track_second_moment
        self.n = 0
        self.total: Tensor | None = None
        self.m2: Tensor | None = None

    def update(self, chunk: Tensor) -> None:
        """Add a chunk of shape ``(bsz, n_chunk, *feature_shape)``."""
        n_b = chunk.shape[1]
        chunk_total = chunk.sum(dim=1, dtype=torch.float64)
        chunk_m2 = None
        if self.track_second_moment:
            chunk_mean = chunk_total / n_b
            centred = chunk.to(torch.float64) - chunk_mean.unsqueeze(1)
            chunk_m2 = centred.square().sum(dim=1)
        if self.total is None:
            self.n, self.total, self.m2 = n_b, chunk_total, chunk_m2
            return
        n_a = self.n
        if chunk_m2 is not None and self.m2 is not None:
            delta = chunk_total / n_b - self.total / n_a
            self.m2 = self.m2 + chunk_m2 + delta.square() * (n_a * n_b / (n_a + n_b))
        self.total = self.total + chunk_total
        self.n = n_a + n_b

    @property
    def mean(self) -> Tensor:
        """Per-example mean over samples, float64."""
        if self.total is None:
            raise RuntimeError("no samples have been added")
        return self.total / self.n

    @property
    def variance(self) -> Tensor:
        """Per-example population variance (divisor n), float64."""
        if self.m2 is None:
            raise RuntimeError("second moment was not tracked")
        return self.m2 / self.n

    @property
    def second_moment(self) -> Tensor:
        """Per-example E[a^2] = variance + mean^2, float64."""
        return self.variance + self.mean.square()
