"""radius_upper_bound / min_samples_for_radius: closed forms, reached by a map that never changes.

A linear model has a constant gradient, so SparseSmoothGrad's per-sample top-tau map is the
same at every noisy input: every selected feature is counted n times out of n, every other one
0 times, and the certificate reaches the ceiling. Any real map certifies at most that much.
"""

import math

import pytest
import torch
from scipy.stats import beta, norm
from torch import nn

from captum_certified.attr import SparseSmoothGrad
from captum_certified.certify import min_samples_for_radius, radius_upper_bound


@pytest.mark.parametrize("sigma,n,d,alpha", [(0.5, 2048, 64, 0.05), (0.1, 300, 1000, 0.01)])
def test_closed_forms_against_scipy(sigma, n, d, alpha):
    tail = alpha / (2 * d)
    p_cp = beta.ppf(tail, n, 1)  # exact one-sided lower bound with n successes of n
    assert radius_upper_bound(sigma, n, d, alpha) == pytest.approx(sigma * norm.ppf(p_cp), 1e-9)
    err = math.sqrt(math.log(2 * d / alpha) / (2 * n))
    want = sigma * norm.ppf(1 - err) if err < 0.5 else 0.0
    assert radius_upper_bound(sigma, n, d, alpha, "hoeffding") == pytest.approx(want, 1e-9)
    # the KL band at mean 1: kl(1, p) = -log p <= log(2d / alpha) / n, the same endpoint
    assert radius_upper_bound(sigma, n, d, alpha, "kl") == pytest.approx(
        sigma * norm.ppf(math.exp(-math.log(2 * d / alpha) / n)), 1e-9
    )


@pytest.mark.parametrize("bound", ["clopper_pearson", "kl", "hoeffding"])
def test_constant_map_reaches_the_ceiling(bound):
    torch.manual_seed(0)
    model = nn.Linear(64, 3)
    with torch.no_grad():  # distinct |weights|: a strict top-tau with no ties
        model.weight[1] = torch.linspace(0.1, 2.0, 64)[torch.randperm(64)]
    model = nn.Sequential(nn.Flatten(), model).eval()
    x = torch.rand(2, 1, 8, 8)
    sigma, n, k = 0.4, 512, 8
    _, cert = SparseSmoothGrad(model, sparsity=k).attribute(
        x, target=1, nt_samples=n, stdevs=sigma, return_certificate=True, bound=bound,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    ceiling = radius_upper_bound(sigma, n, 64, 0.05, bound)
    assert ceiling > 0.5
    assert (cert.topk_overlap(k, ceiling * (1 - 1e-6)) == 1).all()  # reached
    assert (cert.topk_overlap(k, ceiling * (1 + 1e-6)) == 0).all()  # and never exceeded
    # K > d/2: the 2K - d highest ranks have no opponent, certified at every radius (issue 22:
    # the ceiling said "for any model" and was beaten by inf)
    big = 40  # 2K - d = 16 unopposed ranks of 40
    assert (cert.certified_radius(big, 16 / 40) == math.inf).all()
    assert radius_upper_bound(sigma, n, 64, 0.05, bound, k=big, overlap=16 / 40) == math.inf
    paired = radius_upper_bound(sigma, n, 64, 0.05, bound, k=big, overlap=17 / 40)
    assert paired == ceiling
    assert (cert.certified_radius(big, 17 / 40) <= paired).all()


@pytest.mark.parametrize("bound", ["clopper_pearson", "kl", "hoeffding"])
@pytest.mark.parametrize("radius,sigma,d", [(1.0, 0.5, 64), (0.3, 0.25, 12288), (0.05, 1.0, 10)])
def test_min_samples_is_the_smallest(bound, radius, sigma, d):
    n = min_samples_for_radius(radius, sigma, d, 0.05, bound)
    assert radius_upper_bound(sigma, n, d, 0.05, bound) > radius
    assert n == 1 or radius_upper_bound(sigma, n - 1, d, 0.05, bound) <= radius


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="bound"):
        radius_upper_bound(0.5, 100, 10, bound="wilson")
    with pytest.raises(ValueError, match="sigma"):
        radius_upper_bound(0.0, 100, 10)
    with pytest.raises(TypeError, match="n"):
        radius_upper_bound(0.5, 10.5, 10)
    with pytest.raises(ValueError, match="radius"):
        min_samples_for_radius(-1.0, 0.5, 10)
    with pytest.raises(ValueError, match="too large"):
        min_samples_for_radius(100.0, 0.5, 10)
