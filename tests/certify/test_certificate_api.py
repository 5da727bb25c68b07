"""API contract of GaussianTopKCertificate, GaussianTopKCertifier and StreamingMoments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from captum_certified.certify import (
    GaussianTopKCertificate,
    GaussianTopKCertifier,
    StreamingMoments,
    clopper_pearson_band,
    hoeffding_band,
    kl_band,
)
from captum_certified.certify._core.bands import hoeffding_error
from captum_certified.noise import GaussianNoise
from captum_certified.transforms import ClipNormalize, TopKBinarize

BSZ, D = 6, 20

BINARY = TopKBinarize(1)
UNIT = ClipNormalize(1, 1)


def make_cert(lower, upper, scale=None) -> GaussianTopKCertificate:
    lower = torch.as_tensor(lower, dtype=torch.float64)
    upper = torch.as_tensor(upper, dtype=torch.float64)
    if scale is None:
        scale = torch.ones(lower.shape[0], dtype=torch.float64)
    return GaussianTopKCertificate(
        lower, upper, noise=GaussianNoise(), norm="l2", scale=scale, n=100, alpha=0.05, bound="test"
    )


@pytest.fixture
def cert() -> GaussianTopKCertificate:
    gen = torch.Generator().manual_seed(0)
    p = torch.rand(BSZ, D, generator=gen, dtype=torch.float64)
    p[:, :3] = 0.0  # exact zeros and ones, like a sparse binary map
    p[:, 3] = 1.0
    width = 0.1 * torch.rand(BSZ, D, generator=gen, dtype=torch.float64)
    p[0] = torch.linspace(0.99, 0.01, D, dtype=torch.float64)  # well separated: large radii
    width[0] = 1e-3
    lower, upper = (p - width).clamp(0, 1), (p + width).clamp(0, 1)
    scale = torch.rand(BSZ, generator=gen, dtype=torch.float64) + 0.25
    return make_cert(lower, upper, scale)


KS = [1, 2, 5, 10, 11, 15, 20]


@pytest.mark.parametrize("k", KS)
def test_rank_radii_shape_and_monotone(cert, k):
    radii = cert.rank_radii(k)
    assert radii.shape == (BSZ, k) and radii.dtype == torch.float64
    assert not torch.isnan(radii).any()
    assert torch.all(radii[:, :-1] >= radii[:, 1:])  # inf >= inf and -inf >= -inf hold
    unopposed = max(0, 2 * k - D)
    assert torch.all(torch.isposinf(radii[:, :unopposed]))


@pytest.mark.parametrize("k", KS)
def test_overlap_at_zero_counts_positive_radii(cert, k):
    radii = cert.rank_radii(k)
    expected = (radii > 0).sum(-1).to(torch.float64) / k
    got = cert.topk_overlap(k, 0.0)
    assert torch.equal(got, expected)
    assert got.shape == (BSZ,) and got.dtype == torch.float64
    assert torch.equal(cert.certified_count(k, 0.0), (radii > 0).sum(-1))


@pytest.mark.parametrize("k", KS)
def test_certified_radius_round_trip(cert, k):
    overlaps = sorted({i / k for i in range(1, k + 1)} | {0.33, 0.5, 0.999, 1.0})
    seen = {"finite": 0, "inf": 0, "zero": 0}
    for o in overlaps:
        r = cert.certified_radius(k, o)
        assert r.shape == (BSZ,) and not torch.isnan(r).any() and torch.all(r >= 0)
        for b in range(BSZ):
            rb = float(r[b])
            if math.isinf(rb):
                seen["inf"] += 1
                # every radius keeps the overlap (see test_infinite_radius_is_consistent)
                assert (
                    float(cert.topk_overlap(k, torch.full((BSZ,), 1e300, dtype=torch.float64))[b])
                    >= o
                )
            elif rb == 0.0:
                seen["zero"] += 1
                # 0 means: not certified even at radius 0 (R_m <= 0)
                assert float(cert.topk_overlap(k, 0.0)[b]) < o
            else:
                seen["finite"] += 1
                at = torch.zeros(BSZ, dtype=torch.float64)
                at[b] = rb
                assert float(cert.topk_overlap(k, at)[b]) >= o
                # the radius is the largest one: a hair above it the overlap is lost
                at[b] = rb * (1 + 1e-9) + 1e-12
                assert float(cert.topk_overlap(k, at)[b]) < o
    if k < D:  # k = D: every rank is unopposed (+inf)
        assert seen["finite"] > 0
    if 2 * k > D:
        assert seen["inf"] > 0


def test_certified_radius_is_largest_rank_radius():
    # one example, exact map: R_i = (sigma / 2)(Phi^-1(p_(i)) - Phi^-1(p_(2K-i+1)))
    from scipy import stats

    p = torch.tensor([[0.9, 0.7, 0.6, 0.3, 0.2, 0.1]], dtype=torch.float64)
    sigma = 0.5
    c = make_cert(p, p, torch.tensor([sigma], dtype=torch.float64))
    k = 3
    z = stats.norm.ppf(p[0].numpy())
    expected = [sigma / 2 * (z[i] - z[2 * k - i - 1]) for i in range(k)]
    np.testing.assert_allclose(c.rank_radii(k)[0].numpy(), expected, rtol=1e-12)
    for m in range(1, k + 1):
        assert float(c.certified_radius(k, m / k)) == pytest.approx(expected[m - 1], rel=1e-15)


@pytest.mark.parametrize("k", [2, 0.25, 13])
def test_overlap_curve_matches_pointwise(cert, k):
    grid = torch.tensor([0.0, 1e-6, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0, 1e6], dtype=torch.float64)
    curve = cert.overlap_curve(k, grid)
    assert curve.shape == (BSZ, grid.numel()) and curve.dtype == torch.float64
    for j, r in enumerate(grid.tolist()):
        assert torch.equal(curve[:, j], cert.topk_overlap(k, r))
    assert torch.all(curve[:, :-1] >= curve[:, 1:])  # non-increasing in the radius


def test_nothing_certifiable_gives_zero_not_nan():
    lower = torch.zeros(3, 10, dtype=torch.float64)
    upper = torch.ones(3, 10, dtype=torch.float64)
    c = make_cert(lower, upper)
    for k in (1, 2, 5):
        assert torch.all(torch.isneginf(c.rank_radii(k)))
        assert torch.equal(c.topk_overlap(k, 0.0), torch.zeros(3, dtype=torch.float64))
        assert torch.equal(c.certified_radius(k, 1 / k), torch.zeros(3, dtype=torch.float64))
    # K > d / 2: only the 2K - d forced members remain
    assert torch.equal(c.topk_overlap(7, 0.0), torch.full((3,), 4 / 7, dtype=torch.float64))
    # L = U = 1 everywhere (or 0 everywhere): all tied, nothing certified
    for v in (0.0, 1.0):
        full = torch.full((2, 10), v, dtype=torch.float64)
        c = make_cert(full, full)
        assert not torch.isnan(c.rank_radii(3)).any()
        assert torch.equal(c.topk_overlap(3, 0.5), torch.zeros(2, dtype=torch.float64))


def test_k_fraction_matches_count(cert):
    c = make_cert(cert.lower[:, :10], cert.upper[:, :10], cert.scale)
    assert c.rank_radii(0.2).shape[-1] == 2
    assert torch.equal(c.rank_radii(0.2), c.rank_radii(2))
    for r in (0.0, 0.05, 0.3):
        assert torch.equal(c.topk_overlap(0.2, r), c.topk_overlap(2, r))
        assert torch.equal(c.certified_count(0.2, r), c.certified_count(2, r))
    assert torch.equal(c.certified_radius(0.2, 0.5), c.certified_radius(2, 0.5))
    assert torch.equal(
        c.overlap_curve(0.2, torch.tensor([0.0, 0.1])), c.overlap_curve(2, torch.tensor([0.0, 0.1]))
    )
    assert c.rank_radii(1.0).shape[-1] == 10  # fraction 1.0 is all features
    assert c.rank_radii(0.35).shape[-1] == 3  # fractions round down


def test_per_example_radius_and_scale(cert):
    radius = torch.linspace(0.0, 0.2, BSZ, dtype=torch.float64)
    got = cert.certified_count(4, radius)
    for b in range(BSZ):
        assert int(got[b]) == int(cert.certified_count(4, float(radius[b]))[b])
    with pytest.raises(ValueError, match="`radius`"):
        cert.certified_count(4, torch.zeros(BSZ + 1))
    # the certificate scales with sigma: doubling sigma doubles every finite radius
    c2 = make_cert(cert.lower, cert.upper, 2 * cert.scale)
    r1, r2 = cert.rank_radii(5), c2.rank_radii(5)
    finite = torch.isfinite(r1)
    assert torch.allclose(r2[finite], 2 * r1[finite], rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "call,exc,name",
    [
        (lambda c: c.topk_overlap(0, 0.1), ValueError, "`k`"),
        (lambda c: c.topk_overlap(D + 1, 0.1), ValueError, "`k`"),
        (lambda c: c.topk_overlap(1.5, 0.1), ValueError, "`k`"),
        (lambda c: c.topk_overlap(0.0, 0.1), ValueError, "`k`"),
        (lambda c: c.topk_overlap(0.01, 0.1), ValueError, "`k`"),  # selects no feature
        (lambda c: c.topk_overlap(float("nan"), 0.1), ValueError, "`k`"),
        (lambda c: c.topk_overlap(True, 0.1), TypeError, "`k`"),
        (lambda c: c.topk_overlap("2", 0.1), TypeError, "`k`"),
        (lambda c: c.rank_radii(-1), ValueError, "`k`"),
        (lambda c: c.topk_overlap(2, -1.0), ValueError, "`radius`"),
        (lambda c: c.topk_overlap(2, float("nan")), ValueError, "`radius`"),
        (lambda c: c.topk_overlap(2, "0.1"), TypeError, "`radius`"),
        (lambda c: c.certified_count(2, torch.tensor([-1.0] * BSZ)), ValueError, "`radius`"),
        (lambda c: c.overlap_curve(2, torch.tensor([0.1, -0.1])), ValueError, "`radii`"),
        (lambda c: c.certified_radius(2, 0), ValueError, "`overlap`"),
        (lambda c: c.certified_radius(2, 0.0), ValueError, "`overlap`"),
        (lambda c: c.certified_radius(2, 1.5), ValueError, "`overlap`"),
        (lambda c: c.certified_radius(2, -0.5), ValueError, "`overlap`"),
        (lambda c: c.certified_radius(2, "1"), TypeError, "`overlap`"),
        (lambda c: c.certified_radius(0, 0.5), ValueError, "`k`"),
    ],
)
def test_certificate_bad_inputs(cert, call, exc, name):
    with pytest.raises(exc, match=name):
        call(cert)


@pytest.mark.parametrize("alpha", [0, 0.0, 1, 1.0, -0.1, 1.5])
def test_bands_reject_bad_alpha(alpha):
    counts = torch.tensor([[1.0, 2.0, 3.0]])
    for call in (
        lambda: hoeffding_error(10, 100, alpha),
        lambda: hoeffding_band(counts / 10, 10, alpha),
        lambda: clopper_pearson_band(counts, 10, alpha),
    ):
        with pytest.raises(ValueError, match="`alpha`"):
            call()
    with pytest.raises(TypeError, match="`alpha`"):
        hoeffding_error(10, 100, "0.05")


def test_bands_reject_bad_counts_and_n():
    with pytest.raises(ValueError, match="`counts`"):
        clopper_pearson_band(torch.tensor([[0.5, 1.0]]), 10, 0.05)  # non-integer
    with pytest.raises(ValueError, match="`counts`"):
        clopper_pearson_band(torch.tensor([[-1.0, 1.0]]), 10, 0.05)
    with pytest.raises(ValueError, match="`counts`"):
        clopper_pearson_band(torch.tensor([[11.0, 1.0]]), 10, 0.05)  # above n
    with pytest.raises(ValueError, match="`n`"):
        clopper_pearson_band(torch.tensor([[0.0]]), 0, 0.05)
    with pytest.raises(TypeError, match="`n`"):
        hoeffding_error(10, 10.5, 0.05)
    with pytest.raises(ValueError, match="`num_features`"):
        hoeffding_error(0, 10, 0.05)


# ----------------------------------------------------------------------------------------------
# Certifier
# ----------------------------------------------------------------------------------------------


def _binary_stats(bsz=3, d=12, n=64, seed=0) -> StreamingMoments:
    gen = torch.Generator().manual_seed(seed)
    p = torch.rand(bsz, 1, d, generator=gen)
    stats = StreamingMoments()
    for size in (10, 30, 24):
        stats.update((torch.rand(bsz, size, d, generator=gen) < p).to(torch.float32))
    assert stats.n == n
    return stats


def test_certifier_uses_the_named_band():
    stats = _binary_stats()
    scale = torch.full((3,), 0.25, dtype=torch.float64)
    certifier = GaussianTopKCertifier()
    cp = certifier.certify(
        stats,
        scale=scale,
        noise=GaussianNoise(),
        alpha=0.1,
        bound=None,
        transform=BINARY,
        num_input_features=12,
    )
    assert cp.bound == "clopper_pearson" and cp.norm == "l2" and cp.n == 64 and cp.alpha == 0.1
    ref = clopper_pearson_band(stats.total, 64, 0.1)
    assert torch.equal(cp.lower, ref[0]) and torch.equal(cp.upper, ref[1])
    ho = certifier.certify(
        stats,
        scale=scale,
        noise=GaussianNoise(),
        alpha=0.1,
        bound="hoeffding",
        transform=BINARY,
        num_input_features=12,
    )
    ref = hoeffding_band(stats.mean, 64, 0.1)
    assert ho.bound == "hoeffding"
    assert torch.equal(ho.lower, ref[0]) and torch.equal(ho.upper, ref[1])
    default_nonbinary = certifier.certify(
        stats,
        scale=scale,
        noise=GaussianNoise(),
        alpha=0.1,
        bound=None,
        transform=UNIT,
        num_input_features=12,
    )
    assert default_nonbinary.bound == "kl"
    ref = kl_band(stats.mean, 64, 0.1)
    assert torch.equal(default_nonbinary.lower, ref[0])
    assert torch.equal(default_nonbinary.upper, ref[1])
    # CP is never looser than Hoeffding at the same level, so it certifies at least as much
    for k in (1, 3, 6):
        assert torch.all(cp.topk_overlap(k, 0.02) >= ho.topk_overlap(k, 0.02))
    with pytest.raises(ValueError, match="`bound`"):
        certifier.certify(
            stats,
            scale=scale,
            noise=GaussianNoise(),
            alpha=0.1,
            bound="bernstein",
            transform=BINARY,
            num_input_features=12,
        )
    with pytest.raises(ValueError, match="`bound`"):
        certifier.certify(
            stats,
            scale=scale,
            noise=GaussianNoise(),
            alpha=0.1,
            bound="clopper_pearson",
            transform=UNIT,
            num_input_features=12,
        )
    for alpha in (0.0, 1.0):
        with pytest.raises(ValueError, match="`alpha`"):
            certifier.certify(
                stats,
                scale=scale,
                noise=GaussianNoise(),
                alpha=alpha,
                bound=None,
                transform=BINARY,
                num_input_features=12,
            )


def test_linear_map_defaults_to_betting_when_the_second_moment_is_streamed():
    from captum_certified.certify import betting_band
    from captum_certified.transforms import LinearRank

    gen = torch.Generator().manual_seed(3)
    samples = torch.rand(2, 256, 12, generator=gen) * 0.3  # low variance: betting is tighter
    with_m2, without_m2 = StreamingMoments(track_second_moment=True), StreamingMoments()
    for stats in (with_m2, without_m2):
        stats.update(samples)
    scale = torch.full((2,), 0.25, dtype=torch.float64)
    kw = dict(scale=scale, noise=GaussianNoise(), alpha=0.1, bound=None, num_input_features=12)
    certifier = GaussianTopKCertifier()
    bet = certifier.certify(with_m2, transform=LinearRank(3), **kw)
    ref = betting_band(with_m2.mean, 256, 0.1, variance=with_m2.variance)
    assert bet.bound == "betting"
    assert torch.equal(bet.lower, ref[0]) and torch.equal(bet.upper, ref[1])
    kl = certifier.certify(with_m2, transform=UNIT, **kw)
    assert kl.bound == "kl" and ((bet.upper - bet.lower) < (kl.upper - kl.lower)).all()
    # without the second moment the transform's default cannot be built: the usual default
    fallback = certifier.certify(without_m2, transform=LinearRank(3), **kw)
    assert fallback.bound == "kl" and torch.equal(fallback.lower, kl.lower)


# ----------------------------------------------------------------------------------------------
# StreamingMoments
# ----------------------------------------------------------------------------------------------


def test_streaming_moments_merge_matches_torch_var():
    gen = torch.Generator().manual_seed(1)
    chunks = [
        torch.randn(4, m, 7, generator=gen, dtype=torch.float64) * 3 + 2 for m in (1, 5, 17, 2, 40)
    ]
    sm = StreamingMoments(track_second_moment=True)
    for c in chunks:
        sm.update(c)
    full = torch.cat(chunks, dim=1)
    assert sm.n == full.shape[1] == 65
    # float64, O(1) values, 65 samples: rounding ~1e-15; 1e-12 leaves room for summation order
    assert torch.allclose(sm.mean, full.mean(1), rtol=0, atol=1e-12)
    assert torch.allclose(sm.variance, full.var(1, unbiased=False), rtol=0, atol=1e-12)
    assert torch.allclose(sm.total, full.sum(1), rtol=0, atol=1e-12)
    assert torch.allclose(sm.second_moment, (full**2).mean(1), rtol=0, atol=1e-12)
    assert sm.mean.dtype == torch.float64 and sm.variance.dtype == torch.float64


def test_streaming_moments_large_offset():
    # float32 inputs 1e8 + 16 * N(0, 1) (float32 spacing at 1e8 is 8, so the values sit on a
    # grid; the reference is the variance of exactly those values). Naive E[a^2] - E[a]^2 in
    # float64 cancels ~1e16 against ~1e16 with absolute rounding ~n * 1e16 * 1.1e-16: an error
    # of order 1-100 on a variance of ~256.
    rng = np.random.default_rng(2)
    values = (1e8 + 16.0 * rng.standard_normal((2, 3000, 5))).astype(np.float32)
    ref64 = values.astype(np.float64)
    ref_mean = ref64.mean(1)
    ref_var = ((ref64 - ref_mean[:, None]) ** 2).mean(1)  # numpy two-pass
    assert np.allclose(ref_var, np.var(ref64, axis=1), rtol=1e-12)

    sm = StreamingMoments(track_second_moment=True)
    start = 0
    for size in (1, 999, 7, 1500, 493):
        sm.update(torch.from_numpy(values[:, start : start + size]))
        start += size
    assert start == 3000 and sm.n == 3000
    # mean: the float32 values are multiples of 8, so the float64 sums are exact and the mean
    # carries one rounding of the division (relative 1.1e-16).
    np.testing.assert_allclose(sm.mean.numpy(), ref_mean, rtol=1e-15)
    # variance: the centred chunk sums are accurate to ~eps relative; the merge term
    # delta^2 n_a n_b / n has delta = difference of two means ~1e8, each rounded by
    # 1e8 * 1.1e-16 = 1.1e-8, so its error is ~2 |delta| 2.2e-8 n_a n_b / n per merge. The
    # largest (1007 + 1500 samples: |delta| ~ 16 sqrt(1/1007 + 1/1500) ~ 0.65, n_a n_b / n ~ 600)
    # gives ~1.7e-5 on m2 ~ 256 * 3000 = 7.7e5: ~2.5e-11 relative in total. Tolerance 1e-10.
    # (The two-pass reference itself is accurate to ~1e-15 relative here.)
    np.testing.assert_allclose(sm.variance.numpy(), ref_var, rtol=1e-10)

    # the case discriminates: the naive formula in float64 is off by ~60 % (seen: 0.57-0.61)
    naive = (ref64**2).mean(1) - ref_mean**2
    assert np.min(np.abs(naive - ref_var) / ref_var) > 1e-3
    naive32 = (values**2).mean(1) - values.mean(1) ** 2  # the same in float32: garbage
    assert np.max(np.abs(naive32 - ref_var) / ref_var) > 1.0


def test_streaming_moments_errors_and_counts():
    sm = StreamingMoments()
    with pytest.raises(RuntimeError):
        _ = sm.mean
    sm.update(torch.ones(2, 3, 4, dtype=torch.bool))
    sm.update(torch.zeros(2, 5, 4))
    assert sm.n == 8 and torch.equal(sm.total, torch.full((2, 4), 3.0, dtype=torch.float64))
    with pytest.raises(RuntimeError):
        _ = sm.variance  # second moment not tracked


# ----------------------------------------------------------------------------------------------
# Known defect: radius = inf (see report)
# ----------------------------------------------------------------------------------------------


def test_infinite_radius_is_consistent():
    p = torch.tensor([[0.9, 0.8, 0.1, 0.0]], dtype=torch.float64)
    c = make_cert(p, p)
    assert float(c.certified_radius(3, 1.0)) == math.inf
    assert float(c.topk_overlap(3, math.inf)) == 1.0
