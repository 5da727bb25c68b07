"""The internals of the vectorised rank statistics: inversion counting, integer sort keys,
chunking and the int64-index fallback."""

import numpy as np
import pytest
import torch
from scipy import stats

from captum_certified.metrics._core import rank_correlation as rc


def brute_inversions(seq):
    n = len(seq)
    return sum(int(seq[i] > seq[j]) for i in range(n) for j in range(i + 1, n))


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 31, 64, 100])
def test_strict_inversions_match_brute_force(d):
    gen = torch.Generator().manual_seed(d)
    values = torch.randint(0, 4, (6, d), generator=gen)
    values[0] = torch.arange(d)  # no inversion
    values[1] = torch.arange(d).flip(0)  # all pairs
    order = torch.sort(values, dim=1, stable=True).indices
    got = rc._strict_inversions(order)
    ref = [brute_inversions(values[i].tolist()) for i in range(6)]
    assert got.tolist() == ref
    assert ref[1] == d * (d - 1) // 2


def test_int64_index_fallback(monkeypatch):
    """Older torch lacks int32 gather/scatter indices: the int64 path gives the same counts."""
    gen = torch.Generator().manual_seed(0)
    values = torch.randint(0, 50, (3, 77), generator=gen)
    order = torch.sort(values, dim=1, stable=True).indices
    expected = rc._strict_inversions(order)
    monkeypatch.setattr(rc, "_INT32_INDEX_OK", {"cpu": False})
    assert torch.equal(rc._strict_inversions(order), expected)


def test_chunked_paths_give_the_same_values(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    a = torch.randint(0, 5, (7, 300), generator=gen).double()
    b = torch.where(torch.rand(7, 300, generator=gen) < 0.5, a, torch.randn(7, 300).double())
    kt, sp = rc._kendall_tau_flat(a, b), rc._spearman_rho_flat(a, b)
    monkeypatch.setattr(rc, "_SORT_CHUNK_ELEMS", 600)  # 2 rows per chunk
    monkeypatch.setattr(rc, "_INVERSION_CHUNK_ELEMS", 512)  # 1 row per chunk
    monkeypatch.setattr(rc, "_ROW_SORT_MIN_D", 1)  # 1-D sorts, row by row
    torch.testing.assert_close(rc._kendall_tau_flat(a, b), kt, rtol=0, atol=0)
    torch.testing.assert_close(rc._spearman_rho_flat(a, b), sp, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_float_keys_rank_like_scipy(dtype):
    """Order-preserving integer keys: negatives, +-0 (one tie), infinities, neighbouring floats."""
    tiny = torch.finfo(dtype).eps
    row = torch.tensor(
        [0.0, -0.0, 1.0, 1.0 + tiny, -1.0, -1.0 - tiny, float("inf"), -float("inf"), 1.0, -0.0],
        dtype=dtype,
    )
    x = torch.stack([row, row.flip(0)])
    got = rc._average_ranks(x)
    ref = np.stack([stats.rankdata(r.double().numpy()) for r in x])
    assert np.array_equal(got.numpy(), ref)


def test_float64_low_bits_are_distinct():
    base = torch.tensor(1.0, dtype=torch.float64)
    row = torch.stack([torch.nextafter(base, torch.tensor(2.0, dtype=torch.float64)), base, base])
    ranks = rc._average_ranks(row[None])
    assert ranks.tolist() == [[3.0, 1.5, 1.5]]


def test_kendall_counts_joint_ties():
    # both a and b tied on the same pairs, and only one of them tied on others
    a = torch.tensor([[1.0, 1.0, 2.0, 2.0, 3.0, 0.0, 0.0]])
    b = torch.tensor([[5.0, 5.0, 4.0, 6.0, 6.0, 1.0, 0.0]])
    ref = stats.kendalltau(a[0].numpy(), b[0].numpy()).statistic
    assert rc._kendall_tau_flat(a.double(), b.double()).item() == pytest.approx(ref, abs=1e-15)


def _tied_batch(seed, d=200):
    gen = torch.Generator().manual_seed(seed)
    a = torch.stack(
        [
            torch.randint(0, 4, (d,), generator=gen).double(),  # few values
            (torch.rand(d, generator=gen) < 0.2).double(),  # binary
            torch.randn(d, generator=gen, dtype=torch.float64),  # continuous
            torch.rand(d, generator=gen, dtype=torch.float64)
            * (torch.rand(d, generator=gen) < 0.3),  # zeros + continuous
        ]
    )
    b = torch.where(torch.rand(a.shape, generator=gen) < 0.5, a, a.roll(1, dims=0))
    b[2] = b[2] + 0.1 * torch.randn(d, generator=gen, dtype=torch.float64)
    return a, b


def _scipy_tau(a, b):
    return torch.tensor([stats.kendalltau(x.numpy(), y.numpy()).statistic for x, y in zip(a, b)])


@pytest.mark.parametrize("path", ["table", "merge", "mixed"])
def test_kendall_table_and_merge_paths_agree_with_scipy(monkeypatch, path):
    a, b = _tied_batch(3)
    if path == "table":
        monkeypatch.setattr(rc, "_TABLE_MIN_CELLS", 1 << 40)
    elif path == "merge":
        monkeypatch.setattr(rc, "_TABLE_CELLS_PER_FEATURE", 0)
        monkeypatch.setattr(rc, "_TABLE_MIN_CELLS", 0)
    else:  # rows 0, 1 (few distinct values) by table, rows 2, 3 by merge
        monkeypatch.setattr(rc, "_TABLE_CELLS_PER_FEATURE", 1)
        monkeypatch.setattr(rc, "_TABLE_MIN_CELLS", 0)
    torch.testing.assert_close(rc._kendall_tau_flat(a, b), _scipy_tau(a, b), rtol=0, atol=1e-12)
