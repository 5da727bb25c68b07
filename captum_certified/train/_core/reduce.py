"""Batch reduction of per-example loss terms."""

from __future__ import annotations

from torch import Tensor


def reduce(values: Tensor, reduction: str) -> Tensor:
    """``values.sum()`` or ``values.mean()`` of a ``(bsz,)`` tensor."""
    return values.sum() if reduction == "sum" else values.mean()
