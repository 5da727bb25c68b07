"""Deterministic top-k selection with ties broken by lowest index."""

from __future__ import annotations

from torch import Tensor


def topk_mask(scores: Tensor, k: int) -> Tensor:
    r"""Boolean mask of exactly ``k`` largest entries per row, ties broken by lowest index.

    ``torch.topk`` does not specify which of several tied entries it returns. Here every entry
    strictly above the k-th largest value is kept, and the remaining slots go to the entries
    equal to it in index order, so the mask is a deterministic function of ``scores``.

    Args:
        scores (Tensor): ``(N, d)`` values.
        k (int): Entries to keep per row, ``1 <= k <= d``.

    Returns:
        Tensor: bool mask of shape ``(N, d)`` with exactly ``k`` True per row.
    """
    threshold = scores.topk(k, dim=1, sorted=False).values.min(dim=1, keepdim=True).values
    at_least = scores >= threshold
    # no tie at the k-th value: nothing to break. The test reads a value on the host, free on
    # the CPU; on an accelerator it would stop the sampling loop once per chunk, so there the
    # tie-break below (the same mask when there is no tie) always runs
    if scores.device.type == "cpu" and bool((at_least.sum(dim=1) == k).all()):
        return at_least
    return _break_ties(scores, threshold, at_least, k)


def _break_ties(scores: Tensor, threshold: Tensor, at_least: Tensor, k: int) -> Tensor:
    """The entries above ``threshold`` and the first tied ones in index order (no host sync)."""
    above = scores > threshold
    tied = at_least & ~above
    slots = k - above.sum(dim=1, keepdim=True)
    return above | (tied & (tied.cumsum(dim=1) <= slots))


def topk_indices(scores: Tensor, k: int) -> Tensor:
    r"""Indices of the ``k`` largest entries per row, in rank order, ties by lowest index.

    The same selection as :func:`topk_mask` (a stable descending sort keeps tied values in
    index order), with the ranks: column ``r`` holds the feature of rank ``r + 1``.

    Args:
        scores (Tensor): ``(N, d)`` values.
        k (int): Entries per row, ``0 <= k <= d``.

    Returns:
        Tensor: int64 indices of shape ``(N, k)``.
    """
    return scores.sort(dim=1, descending=True, stable=True).indices[:, :k]


def kth_largest(scores: Tensor, k: int) -> Tensor:
    """The k-th largest value per row, shape ``(N, 1)``."""
    return scores.topk(k, dim=1, sorted=False).values.min(dim=1, keepdim=True).values
