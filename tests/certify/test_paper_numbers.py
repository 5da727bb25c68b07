"""Regression values of certificates.rst §7 (Levine et al.'s settings, eta = 0.95)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from captum_certified.certify import (
    clopper_pearson_band,
    gaussian_lower_bound,
    gaussian_upper_bound,
    hoeffding_band,
)
from captum_certified.certify._core.bands import hoeffding_error

D_IMAGENET = 224 * 224 * 3  # 150528
N = 8192
ALPHA = 0.05  # failure probability: eta = 0.95


def test_hoeffding_error_imagenet():
    # err = sqrt(ln(2 d / alpha) / (2 n)) = sqrt(ln(6021120) / 16384) = 0.0308676 (the issue's
    # "err ~ 0.0309").
    assert D_IMAGENET == 150528
    err = hoeffding_error(D_IMAGENET, N, ALPHA)
    assert err == pytest.approx(0.030868, abs=1e-6)
    assert err == pytest.approx(math.sqrt(math.log(2 * D_IMAGENET / ALPHA) / (2 * N)), rel=1e-15)


@pytest.mark.parametrize(
    "d,n,expected",
    [(3072, 8192, 0.0267), (784, 8192, 0.0251), (3072, 1024, 0.0756)],
)
def test_hoeffding_error_other_settings(d, n, expected):
    # four decimals, as stated in certificates.rst §7
    assert round(hoeffding_error(d, n, ALPHA), 4) == expected


def _imagenet_cp(counts: list[int]):
    # The tail level alpha / (2 d) depends on d only through the last dimension: pad the
    # counts of interest into a d = 150528 row.
    row = torch.zeros(1, D_IMAGENET, dtype=torch.float64)
    row[0, : len(counts)] = torch.tensor(counts, dtype=torch.float64)
    lower, upper = clopper_pearson_band(row, N, ALPHA)
    return lower[0, : len(counts)], upper[0, : len(counts)]


def test_clopper_pearson_imagenet_values():
    half, five = N // 2, round(0.05 * N)  # p-hat = 0.5 and p-hat = 410 / 8192 = 0.05005
    lower, upper = _imagenet_cp([0, half, five])
    # count 0: (0, 0.0019038), 1e-6
    assert float(lower[0]) == 0.0
    assert float(upper[0]) == pytest.approx(0.0019038, abs=1e-6)
    # closed form for count 0: 1 - U = (alpha / (2 d))^(1 / n)
    assert float(upper[0]) == pytest.approx(1 - (ALPHA / (2 * D_IMAGENET)) ** (1 / N), rel=1e-9)
    # +-0.028 at p-hat = 0.5 (symmetric), to 3 decimals
    assert round(float(lower[1]) - 0.5, 3) == -0.028
    assert round(float(upper[1]) - 0.5, 3) == 0.028
    assert float(lower[1]) + float(upper[1]) == pytest.approx(1.0, abs=1e-12)
    # -0.011 / +0.013 at p-hat = 0.05, to 3 decimals
    p_hat = five / N
    assert round(float(lower[2]) - p_hat, 3) == -0.011
    assert round(float(upper[2]) - p_hat, 3) == 0.013


def test_clopper_pearson_inside_hoeffding_for_every_count():
    # At the same (d, n, alpha) the CP band is inside the Hoeffding band for every count 0..n
    # (checked for d = 150528, n = 8192, alpha = 0.05): nowhere wider, and strictly narrower
    # on each side wherever Hoeffding is not clamped at 0 or 1.
    counts = torch.arange(N + 1, dtype=torch.float64)
    row = torch.zeros(1, D_IMAGENET, dtype=torch.float64)
    row[0, : N + 1] = counts
    cp_low, cp_up = (t[0, : N + 1] for t in clopper_pearson_band(row, N, ALPHA))
    h_low, h_up = (t[0, : N + 1] for t in hoeffding_band(row / N, N, ALPHA))
    outside = torch.nonzero((cp_low < h_low) | (cp_up > h_up)).flatten()
    assert outside.numel() == 0, f"CP wider than Hoeffding at counts {outside.tolist()}"
    assert torch.all(cp_low[h_low > 0] > h_low[h_low > 0])
    assert torch.all(cp_up[h_up < 1] < h_up[h_up < 1])
    # the widest CP band (at p-hat = 1/2) is still narrower than 2 * err = 0.0617
    assert float((cp_up - cp_low).max()) < 2 * hoeffding_error(D_IMAGENET, N, ALPHA)


def test_clopper_pearson_matches_beta_quantiles():
    # Independent reference: scipy beta quantiles at alpha / (2 d) per tail.
    counts = [1, 17, 4096, 8000, 8191, 8192]
    lower, upper = _imagenet_cp(counts)
    tail = ALPHA / (2 * D_IMAGENET)
    for j, k in enumerate(counts):
        ref_low = stats.beta.ppf(tail, k, N - k + 1)
        ref_up = 1.0 if k == N else stats.beta.ppf(1 - tail, k + 1, N - k)
        assert float(lower[j]) == pytest.approx(ref_low, rel=1e-9, abs=1e-15)
        assert float(upper[j]) == pytest.approx(ref_up, rel=1e-9, abs=1e-15)


def test_phi_bound_value():
    # Phi(Phi^-1(0.8) - 0.3) = Phi(0.8416 - 0.3) = Phi(0.5416) = 0.706 (certificates.rst §7, vs the
    # Hoelder bound 0.626); the upper bound is Phi(1.1416) = 0.873.
    assert round(float(gaussian_lower_bound(0.8, 0.3, 1.0)), 3) == 0.706
    assert round(float(gaussian_upper_bound(0.8, 0.3, 1.0)), 3) == 0.873
    assert float(gaussian_lower_bound(0.8, 0.3, 1.0)) == pytest.approx(
        stats.norm.cdf(stats.norm.ppf(0.8) - 0.3), abs=1e-14
    )
