"""Per-feature certificates (Anani et al. 2025): radius formula, closed-form soundness, coverage.

The closed-form model: a map whose feature ``j`` is the half-space indicator
``s_j(z) = 1[w_j . z > b_j]``. Under ``N(0, sigma^2 I)`` its smoothed value is exactly
``p_j(x) = Phi((w_j . x - b_j) / (sigma ||w_j||))`` and the worst l2 shift of size ``r`` moves it
to ``Phi(Phi^-1(p_j) -+ r / sigma)`` (along ``-+ w_j``), so the exact radius at which feature
``j`` crosses ``tau`` is ``sigma |Phi^-1(p_j) - Phi^-1(tau)|``. A certificate is sound iff every
certified radius is at most that exact radius, on the side the certificate claims.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import InputXGradient
from scipy import stats

from captum_certified.attr import CertifiedWrapper
from captum_certified.certify import (
    FeatureCertificate,
    FeatureCertifier,
    StreamingMoments,
    feature_radii,
)
from captum_certified.noise import GaussianNoise, LaplaceNoise
from captum_certified.transforms import AttributionTransform, TopKBinarize

TEST_LEVEL = 1e-3


def test_radius_matches_scipy():
    g = torch.Generator().manual_seed(0)
    lo = torch.rand(4, 300, generator=g, dtype=torch.float64)
    up = (lo + 0.3 * torch.rand(4, 300, generator=g, dtype=torch.float64)).clamp(max=1.0)
    sigma = torch.tensor([0.15, 0.25, 0.33, 1.7], dtype=torch.float64)
    for tau in (0.5, 0.75, 0.1, 0.93):
        radius, side = feature_radii(lo, up, sigma, tau)
        lo_np, up_np, s = lo.numpy(), up.numpy(), sigma.numpy()[:, None]
        ref_up = s * (stats.norm.ppf(lo_np) - stats.norm.ppf(tau))
        ref_down = s * (stats.norm.ppf(tau) - stats.norm.ppf(up_np))
        imp, unimp = lo_np > tau, up_np < tau
        ref = np.where(imp, ref_up, np.where(unimp, ref_down, 0.0))
        assert (side.numpy() == imp.astype(int) - unimp.astype(int)).all()
        assert imp.any() and unimp.any() and (~imp & ~unimp).any()
        torch.testing.assert_close(radius, torch.as_tensor(ref), rtol=1e-10, atol=1e-12)
    # tau = 1/2: the unimportant side is sigma Phi^-1(1 - upper), the form
    r, _ = feature_radii(
        torch.tensor([[0.01]], dtype=torch.float64), torch.tensor([[0.2]], dtype=torch.float64), 0.3
    )
    assert float(r) == pytest.approx(0.3 * stats.norm.ppf(0.8), rel=1e-12)


def test_paper_reference_radii():
    # R = sigma Phi^-1(0.75) for sigma in {0.15, 0.25, 0.33}: 0.101 / 0.169 / 0.223
    lower = torch.full((3, 1), 0.75, dtype=torch.float64)
    r, side = feature_radii(lower, lower, torch.tensor([0.15, 0.25, 0.33]))
    assert [round(float(v), 3) for v in r.flatten()] == [0.101, 0.169, 0.223]
    assert side.flatten().tolist() == [1, 1, 1]


def test_certificate_queries_and_validation():
    lower = torch.tensor([[0.9, 0.1, 0.4, 0.7], [0.2, 0.6, 0.55, 0.0]], dtype=torch.float64)
    upper = torch.tensor([[0.95, 0.3, 0.6, 0.8], [0.45, 0.7, 0.65, 0.02]], dtype=torch.float64)
    cert = FeatureCertificate(
        lower,
        upper,
        noise=GaussianNoise(),
        norm="l2",
        scale=torch.tensor([0.5, 1.0]),
        n=100,
        alpha=0.01,
        bound="clopper_pearson",
    )
    radius = cert.feature_radius()
    expected = torch.tensor(
        [
            [0.5 * stats.norm.ppf(0.9), 0.5 * stats.norm.ppf(0.7), 0.0, 0.5 * stats.norm.ppf(0.7)],
            [stats.norm.ppf(0.55), stats.norm.ppf(0.6), stats.norm.ppf(0.55), stats.norm.ppf(0.98)],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(radius, expected)
    assert cert.decision().tolist() == [[1, -1, 0, 1], [-1, 1, 1, -1]]
    at = cert.certified_map(0.3)
    assert at.tolist() == [[1, 0, 0, 0], [0, 0, 0, -1]]  # 0.5 Phi^-1(0.7) = 0.262 < 0.3
    torch.testing.assert_close(
        cert.fraction_certified(0.3), torch.tensor([0.25, 0.25], dtype=torch.float64)
    )
    torch.testing.assert_close(
        cert.fraction_certified(0.0, side="important"),
        torch.tensor([0.5, 0.5], dtype=torch.float64),
    )
    curve = cert.fraction_curve(torch.tensor([0.0, 0.3, 10.0]))
    torch.testing.assert_close(
        curve, torch.tensor([[0.75, 0.25, 0.0], [1.0, 0.25, 0.0]], dtype=torch.float64)
    )
    per_example = cert.certified_map(torch.tensor([0.0, 5.0]))
    assert per_example[1].abs().sum() == 0 and per_example[0].abs().sum() == 3
    with pytest.raises(ValueError, match="radius"):
        cert.certified_map(-0.1)
    with pytest.raises(ValueError, match="side"):
        cert.fraction_certified(0.1, side="both")
    with pytest.raises(ValueError, match="threshold"):
        FeatureCertifier(threshold=1.0)
    with pytest.raises(TypeError, match="threshold"):
        FeatureCertifier(threshold="0.5")


class HalfSpaces(AttributionTransform):
    """s_j(z) = 1[w_j . z > b_j]: the exact worst case of the Phi rule for every feature."""

    kind = "binary"

    def __init__(self, w: torch.Tensor, b: torch.Tensor) -> None:
        self.w, self.b = w, b

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        return (a @ self.w.T > self.b).to(a.dtype)


def _halfspace_setup(seed: int, dim: int = 5, m: int = 24, sigma: float = 0.4):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(m, dim, generator=g, dtype=torch.float64)
    x = torch.randn(1, dim, generator=g, dtype=torch.float64)
    # spread the exact p_j over (0, 1): margins from -2.5 to 2.5 noise widths
    z = torch.linspace(-2.5, 2.5, m, dtype=torch.float64)
    b = (x @ w.T).flatten() - z * sigma * w.norm(dim=1)
    p = torch.special.ndtr(z)
    return x, w, b, p, sigma


def _exact_radius(p: torch.Tensor, sigma: float, tau: float, side: torch.Tensor) -> torch.Tensor:
    gap = torch.special.ndtri(p) - stats.norm.ppf(tau)
    return torch.where(side > 0, sigma * gap, torch.where(side < 0, -sigma * gap, 0.0))


def _violations(cert: FeatureCertificate, p: torch.Tensor, sigma: float, tau: float) -> int:
    side = cert.decision()[0]
    claimed = cert.feature_radius()[0]
    exact = _exact_radius(p, sigma, tau, side)
    # a claim on the wrong side, or a radius beyond the exact crossing point
    wrong_side = ((side > 0) & (p <= tau)) | ((side < 0) & (p >= tau))
    return int((wrong_side | ((side != 0) & (claimed > exact + 1e-12))).sum())


@pytest.mark.parametrize("tau", [0.5, 0.75])
def test_halfspace_closed_form_soundness(tau):
    # the full engine: noise -> InputXGradient of sum(z) (= the noisy input) -> half-spaces
    def forward(z):
        return z.sum(dim=1)

    certified_any, total_claims = 0, 0
    for seed in range(6):
        x, w, b, p, sigma = _halfspace_setup(seed)
        cw = CertifiedWrapper(
            InputXGradient(forward), transform=HalfSpaces(w, b), certifier=FeatureCertifier(tau)
        )
        attr, cert = cw.attribute(
            x,
            nt_samples=2000,
            nt_samples_batch_size=500,
            stdevs=sigma,
            alpha=0.001,
            return_certificate=True,
            generator=torch.Generator().manual_seed(100 + seed),
        )
        assert attr.shape == (1, w.shape[0])
        assert _violations(cert, p, sigma, tau) == 0
        # at the certified radius the exact worst shift keeps the claimed side
        side, radius = cert.decision()[0], cert.feature_radius()[0]
        shifted = torch.special.ndtr(torch.special.ndtri(p) - side * radius / sigma)
        assert ((shifted - tau) * side >= -1e-12).all()
        certified_any += int((side != 0).sum())
        total_claims += int(side.numel())
        # teeth: the point estimate instead of the band over-claims on this model
        mean = torch.as_tensor(attr, dtype=torch.float64)
        naive = FeatureCertificate(
            mean,
            mean,
            threshold=tau,
            noise=GaussianNoise(),
            norm="l2",
            scale=torch.tensor([sigma]),
            n=2000,
            alpha=0.001,
            bound="none",
        )
        if seed == 0:
            assert _violations(naive, p, sigma, tau) > 0
    assert certified_any > 0.5 * total_claims  # not vacuous


def test_top1_of_two_is_a_halfspace():
    # signed TopKBinarize(1) of (z1, z2): feature 0 wins iff z1 > z2, a half-space;
    # p = Phi((x1 - x2) / (sigma sqrt 2))
    def forward(z):
        return z.sum(dim=1)

    x = torch.tensor([[0.3, 0.0]], dtype=torch.float64)
    sigma = 0.25
    cw = CertifiedWrapper(
        InputXGradient(forward),
        transform=TopKBinarize(1, by_magnitude=False),
        certifier=FeatureCertifier(),
    )
    _, cert = cw.attribute(
        x,
        nt_samples=4000,
        stdevs=sigma,
        alpha=0.001,
        return_certificate=True,
        generator=torch.Generator().manual_seed(0),
    )
    p0 = stats.norm.cdf(0.3 / (sigma * 2**0.5))
    exact = sigma * stats.norm.ppf(p0)  # = 0.3 / sqrt 2, the l2 distance to the diagonal
    assert exact == pytest.approx(0.3 / 2**0.5)
    assert cert.decision()[0].tolist() == [1, -1]
    r = cert.feature_radius()[0]
    assert (r <= exact).all() and (r >= 0.85 * exact).all()


def test_laplace_noise_is_refused():
    def forward(z):
        return z.sum(dim=1)

    cw = CertifiedWrapper(
        InputXGradient(forward), transform=TopKBinarize(1), certifier=FeatureCertifier()
    )
    with pytest.raises(ValueError, match="`noise`"):
        cw.attribute(torch.rand(1, 3), noise=LaplaceNoise(), return_certificate=True)


def _coverage_failures(p: torch.Tensor, n: int, reps: int, alpha: float, per_feature: bool):
    g = torch.Generator().manual_seed(7)
    samples = (torch.rand(reps, n, p.numel(), generator=g, dtype=torch.float64) < p).double()
    stats_ = StreamingMoments()
    stats_.update(samples)
    tau = 0.5
    if per_feature:  # negative control: no Bonferroni over the d features
        counts = stats_.total.numpy()
        tail = alpha / 2
        lower = torch.as_tensor(stats.beta.ppf(tail, counts, n - counts + 1)).nan_to_num(0.0)
        upper = torch.as_tensor(stats.beta.isf(tail, counts + 1, n - counts)).nan_to_num(1.0)
        radius, side = feature_radii(lower, upper, 1.0, tau)
    else:
        cert = FeatureCertifier(tau).certify(
            stats_,
            scale=torch.ones(reps, dtype=torch.float64),
            noise=GaussianNoise(),
            alpha=alpha,
            bound=None,
            transform=TopKBinarize(1),
            num_input_features=p.numel(),
        )
        radius, side = cert.feature_radius(), cert.decision()
    exact = _exact_radius(p.expand_as(radius), 1.0, tau, side)
    wrong_side = ((side > 0) & (p <= tau)) | ((side < 0) & (p >= tau))
    bad = wrong_side | ((side != 0) & (radius > exact + 1e-12))
    return int(bad.any(dim=1).sum())


def test_band_coverage_with_negative_control():
    # An example fails when any claim is false. The failure rate must be <= alpha: a one-sided
    # binomial test at level 1e-3 must not reject. alpha = 0.3 with p in (0.3, 0.7) makes the
    # test sensitive; the per-feature band (no Bonferroni) must be rejected by the same test.
    p = torch.linspace(0.3, 0.7, 10, dtype=torch.float64)
    p = p[(p - 0.5).abs() > 1e-9]
    reps, n, alpha = 2000, 100, 0.3
    fails = _coverage_failures(p, n, reps, alpha, per_feature=False)
    assert stats.binomtest(fails, reps, alpha, alternative="greater").pvalue > TEST_LEVEL
    control = _coverage_failures(p, n, reps, alpha, per_feature=True)
    assert stats.binomtest(control, reps, alpha, alternative="greater").pvalue < TEST_LEVEL
    # the paper's setting: n = 100, alpha = 0.001
    assert _coverage_failures(p, 100, 500, 0.001, per_feature=False) <= 3
