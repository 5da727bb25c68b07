#!/usr/bin/env python3
r"""Kendall's tau-b and Spearman's rho between attribution maps, batched and tie-aware.

Both work on ``(bsz, d)`` maps with only torch ops (CPU or GPU). Floats are mapped to
order-preserving int32 keys and sorted stably (on CPU, long rows one at a time with torch's 1-D
radix sort); ties are the runs of equal sorted keys.

* Spearman: average ranks (each tie run gets the mean of its positions) and their Pearson
  correlation.
* Kendall tau-b: ties in a, in b and joint ties come from run lengths. The discordant pairs are
  counted, per row, either from the contingency table of the dense ranks when the maps have few
  distinct values (sparsified, binary or quantised maps: O(d + m_a m_b)), or in O(d log d) as
  the strict inversions of b in lexicographic (a, b) order, by a vectorised top-down merge over
  the position bits (one cumsum and one scatter per bit, log2(d) passes).
* On CPU about one ImageNet-sized map is processed at a time, so that the passes stay in cache.

All counts are exact integers (int64), and the final ratio is taken in float64.
"""

from collections.abc import Callable

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified.metrics._core.preprocess import TensorOrTuple, _prepare_pair_flat
from captum_certified.metrics.kernels import cosine_flat

# Elements (rows x padded length) processed together by the inversion count on CPU: a few MiB
# of int32 per buffer keeps every pass of the merge levels in cache.
_INVERSION_CHUNK_ELEMS = 1 << 18
# Elements processed together by the sort-based stages: on CPU about one ImageNet-sized map
# at a time, which keeps the gathers and scatters in cache; small maps are still batched.
_SORT_CHUNK_ELEMS = 1 << 18
# The same on accelerators, where larger batches are better.
_DEVICE_CHUNK_ELEMS = 1 << 24
# Kendall uses the contingency table of the dense ranks for rows where (distinct values of a)
# x (distinct values of b) is at most max(this x d, _TABLE_MIN_CELLS).
_TABLE_CELLS_PER_FEATURE = 8
_TABLE_MIN_CELLS = 1 << 16

# Rows at least this long are sorted one by one (1-D radix sort) on CPU.
_ROW_SORT_MIN_D = 1 << 14

_INT32_INDEX_OK: dict[str, bool] = {}


def _index_dtype(device: torch.device) -> torch.dtype:
    """int32 when gather/scatter accept int32 indices on this device (recent torch), else int64."""
    key = device.type
    if key not in _INT32_INDEX_OK:
        try:
            src = torch.arange(4, dtype=torch.int32, device=device).view(1, 4)
            idx = torch.tensor([[3, 2, 1, 0]], dtype=torch.int32, device=device)
            ok = torch.equal(torch.empty_like(src).scatter_(1, idx, src).flip(1), src)
        except (RuntimeError, TypeError):
            ok = False
        _INT32_INDEX_OK[key] = ok
    return torch.int32 if _INT32_INDEX_OK[key] else torch.int64


def _stable_sort_rows(keys: Tensor) -> tuple[Tensor, Tensor]:
    """Stable sort of each row of int32 ``keys``: (sorted keys, permutation), both (R, d).

    On CPU, long rows are sorted one at a time as 1-D int32 tensors, which torch sorts with a
    radix sort, several times faster than a row-wise sort.
    """
    if keys.device.type != "cpu" or keys.shape[1] < _ROW_SORT_MIN_D:
        return torch.sort(keys, dim=1, stable=True)
    if keys.shape[0] == 1:
        sv, perm = torch.sort(keys[0], stable=True)
        return sv.unsqueeze(0), perm.unsqueeze(0)
    pairs = [torch.sort(row, stable=True) for row in keys]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def _sort_runs(x: Tensor) -> tuple[Tensor, Tensor]:
    """Stable sort of each row of a floating tensor (ties by index).

    Returns (permutation, ``new``) where ``new[:, j]`` is True when sorted position j starts a
    run of equal values. Floats are mapped to order-preserving int32 keys (-0.0 == 0.0).
    """
    x = x.contiguous() + 0.0  # -0.0 -> +0.0, so that the two zeros are one tie
    if x.dtype == torch.float64:
        bits = x.view(torch.int64)
        key = torch.where(bits < 0, bits ^ 0x7FFFFFFFFFFFFFFF, bits)  # signed-int64 order
        hi = (key >> 32).to(torch.int32)  # signed high half
        lo = ((key & 0xFFFFFFFF) - (1 << 31)).to(torch.int32)  # unsigned low half, shifted
        _, p1 = _stable_sort_rows(lo)  # least significant half first (LSD)
        hs, p2 = _stable_sort_rows(hi.gather(1, p1))
        perm = p1.gather(1, p2)
        ls = lo.gather(1, perm)
        new = torch.ones_like(perm, dtype=torch.bool)
        new[:, 1:] = (hs[:, 1:] != hs[:, :-1]) | (ls[:, 1:] != ls[:, :-1])
        return perm, new
    if x.dtype != torch.float32:
        x = x.to(torch.float32)  # float16 / bfloat16: exact
    bits = x.view(torch.int32)
    key = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # signed-int32 order
    sv, perm = _stable_sort_rows(key)
    new = torch.ones_like(sv, dtype=torch.bool)
    new[:, 1:] = sv[:, 1:] != sv[:, :-1]
    return perm, new


def _run_counts(new: Tensor) -> tuple[Tensor, Tensor]:
    """From run-start flags: (dense run id of each sorted position, run sizes indexed by id),
    both (R, d) int64 (sizes are 0 past the last run)."""
    rows, d = new.shape
    dense = torch.cumsum(new, dim=1) - 1
    offsets = torch.arange(rows, device=new.device, dtype=torch.int64)[:, None] * d
    counts = torch.bincount((dense + offsets).view(-1), minlength=rows * d).view(rows, d)
    return dense, counts


def _tied_pairs(counts: Tensor) -> Tensor:
    """Sum over runs of t(t-1)/2, int64 (R,)."""
    return (counts * (counts - 1)).sum(dim=1) // 2


def _average_ranks(x: Tensor) -> Tensor:
    """1-based average ranks (scipy ``rankdata(method="average")``) of each row, float64."""
    perm, new = _sort_runs(x)
    dense, counts = _run_counts(new)
    starts = torch.cumsum(counts, dim=1) - counts
    avg_by_run = starts.to(torch.float64) + (counts.to(torch.float64) + 1.0) * 0.5
    avg = avg_by_run.gather(1, dense)
    return torch.empty_like(avg).scatter_(1, perm, avg)


def _count_inversions_from_order(arr: Tensor) -> Tensor:
    """Strict inversions of a sequence v given ``arr``: the positions 0..N-1 listed in order of
    (v, position), N a power of two >= 2. Returns int64 (R,).

    Top-down: inside every aligned block of 2W positions (already in (v, position) order), an
    element of the right half (position bit W set) that comes *before* an element of the left
    half has a smaller value and a larger position: one inversion. Their number is the sum, over
    left-half elements, of the right-half elements before them. Then each block is stably split
    into its two halves, which are in (v, position) order for the next level.
    """
    rows, n = arr.shape
    dev, dt = arr.device, arr.dtype
    total = torch.zeros(rows, dtype=torch.int64, device=dev)
    t_full = torch.arange(n, device=dev, dtype=dt)
    arr = arr.clone()
    out = torch.empty_like(arr)
    right = torch.empty(rows * n, dtype=dt, device=dev)
    c1 = torch.empty(rows * n, dtype=dt, device=dev)
    pos = torch.empty(rows * n, dtype=dt, device=dev)
    w = n // 2
    while w >= 2:
        nb = n // (2 * w)
        shape = (rows * nb, 2 * w)
        blocks, r, c, p = arr.view(shape), right.view(shape), c1.view(shape), pos.view(shape)
        t = t_full[: 2 * w]
        torch.bitwise_right_shift(blocks, w.bit_length() - 1, out=r)
        r.bitwise_and_(1)  # 1 for the right half of the block
        torch.cumsum(r, dim=1, dtype=dt, out=c)  # right-half elements so far (inclusive)
        # sum over left-half elements of c = sum over all - sum over right ones (1..w per block)
        # (summed in segments short enough for the index dtype not to overflow)
        seg = max(1, min(2 * w, (1 << 30) // w))
        part = c.view(-1, seg).sum(dim=1, dtype=dt).view(rows, -1)
        total += part.sum(dim=1, dtype=torch.int64) - nb * (w * (w + 1) // 2)
        # new position: left elements t - c (keep their order in [0, w)), right ones w - 1 + c
        torch.sub(t, c, out=p)
        c.mul_(2).sub_(t - (w - 1))  # (w - 1 + c) - (t - c)
        p.addcmul_(c, r)
        out.view(shape).scatter_(1, p, blocks)
        arr, out = out, arr
        w //= 2
    # blocks of two: an inversion when the first element is the right one
    total += torch.bitwise_and(arr.view(rows, -1, 2)[:, :, 0], 1).sum(dim=1, dtype=torch.int64)
    return total


def _strict_inversions(order: Tensor) -> Tensor:
    """``order`` (R, d): positions 0..d-1 of a sequence listed in (value, position) order."""
    rows, d = order.shape
    n = 1 << max(1, (d - 1).bit_length())
    dt = _index_dtype(order.device) if n <= 2**31 else torch.int64
    order = order.to(dt)
    if n > d:  # padding positions at the end, with the largest values: no inversion
        pad = torch.arange(d, n, device=order.device, dtype=dt).expand(rows, n - d)
        order = torch.cat([order, pad], dim=1)
    if order.device.type != "cpu":
        return _count_inversions_from_order(order)
    step = max(1, _INVERSION_CHUNK_ELEMS // n)
    return torch.cat(
        [_count_inversions_from_order(order[i : i + step]) for i in range(0, rows, step)]
    )


def _joint_and_discordant_table(
    da_sorted: Tensor, pa: Tensor, db_sorted: Tensor, pb: Tensor
) -> tuple[Tensor, Tensor]:
    """(joint tied pairs, discordant pairs) from the contingency table of the dense ranks.

    For maps with few distinct values (sparsified, binary, quantised maps): with N[i, j] the
    number of features with a-rank i and b-rank j, discordant pairs are
    sum N[i, j] * sum_{i' > i, j' < j} N[i', j'] and joint ties sum N (N - 1) / 2, in
    O(d + m_a m_b) with two cumulative sums.
    """
    rows = da_sorted.shape[0]
    ma = int(da_sorted[:, -1].max()) + 1
    mb = int(db_sorted[:, -1].max()) + 1
    db = torch.empty_like(db_sorted).scatter_(1, pb, db_sorted)
    cell = da_sorted * mb + db.gather(1, pa)  # in a's sorted order; the order does not matter
    if rows > 1:
        cell += torch.arange(rows, device=cell.device)[:, None] * (ma * mb)
    table = torch.bincount(cell.view(-1), minlength=rows * ma * mb).view(rows, ma, mb)
    joint = (table * (table - 1)).sum(dim=(1, 2)) // 2
    below = table.flip(1).cumsum(1).flip(1) - table  # sum over i' > i of N[i', j]
    left_below = below.cumsum(2) - below  # ... and j' < j
    return joint, (table * left_below).sum(dim=(1, 2))


def _joint_and_discordant_merge(
    pa: Tensor, new_a: Tensor, da_sorted: Tensor, pb: Tensor, new_b: Tensor, db_sorted: Tensor
) -> tuple[Tensor, Tensor]:
    """(joint tied pairs, discordant pairs) by sorting and counting inversions, O(d log d)."""
    rows, d = pa.shape
    dev = pa.device
    a_ties = bool((~new_a[:, 1:]).any())
    b_ties = bool((~new_b[:, 1:]).any())
    joint = torch.zeros(rows, dtype=torch.int64, device=dev)
    if a_ties:
        # (a, b) order, ties broken by index: stable sort of the b-ordered sequence by a's
        # dense rank. a-runs sit at the same places as in a's own sorted order.
        da = torch.empty_like(da_sorted).scatter_(1, pa, da_sorted)
        perm_ab = pb.gather(1, _stable_sort_rows(da.gather(1, pb).to(torch.int32))[1])
    else:
        perm_ab = pa
    if a_ties or b_ties:
        db = torch.empty_like(db_sorted).scatter_(1, pb, db_sorted)
        db_ab = db.gather(1, perm_ab)  # b's dense ranks in (a, b) order
    if a_ties and b_ties:  # joint ties: runs of (a, b)
        new_ab = new_a.clone()
        new_ab[:, 1:] |= db_ab[:, 1:] != db_ab[:, :-1]
        joint = _tied_pairs(_run_counts(new_ab)[1])
    # In (a, b) order the discordant pairs are the strict inversions of b. The inversion count
    # wants the (a, b)-positions listed in (b, position) order.
    if b_ties:
        order = _stable_sort_rows(db_ab.to(torch.int32))[1]
    else:  # b's sorted order, mapped to (a, b)-positions
        pos_ab = torch.empty_like(perm_ab).scatter_(
            1, perm_ab, torch.arange(d, device=dev).expand(rows, d)
        )
        order = pos_ab.gather(1, pb)
    return joint, _strict_inversions(order)


def _kendall_tau_b_rows(a: Tensor, b: Tensor) -> Tensor:
    """Kendall tau-b of each row pair, float64 (NaN where a row of a or b is constant)."""
    rows, d = a.shape
    pa, new_a = _sort_runs(a)
    pb, new_b = _sort_runs(b)
    da_sorted, counts_a = _run_counts(new_a)
    db_sorted, counts_b = _run_counts(new_b)
    n1 = _tied_pairs(counts_a)
    n2 = _tied_pairs(counts_b)
    # rows with few distinct values use the contingency table, the others the merge count
    cells = (da_sorted[:, -1] + 1) * (db_sorted[:, -1] + 1)
    small = cells <= max(_TABLE_CELLS_PER_FEATURE * d, _TABLE_MIN_CELLS)
    args = (pa, new_a, da_sorted, pb, new_b, db_sorted)
    if bool(small.all()):
        n3, n_dis = _joint_and_discordant_table(da_sorted, pa, db_sorted, pb)
    elif not bool(small.any()):
        n3, n_dis = _joint_and_discordant_merge(*args)
    else:
        n3 = torch.empty_like(n1)
        n_dis = torch.empty_like(n1)
        idx = small.nonzero().squeeze(1)
        n3[idx], n_dis[idx] = _joint_and_discordant_table(
            da_sorted[idx], pa[idx], db_sorted[idx], pb[idx]
        )
        idx = (~small).nonzero().squeeze(1)
        n3[idx], n_dis[idx] = _joint_and_discordant_merge(*(t[idx] for t in args))
    n0 = d * (d - 1) // 2
    numer = (n0 - n1 - n2 + n3 - 2 * n_dis).to(torch.float64)
    denom = torch.sqrt((n0 - n1).to(torch.float64)) * torch.sqrt((n0 - n2).to(torch.float64))
    tau = numer / denom
    return torch.where(denom > 0, tau.clamp(-1.0, 1.0), torch.full_like(tau, float("nan")))


def _centered_ranks(flat: Tensor) -> Tensor:
    """Average ranks of each row minus their mean ``(d + 1) / 2`` (exact), float64."""
    return _average_ranks(flat).sub_((flat.shape[1] + 1) / 2.0)


def _spearman_rho_rows(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rho of each row pair: the cosine of the centred average ranks (their Pearson
    correlation), float64 (NaN where a row of a or b is constant)."""
    return cosine_flat(_centered_ranks(a), _centered_ranks(b))


def _by_row_chunks(fn: Callable[[Tensor, Tensor], Tensor], a: Tensor, b: Tensor) -> Tensor:
    budget = _SORT_CHUNK_ELEMS if a.device.type == "cpu" else _DEVICE_CHUNK_ELEMS
    step = max(1, budget // a.shape[1])
    if a.shape[0] <= step:
        return fn(a, b)
    return torch.cat([fn(a[i : i + step], b[i : i + step]) for i in range(0, a.shape[0], step)])


def _kendall_tau_flat(a: Tensor, b: Tensor) -> Tensor:
    return _by_row_chunks(_kendall_tau_b_rows, a, b)


def _spearman_rho_flat(a: Tensor, b: Tensor) -> Tensor:
    return _by_row_chunks(_spearman_rho_rows, a, b)


@log_usage()
@torch.no_grad()
def kendall_tau(
    attr_a: TensorOrTuple,
    attr_b: TensorOrTuple,
    reduce_channels: str | None = None,
    normalize: str | None = None,
    protocol: str | None = None,
) -> Tensor:
    r"""
    Kendall's rank correlation :math:`\tau_b` between two attribution maps, per example.

    .. math::
        \tau_b = \frac{n_c - n_d}{\sqrt{(n_0 - n_1)(n_0 - n_2)}}

    with :math:`n_0 = d(d-1)/2`, :math:`n_c` / :math:`n_d` the concordant / discordant pairs and
    :math:`n_1`, :math:`n_2` the pairs tied in ``attr_a`` / ``attr_b``. This is
    ``scipy.stats.kendalltau(a.ravel(), b.ravel(), variant="b")`` over all features, as in
    Chen et al. (RAR) and ART. It is computed in O(d log d) for the whole batch at once, with
    exact integer pair counts, so maps with massive ties (sparsified maps) and d = 150528 are
    fine.

    Args:

        attr_a (Tensor or tuple[Tensor, ...]): Attributions with the batch in dim 0, e.g. the
                output of ``method.attribute``. Tuples are preprocessed element by element,
                then flattened and concatenated per example.
        attr_b (Tensor or tuple[Tensor, ...]): Attributions with the same structure and shapes
                as ``attr_a``.
        reduce_channels (str, optional): ``"sum_abs"``, ``"mean_abs"``, ``"abs"`` or None;
                see :func:`preprocess_attributions`.
                Default: None
        normalize (str, optional): ``"sum_to_hw"``, ``"sum_to_one"`` or None. Rank metrics
                are unchanged by it (up to ties created by floating-point rescaling).
                Default: None
        protocol (str, optional): A key of :data:`PRESETS`, which sets ``reduce_channels``
                and ``normalize``.
                Default: None

    Returns:

        **tau** (Tensor):
                ``(bsz,)`` values in [-1, 1], in the attributions' floating dtype. An example
                where either map is constant (all values tied) gets NaN, as in scipy: the
                statistic is undefined there.

    Examples::

        >>> from captum.attr import Saliency
        >>> saliency = Saliency(net)
        >>> a = saliency.attribute(x, target=y)
        >>> b = saliency.attribute(x + 0.01 * torch.randn_like(x), target=y)
        >>> tau = kendall_tau(a, b, protocol="rar")  # (bsz,)
    """
    fa, fb, dtype = _prepare_pair_flat(attr_a, attr_b, reduce_channels, normalize, protocol)
    return _kendall_tau_flat(fa, fb).to(dtype)


@log_usage()
@torch.no_grad()
def spearman_rho(
    attr_a: TensorOrTuple,
    attr_b: TensorOrTuple,
    reduce_channels: str | None = None,
    normalize: str | None = None,
    protocol: str | None = None,
) -> Tensor:
    r"""
    Spearman's rank correlation between two attribution maps, per example.

    The Pearson correlation of the average ranks of the two maps (ties get the mean of the
    ranks they span), i.e. ``scipy.stats.spearmanr(a.ravel(), b.ravel())`` over all features,
    the "rank correlation" of Ghorbani et al. and SSR. Ranks come from one sort per map and
    are combined in float64.

    Args:

        attr_a (Tensor or tuple[Tensor, ...]): Attributions with the batch in dim 0. Tuples
                are preprocessed element by element, then flattened and concatenated per
                example.
        attr_b (Tensor or tuple[Tensor, ...]): Attributions with the same structure and shapes
                as ``attr_a``.
        reduce_channels (str, optional): ``"sum_abs"``, ``"mean_abs"``, ``"abs"`` or None;
                see :func:`preprocess_attributions`.
                Default: None
        normalize (str, optional): ``"sum_to_hw"``, ``"sum_to_one"`` or None.
                Default: None
        protocol (str, optional): A key of :data:`PRESETS`, which sets ``reduce_channels``
                and ``normalize``.
                Default: None

    Returns:

        **rho** (Tensor):
                ``(bsz,)`` values in [-1, 1], in the attributions' floating dtype; NaN where
                either map is constant (undefined, as in scipy).

    Examples::

        >>> rho = spearman_rho(attr, attr_perturbed, protocol="ghorbani")  # (bsz,)
    """
    fa, fb, dtype = _prepare_pair_flat(attr_a, attr_b, reduce_channels, normalize, protocol)
    return _spearman_rho_flat(fa, fb).to(dtype)
