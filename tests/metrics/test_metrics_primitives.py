"""Pairwise primitives against scipy and brute force, with and without ties.

Tolerances: 1e-6 in float64 and 1e-4 in float32. Rank statistics are exact integer counts
combined in float64 and only rounded to the output dtype (error < 1e-7); cosine and centre
of mass are summed in float64. The float32 slack covers the references: scipy's cosine on
float32 arrays accumulates its dot products in float32.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial import distance

from captum_certified import metrics as M

TOL = {torch.float64: 1e-6, torch.float32: 1e-4}
DTYPES = [torch.float32, torch.float64]
BATCHES = [1, 5]
KINDS = ["continuous", "int0to3", "sparse_binary", "sparse_smooth"]


def make_map(kind, shape, gen, dtype):
    if kind == "continuous":
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
    elif kind == "int0to3":
        x = torch.randint(0, 4, shape, generator=gen).double()
    elif kind == "sparse_binary":
        x = (torch.rand(shape, generator=gen, dtype=torch.float64) < 0.15).double()
    else:  # many exact zeros, continuous elsewhere
        x = torch.rand(shape, generator=gen, dtype=torch.float64)
        x = x * (torch.rand(shape, generator=gen, dtype=torch.float64) < 0.3)
    return x.to(dtype)


def pair(kind, shape, seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    a = make_map(kind, shape, gen, dtype)
    if kind == "continuous":
        b = (a + 0.7 * torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)).to(dtype)
    else:
        b = make_map(kind, shape, gen, dtype)
        # keep some correlation
        keep = torch.rand(shape, generator=gen) < 0.5
        b = torch.where(keep, a, b)
    return a, b


def rows(t):
    return [t[i].reshape(-1).numpy() for i in range(t.shape[0])]


def scipy_ref(fn, a, b):
    out = []
    for ra, rb in zip(rows(a), rows(b)):
        with np.errstate(all="ignore"):
            out.append(float(fn(ra, rb)))
    return torch.tensor(out, dtype=torch.float64)


def assert_close_nan(got, ref, dtype):
    assert got.dtype == dtype
    assert got.shape == ref.shape
    torch.testing.assert_close(got.double(), ref, rtol=0, atol=TOL[dtype], equal_nan=True)


def brute_topk(row, k):
    # ties broken by lowest index: sort by (-value, index)
    order = sorted(range(len(row)), key=lambda i: (-float(row[i]), i))
    return set(order[:k])


def brute_topk_intersection(a, b, k):
    out = []
    for ra, rb in zip(rows(a), rows(b)):
        out.append(len(brute_topk(ra, k) & brute_topk(rb, k)) / k)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bsz", BATCHES)
@pytest.mark.parametrize("kind", KINDS)
def test_kendall_and_spearman_match_scipy(kind, bsz, dtype):
    a, b = pair(kind, (bsz, 3, 7, 5), seed=10 * KINDS.index(kind) + bsz, dtype=dtype)
    kt_ref = scipy_ref(lambda x, y: stats.kendalltau(x, y, variant="b").statistic, a, b)
    sp_ref = scipy_ref(lambda x, y: stats.spearmanr(x, y).statistic, a, b)
    assert_close_nan(M.kendall_tau(a, b), kt_ref, dtype)
    assert_close_nan(M.spearman_rho(a, b), sp_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bsz", BATCHES)
@pytest.mark.parametrize("kind", KINDS)
def test_cosine_matches_scipy(kind, bsz, dtype):
    a, b = pair(kind, (bsz, 2, 6, 6), seed=7 + bsz, dtype=dtype)
    ref = scipy_ref(lambda x, y: 1.0 - distance.cosine(x, y), a, b)
    assert_close_nan(M.cosine_similarity(a, b), ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bsz", BATCHES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [1, 7, 60, 0.25])
def test_topk_intersection_matches_brute_force(kind, bsz, dtype, k):
    a, b = pair(kind, (bsz, 4, 4, 4), seed=11 * bsz + 3, dtype=dtype)
    kk = k if isinstance(k, int) else math.floor(k * 64)
    ref = brute_topk_intersection(a, b, kk)
    assert_close_nan(M.topk_intersection(a, b, k=k), ref, dtype)


def test_topk_ties_broken_by_lowest_index():
    a = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    b = torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0]])
    # top-2 of a = {0, 1} (lowest indices of the tie), top-2 of b = {2, 3}
    assert M.topk_intersection(a, b, k=2).item() == 0.0
    assert M.topk_intersection(a, b, k=3).item() == pytest.approx(1 / 3)
    assert M.topk_intersection(a, a.flip(1), k=4).item() == pytest.approx(3 / 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bsz", BATCHES)
@pytest.mark.parametrize("kind", KINDS)
def test_tuple_inputs_are_flattened_and_concatenated(kind, bsz, dtype):
    a1, b1 = pair(kind, (bsz, 3, 4, 4), seed=5, dtype=dtype)
    a2, b2 = pair(kind, (bsz, 9), seed=6, dtype=dtype)
    cat_a = torch.cat([a1.reshape(bsz, -1), a2], dim=1)
    cat_b = torch.cat([b1.reshape(bsz, -1), b2], dim=1)
    ta, tb = (a1, a2), (b1, b2)
    ref = scipy_ref(lambda x, y: stats.kendalltau(x, y).statistic, cat_a, cat_b)
    assert_close_nan(M.kendall_tau(ta, tb), ref, dtype)
    ref = scipy_ref(lambda x, y: stats.spearmanr(x, y).statistic, cat_a, cat_b)
    assert_close_nan(M.spearman_rho(ta, tb), ref, dtype)
    ref = scipy_ref(lambda x, y: 1.0 - distance.cosine(x, y), cat_a, cat_b)
    assert_close_nan(M.cosine_similarity(ta, tb), ref, dtype)
    assert_close_nan(
        M.topk_intersection(ta, tb, k=10), brute_topk_intersection(cat_a, cat_b, 10), dtype
    )
    # channel reduction applies to the 4-D element only; the 2-D element just takes |.|
    red_a = torch.cat([a1.abs().sum(1).reshape(bsz, -1), a2.abs()], dim=1)
    red_b = torch.cat([b1.abs().sum(1).reshape(bsz, -1), b2.abs()], dim=1)
    ref = scipy_ref(lambda x, y: stats.spearmanr(x, y).statistic, red_a, red_b)
    assert_close_nan(M.spearman_rho(ta, tb, reduce_channels="sum_abs"), ref, dtype)


def brute_center(s):
    h, w = s.shape
    tot = sum(float(s[i, j]) for i in range(h) for j in range(w))
    ci = sum(float(s[i, j]) * i for i in range(h) for j in range(w)) / tot
    cj = sum(float(s[i, j]) * j for i in range(h) for j in range(w)) / tot
    return ci, cj


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bsz", BATCHES)
@pytest.mark.parametrize("kind", ["continuous", "int0to3", "sparse_binary"])
@pytest.mark.parametrize("round_centers", [False, True])
def test_center_of_mass_shift_matches_loops(kind, bsz, dtype, round_centers):
    a, b = pair(kind, (bsz, 3, 6, 7), seed=13, dtype=dtype)
    a[:, 0, 0, 0] = 1.0  # no all-zero map
    b[:, 0, 0, 0] = 1.0
    ref = []
    for i in range(bsz):
        ca = brute_center(a[i].abs().sum(0))
        cb = brute_center(b[i].abs().sum(0))
        if round_centers:
            ca, cb = [math.floor(c) for c in ca], [math.floor(c) for c in cb]
        ref.append(math.hypot(ca[0] - cb[0], ca[1] - cb[1]))
    got = M.center_of_mass_shift(a, b, reduce_channels="sum_abs", round_centers=round_centers)
    assert_close_nan(got, torch.tensor(ref, dtype=torch.float64), dtype)
    # the normalisation does not move the centre (we divide by sum(s), not by H*W)
    got_norm = M.center_of_mass_shift(a, b, protocol="ghorbani", round_centers=round_centers)
    assert_close_nan(got_norm, torch.tensor(ref, dtype=torch.float64), dtype)


def test_center_of_mass_hand_made():
    s = torch.zeros(1, 3, 3, dtype=torch.float64)
    s[0, 0, 0], s[0, 2, 2] = 1.0, 3.0
    t = torch.zeros(1, 3, 3, dtype=torch.float64)
    t[0, 0, 2] = 5.0
    assert M.center_of_mass(s).tolist() == [[1.5, 1.5]]
    assert M.center_of_mass(t).tolist() == [[0.0, 2.0]]
    assert M.center_of_mass(s, round_centers=True).tolist() == [[1.0, 1.0]]
    assert M.center_of_mass_shift(s, t).item() == pytest.approx(math.hypot(1.5, 0.5), abs=1e-15)
    assert M.center_of_mass_shift(s, t, round_centers=True).item() == pytest.approx(math.sqrt(2))
    # Ghorbani's /(H*W) form equals ours once the map sums to H*W
    sn = s * (9 / s.sum())
    rows_, cols_ = torch.meshgrid(torch.arange(3.0), torch.arange(3.0), indexing="ij")
    ghorbani = torch.stack([(sn[0] * rows_).sum() / 9, (sn[0] * cols_).sum() / 9])
    torch.testing.assert_close(M.center_of_mass(s, normalize="sum_to_hw")[0], ghorbani.double())


def test_undefined_statistics_are_nan_not_errors():
    const = torch.ones(2, 10)
    other = torch.arange(20.0).view(2, 10)
    assert torch.isnan(M.kendall_tau(const, other)).all()
    assert torch.isnan(M.spearman_rho(other, const)).all()
    zeros = torch.zeros(2, 10)
    assert torch.isnan(M.cosine_similarity(zeros, other)).all()
    assert torch.isnan(M.center_of_mass_shift(torch.zeros(2, 3, 3), torch.ones(2, 3, 3))).all()
    # only the constant example is NaN
    mixed = torch.stack([torch.ones(10), torch.arange(10.0)])
    tau = M.kendall_tau(mixed, other)
    assert torch.isnan(tau[0]) and tau[1].item() == pytest.approx(1.0)
    with np.errstate(all="ignore"):
        assert math.isnan(stats.kendalltau(np.ones(10), np.arange(10.0)).statistic)


def test_large_d_with_massive_ties_matches_scipy():
    # d = 3 * 224 * 224; one continuous pair and one sparse pair with ~90 % zeros
    d = 150528
    gen = torch.Generator().manual_seed(0)
    cont = torch.rand(2, d, generator=gen)
    sparse = torch.rand(2, d, generator=gen) * (torch.rand(2, d, generator=gen) < 0.1)
    a = torch.stack([cont[0], sparse[0]])
    b = torch.stack([cont[0] + 0.3 * cont[1], sparse[1]])
    kt = M.kendall_tau(a, b)
    sp = M.spearman_rho(a, b)
    for i in range(2):
        ra, rb = a[i].numpy(), b[i].numpy()
        assert kt[i].item() == pytest.approx(stats.kendalltau(ra, rb).statistic, abs=1e-6)
        assert sp[i].item() == pytest.approx(stats.spearmanr(ra, rb).statistic, abs=1e-6)


def test_dtype_and_device_preserved_and_no_grad():
    a = torch.randn(3, 2, 4, 4, requires_grad=True)
    b = torch.randn(3, 2, 4, 4)
    for fn in (M.kendall_tau, M.spearman_rho, M.cosine_similarity):
        out = fn(a, b)
        assert out.dtype == torch.float32 and out.shape == (3,) and not out.requires_grad
    out = M.topk_intersection(a.double(), b.double(), k=3)
    assert out.dtype == torch.float64
    # mixed precision promotes
    assert M.kendall_tau(a.detach().double(), b).dtype == torch.float64
    # half precision is ranked exactly (via float32) and returned as half
    assert M.spearman_rho(a.detach().half(), b.half()).dtype == torch.float16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    a, b = pair("sparse_smooth", (4, 3, 16, 16), seed=1, dtype=torch.float32)
    for fn in (M.kendall_tau, M.spearman_rho, M.cosine_similarity):
        torch.testing.assert_close(fn(a.cuda(), b.cuda()).cpu(), fn(a, b), equal_nan=True)
    torch.testing.assert_close(
        M.topk_intersection(a.cuda(), b.cuda(), k=50).cpu(), M.topk_intersection(a, b, k=50)
    )


@pytest.mark.parametrize("d", [1, 2, 3])
def test_tiny_maps(d):
    gen = torch.Generator().manual_seed(d)
    a = torch.randn(4, d, generator=gen, dtype=torch.float64)
    b = torch.randn(4, d, generator=gen, dtype=torch.float64)
    kt = scipy_ref(lambda x, y: stats.kendalltau(x, y).statistic, a, b)
    sp = scipy_ref(lambda x, y: stats.spearmanr(x, y).statistic, a, b)
    assert_close_nan(M.kendall_tau(a, b), kt, torch.float64)
    assert_close_nan(M.spearman_rho(a, b), sp, torch.float64)
    assert_close_nan(
        M.topk_intersection(a, b, k=1), brute_topk_intersection(a, b, 1), torch.float64
    )
