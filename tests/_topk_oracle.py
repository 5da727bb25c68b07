"""Brute-force oracle for top-K overlaps under every tie-breaking, and random test instances.

Shared by the brute-force soundness tests of the Gaussian (tests/certify) and RDP (tests/renyi)
top-K rules; written independently of the package.
"""

from __future__ import annotations

import itertools

import numpy as np


def _split_at_kth(v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(strictly above the k-th largest value, tied with it, how many tied ones a top-k takes)."""
    kth = np.sort(v)[::-1][k - 1]
    above = v > kth
    tied = v == kth
    return above, tied, k - int(above.sum())


def valid_topk_sets(v: np.ndarray, k: int) -> list[np.ndarray]:
    """Every boolean mask S with |S| = k and min_S v >= max_{not S} v (all tie-breakings)."""
    above, tied, need = _split_at_kth(v, k)
    masks = []
    for chosen in itertools.combinations(np.flatnonzero(tied), need):
        mask = above.copy()
        mask[list(chosen)] = True
        masks.append(mask)
    return masks


def min_overlap(p: np.ndarray, q: np.ndarray, k: int) -> int:
    """min over valid top-k sets S of p and S' of q of |S ∩ S'| (the worst tie-breaking).

    For a fixed S, the worst S' takes every index strictly above q's k-th value and fills the
    remaining ``need`` slots from q's tied group, outsiders of S first.
    """
    above_q, tied_q, need_q = _split_at_kth(q, k)
    best = k
    for s in valid_topk_sets(p, k):
        free_outsiders = int((tied_q & ~s).sum())
        best = min(best, int((s & above_q).sum()) + max(0, need_q - free_outsiders))
    return best


def draw_map(rng: np.random.Generator, d: int) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:  # continuous, no ties
        return rng.uniform(0.0, 1.0, d)
    if kind == 1:  # coarse grid: ties, exact 0s and 1s
        return rng.integers(0, 6, d) / 5.0
    p = rng.uniform(0.0, 1.0, d)  # continuous with some exact 0s and 1s
    p[rng.uniform(size=d) < 0.2] = 0.0
    p[rng.uniform(size=d) < 0.1] = 1.0
    return p


def draw_band(
    rng: np.random.Generator,
    p: np.ndarray,
    kind: str,
    *,
    constant_width: float,
    variable_width: float,
    vacuous_ends: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A band lower <= p <= upper: ``kind`` "exact", "constant" or "variable" width.

    Variable widths are independent of p, and some coordinates are exact; with
    ``vacuous_ends`` some coordinates are also vacuous on one side (0 or 1).
    """
    d = p.shape[0]
    if kind == "exact":
        return p.copy(), p.copy()
    if kind == "constant":
        w = rng.uniform(0.0, constant_width)
        return np.clip(p - w, 0.0, 1.0), np.clip(p + w, 0.0, 1.0)
    lo_w = rng.uniform(0.0, variable_width, d) * (rng.uniform(size=d) < 0.8)
    up_w = rng.uniform(0.0, variable_width, d) * (rng.uniform(size=d) < 0.8)
    lower = np.clip(p - lo_w, 0.0, 1.0)
    upper = np.clip(p + up_w, 0.0, 1.0)
    if vacuous_ends:
        lower[rng.uniform(size=d) < 0.05] = 0.0
        upper[rng.uniform(size=d) < 0.05] = 1.0
    return lower, upper
