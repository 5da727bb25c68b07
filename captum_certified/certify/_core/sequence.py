"""A confidence sequence for the expected map: a band valid at every sample size at once."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from captum_certified._utils.statistics import StreamingMoments
from captum_certified._utils.validation import (
    check_positive,
    check_positive_int,
    check_probability,
)
from captum_certified.certify._core.betting import betting_grid, betting_lower_bound


class BettingConfidenceSequence:
    r"""Time-uniform simultaneous band for the expected [0, 1] map, updated chunk by chunk.

    The band of :func:`~captum_certified.certify.betting_band` (bets fixed by
    ``max_samples``, ``d`` and ``alpha`` before any sample is drawn) is a confidence
    *sequence*: with probability at least ``1 - alpha`` it contains every coordinate of the
    expected map at every sample size simultaneously. So it may be read after every chunk and
    sampling may stop when the answer is clear (at any stopping time, however it depends on
    the samples). The running intersection of the bands is kept (it holds on the same event).
    It never uses a fixed-n band at a stopping time, which would not be valid.

    Finished examples leave with :meth:`pop`, so the remaining ones stream on alone.

    Args:
        batch_size (int): Examples streamed together.
        num_features (int): Coordinates ``d`` of each map.
        alpha (float): Failure probability per example.
        max_samples (int): The largest sample size planned (the bets are tuned up to it;
                    validity does not depend on it).
        binary (bool, optional): Maps are {0, 1}-valued: the bound through the means is exact
                    and no second moment is kept. Default: False

    Examples::

        >>> cs = BettingConfidenceSequence(2, 3, alpha=0.05, max_samples=1024)
        >>> cs.update(torch.rand(2, 128, 3, generator=torch.Generator().manual_seed(0)))
        >>> lower, upper = cs.band()
        >>> bool((lower <= upper).all()), cs.n.tolist()
        (True, [128, 128])
    """

    def __init__(
        self,
        batch_size: int,
        num_features: int,
        *,
        alpha: float,
        max_samples: int,
        binary: bool = False,
    ) -> None:
        batch_size = check_positive_int(batch_size, "batch_size")
        self.num_features = check_positive_int(num_features, "num_features")
        self.alpha = check_probability(alpha, "alpha")
        self.max_samples = check_positive_int(max_samples, "max_samples")
        self.binary = bool(binary)
        self.bets = betting_grid(self.max_samples, self.num_features, self.alpha)
        self.level = math.log(2 * self.num_features / self.alpha)
        self.moments = StreamingMoments(track_second_moment=not self.binary)
        self.n = torch.zeros(batch_size, dtype=torch.int64)
        self.lower = torch.zeros(batch_size, self.num_features, dtype=torch.float64)
        self.upper = torch.ones(batch_size, self.num_features, dtype=torch.float64)

    @property
    def batch_size(self) -> int:
        """Examples still streaming."""
        return int(self.n.shape[0])

    def update(self, chunk: Tensor) -> None:
        """Add a chunk of maps of shape ``(bsz, n_chunk, d)`` (values in [0, 1]) and tighten
        the band."""
        if chunk.dim() != 3 or chunk.shape[0] != self.batch_size:
            raise ValueError(
                f"`chunk` must have shape ({self.batch_size}, n_chunk, {self.num_features}), "
                f"got {tuple(chunk.shape)}"
            )
        if chunk.shape[-1] != self.num_features:
            raise ValueError(
                f"`chunk` must have {self.num_features} features, got {chunk.shape[-1]}"
            )
        low, high = torch.aminmax(chunk)
        if not (bool(low >= 0) and bool(high <= 1)):
            raise ValueError("`chunk` values must lie in [0, 1]")
        if self.binary and not bool(((chunk == 0) | (chunk == 1)).all()):
            raise ValueError("`chunk` must be {0, 1}-valued for a binary sequence")
        self.moments.update(chunk)
        self.n = self.n + chunk.shape[1]
        n = torch.tensor(float(self.moments.n), dtype=torch.float64)
        lower, upper = self._ends(n)
        # the running intersection holds on the same event as every band in it
        self.lower = torch.maximum(self.lower, lower)
        self.upper = torch.minimum(self.upper, upper)

    def _ends(self, n: Tensor, margin: float = 0.0) -> tuple[Tensor, Tensor]:
        """Both ends from the current mean and variance as if from ``n`` samples (one call of
        the root finder for both sides); with ``margin`` > 0 the lower ends are computed from
        the mean plus ``margin`` standard errors and the upper ends from the mean minus them
        (a forecast only)."""
        mean = self.moments.mean.cpu()
        m2 = None if self.binary or self.moments.m2 is None else self.moments.m2.cpu()
        low_mean = high_mean = mean
        if margin > 0.0:
            variance = mean * (1.0 - mean) if m2 is None else m2 / self.moments.n
            shift = margin * (variance.clamp(min=0.0) / self.moments.n).sqrt()
            low_mean, high_mean = (mean + shift).clamp(0.0, 1.0), (mean - shift).clamp(0.0, 1.0)
        if m2 is not None:
            m2 = m2 * (float(n) / self.moments.n)
            m2 = torch.cat([m2, m2])
        both = betting_lower_bound(
            torch.cat([low_mean, 1.0 - high_mean]), m2, n, self.level, self.bets
        )
        lower, flipped = both.split(mean.shape[0])
        upper = torch.nextafter(1.0 - flipped, torch.full_like(flipped, 2.0)).clamp(max=1.0)
        return lower, upper

    def projected_band(self, n: int, margin: float = 0.0) -> tuple[Tensor, Tensor]:
        """The band the sequence would give after ``n`` samples if the variance stayed as it
        is now and the mean were ``margin`` standard errors (of the current mean) more
        favourable in every coordinate (lower ends from ``mean + margin * se``, upper ends
        from ``mean - margin * se``; ``margin = 0``: the mean as it is): a forecast for
        stopping rules, never a confidence statement."""
        margin = check_positive(margin, "margin", allow_zero=True)
        return self._ends(torch.tensor(float(n), dtype=torch.float64), margin)

    def band(self) -> tuple[Tensor, Tensor]:
        """The current band ``(lower, upper)``, float64 ``(bsz, d)``, valid at any stopping
        time."""
        return self.lower, self.upper

    def pop(self, finished: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Remove the examples where ``finished`` (``(bsz,)`` bool) is True.

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: their ``(lower, upper, n, mean)`` (the mean
            map, float64); the sequence keeps streaming the others.
        """
        finished = torch.as_tensor(finished, dtype=torch.bool).cpu()
        if finished.shape != (self.batch_size,):
            raise ValueError(
                f"`finished` must have shape ({self.batch_size},), got {tuple(finished.shape)}"
            )
        mean = self.moments.mean.cpu()[finished]
        out = (self.lower[finished], self.upper[finished], self.n[finished], mean)
        keep = ~finished
        self.lower, self.upper, self.n = self.lower[keep], self.upper[keep], self.n[keep]
        moments = self.moments
        if moments.total is not None:
            idx = keep.nonzero().squeeze(-1).to(moments.total.device)
            moments.total = moments.total[idx]
            if moments.m2 is not None:
                moments.m2 = moments.m2[idx]
        return out
