"""Top-K certificates for uniform cube noise via total variation (docs/certificates.rst, 2).

- the total variation of two shifted cubes, counted on a grid, never exceeds ``cube_tv_bound``
  over random shifts in the l1, l2 and l_inf balls, and the extreme shifts attain it;
- the exact Neyman-Pearson adversary on a grid reaches ``q - TV`` and no lower; a rule with
  half the total variation is beaten (negative control);
- Monte Carlo on half-space models in d = 3; the top-K rule against a brute-force adversary;
- the engine builds it for cube noise and refuses other noises; the exact l_inf rule against
  the l1 conversion route on the same band; the documented vacuity at r = 4/255 on 3x32x32.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _topk_oracle import draw_band, draw_map, min_overlap, valid_topk_sets
from torch import nn

from captum_certified.certify import CubeTopKCertificate, CubeTopKCertifier, cube_tv_bound
from captum_certified.certify._core.cube_bounds import cube_pair_radius
from captum_certified.noise import GaussianNoise, UniformCubeNoise


def grid_tv(delta: np.ndarray, r: float, cells: int = 200) -> float:
    """TV of U[-r, r]^2 and its shift, from the fraction of grid points outside the shift."""
    axis = (np.arange(cells) + 0.5) / cells * 2 * r - r
    zx, zy = np.meshgrid(axis, axis, indexing="ij")
    inside = (np.abs(zx - delta[0]) <= r) & (np.abs(zy - delta[1]) <= r)
    return 1.0 - inside.mean()


def test_tv_bound_is_the_supremum():
    rng = np.random.default_rng(0)
    r = 0.5
    for norm, p in (("l1", 1), ("l2", 2), ("linf", np.inf)):
        for rho in (0.05, 0.3, 0.9):
            bound = cube_tv_bound(rho, r, 2, norm).item()
            worst = 0.0
            for _ in range(25):
                v = rng.normal(size=2)
                v = v / np.linalg.norm(v, ord=p) * rho
                worst = max(worst, grid_tv(v, r))
                assert grid_tv(v, r) <= bound + 2 / 200
            extreme = {"l1": [rho, 0.0], "linf": [rho, rho]}.get(norm)
            if extreme is not None:  # exact for l1 and l_inf
                assert grid_tv(np.array(extreme), r) == pytest.approx(bound, abs=2 / 200)
    # formulas, with the union bound as the l1 value
    assert cube_tv_bound(0.2, 0.5, 10, "l1").item() == pytest.approx(0.2)
    assert cube_tv_bound(0.2, 0.5, 10, "linf").item() == pytest.approx(1 - 0.8**10)
    assert cube_tv_bound(5.0, 0.5, 10, "l1").item() == 1.0
    assert cube_tv_bound(0.0, 0.5, 10, "linf").item() == 0.0
    with pytest.raises(ValueError, match="num_features"):
        cube_tv_bound(0.1, 0.5, 0)


def np_minimum_uniform(q: float, delta, r: float, cells: int = 300) -> float:
    """Exact adversary: min P1(h) given P0(h) = q, on grid cells (exact for uniform laws)."""
    axis = (np.arange(cells) + 0.5) / cells * 4 * r - 2 * r  # covers both cubes
    zx, zy = np.meshgrid(axis, axis, indexing="ij")
    in0 = ((np.abs(zx) <= r) & (np.abs(zy) <= r)).ravel()
    in1 = ((np.abs(zx - delta[0]) <= r) & (np.abs(zy - delta[1]) <= r)).ravel()
    p0, p1 = in0 / in0.sum(), in1 / in1.sum()
    keep = p0 > 0
    p0, p1 = p0[keep], p1[keep]
    order = np.argsort(p1 / p0, kind="stable")
    c0, c1 = np.cumsum(p0[order]), np.cumsum(p1[order])
    j = int(np.searchsorted(c0, q))
    prev0 = c0[j - 1] if j > 0 else 0.0
    prev1 = c1[j - 1] if j > 0 else 0.0
    return float(prev1 + (q - prev0) / p0[order][j] * p1[order][j])


@pytest.mark.parametrize("q", [0.05, 0.4, 0.9])
def test_exact_adversary_cannot_beat_the_rule(q):
    r, rho = 0.5, 0.2
    tol = 3 / 300
    tv = cube_tv_bound(rho, r, 2, "l1").item()
    attained = np_minimum_uniform(q, (-rho, 0.0), r)
    assert attained == pytest.approx(max(0.0, q - tv), abs=tol)
    if q > tv:  # negative control: claiming half the total variation is beaten
        assert attained < q - tv / 2 - tol
    for split in (0.5, 0.2):
        value = np_minimum_uniform(q, (-split * rho, (1 - split) * rho), r)
        assert value >= q - tv - tol


def test_monte_carlo_half_spaces_d3():
    gen = torch.Generator().manual_seed(1)
    n, d, r = 200_000, 3, 0.5
    u = (2 * torch.rand((n, d), generator=gen, dtype=torch.float64) - 1) * r
    se = math.sqrt(0.25 / n)
    for trial in range(10):
        w = torch.randn(d, generator=gen, dtype=torch.float64)
        if trial < 2:
            w = torch.zeros(d, dtype=torch.float64)
            w[trial] = 1.0
        c = 0.2 * torch.randn((), generator=gen, dtype=torch.float64)
        q = ((u @ w) > c).double().mean().item()
        for norm, p in (("l1", 1), ("linf", math.inf)):
            rho = 0.1
            delta = torch.randn(d, generator=gen, dtype=torch.float64)
            if trial < 2 and norm == "l1":
                delta = -w.clone()
            delta = delta / torch.linalg.vector_norm(delta, ord=p) * rho
            q2 = (((u + delta) @ w) > c).double().mean().item()
            tv = cube_tv_bound(rho, r, d, norm).item()
            assert q - tv - 6 * se <= q2 <= q + tv + 6 * se
            if trial < 2 and norm == "l1":  # one coordinate, threshold inside: attained
                assert q2 == pytest.approx(q - tv, abs=6 * se)


def make_cert(lower, upper, *, r=0.5, n_in=8, norm="linf"):
    lower = torch.as_tensor(np.atleast_2d(lower), dtype=torch.float64)
    upper = torch.as_tensor(np.atleast_2d(upper), dtype=torch.float64)
    return CubeTopKCertificate(
        lower,
        upper,
        num_input_features=n_in,
        noise=UniformCubeNoise(),
        norm=norm,
        scale=torch.full((lower.shape[0],), r, dtype=torch.float64),
        n=1,
        alpha=0.05,
        bound="test",
    )


def test_topk_rule_is_sound_bruteforce():
    rng = np.random.default_rng(3)
    positive = tight = exact = 0
    for trial in range(300):
        d = int(rng.integers(4, 9))
        k = int(rng.integers(1, d + 1))
        r = float(rng.uniform(0.2, 1.0))
        n_in = int(rng.integers(1, 20))
        norm = ("l1", "linf", "l2")[trial % 3]
        radius = float(rng.uniform(0, 0.5)) * (r if norm == "l1" else r / n_in)
        q = draw_map(rng, d)
        band = ("exact", "constant", "variable")[(trial // 3) % 3]
        lower, upper = draw_band(rng, q, band, constant_width=0.15, variable_width=0.2)
        cert = make_cert(lower, upper, r=r, n_in=n_in)
        m = int(cert.certified_count(k, radius, norm)[0])
        assert max(0, 2 * k - d) <= m <= k
        positive += m > max(0, 2 * k - d)
        tv = cube_tv_bound(radius, r, n_in, norm).item()
        lo, hi = np.clip(q - tv, 0, 1), np.clip(q + tv, 0, 1)
        for _ in range(10):
            t = rng.uniform(size=d)
            t[rng.uniform(size=d) < 0.3] = rng.integers(0, 2)
            assert min_overlap(q, lo + t * (hi - lo), k) >= m
        worst = min(min_overlap(q, np.where(s, lo, hi), k) for s in valid_topk_sets(q, k))
        assert worst >= m
        if band == "exact" and norm != "l2":
            exact += 1
            tight += worst == m
    assert positive > 0.3 * 300
    assert tight >= 0.97 * exact


def test_radii_queries_and_vacuity():
    cert = make_cert([0.9, 0.6, 0.3, 0.1], [0.9, 0.6, 0.3, 0.1], r=0.5, n_in=8)
    # rank 1 pairs 0.9 with U_(2) = 0.6 at K = 1
    assert cert.certified_radius(1, 1.0, "l1").item() == pytest.approx(0.5 * 0.3)
    linf = 2 * 0.5 * (1 - (1 - 0.15) ** (1 / 8))
    assert cert.certified_radius(1, 1.0, "linf").item() == pytest.approx(linf)
    # l2: the better of the two routes
    l2 = max(0.5 * 0.3 / math.sqrt(8), linf)
    assert cert.certified_radius(1, 1.0, "l2").item() == pytest.approx(l2)
    r1 = cert.certified_radius(1, 1.0, "l1")
    assert cert.topk_overlap(1, r1, "l1").item() == 1.0
    assert cert.topk_overlap(1, 0.5 * (0.9 - 0.6), "l1").item() == 0.0  # strict at the boundary
    assert cert.certifying_method(1, 0.1, "l1") == ["tv"]
    assert cert.certifying_method(1, 1.0, "l1") == ["none"]
    curve = [cert.topk_overlap(2, rr, "l1").item() for rr in (0.0, 0.1, 1.0)]
    assert curve == sorted(curve, reverse=True)
    # the exact l_inf rule vs the l1-conversion route (N eps) on the same band
    gap = torch.tensor([0.3], dtype=torch.float64)
    via_l1 = 0.5 * 0.3 / 8
    assert cube_pair_radius(gap, torch.tensor([0.5]), 8, "linf").item() > via_l1
    # Uniform Gradient at the paper's r = 4/255 on 3x32x32: vacuous in l_inf
    paper = make_cert([1.0, 0.0], [1.0, 0.0], r=4 / 255, n_in=3 * 32 * 32)
    ceiling = paper.max_radius("linf").item()
    assert ceiling == pytest.approx(2 * 4 / 255 * (1 - 0.5 ** (1 / 3072)), rel=1e-9)
    assert ceiling * 255 < 0.002
    assert paper.topk_overlap(1, 1 / 255, "linf").item() == 0.0
    assert paper.topk_overlap(1, 0.9 * 4 / 255, "l1").item() == 1.0  # l1: up to r


def test_engine_builds_it_and_refuses_other_noises():
    from captum.attr import Saliency

    from captum_certified.attr import CertifiedWrapper
    from captum_certified.transforms import TopKBinarize

    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Tanh(), nn.Linear(6, 3))
    x = torch.rand(2, 3, 4)
    cw = CertifiedWrapper(
        Saliency(model),
        noise=UniformCubeNoise(),
        transform=TopKBinarize(3),
        certifier=CubeTopKCertifier(),
    )
    attr, cert = cw.attribute(
        x,
        target=0,
        nt_samples=64,
        noise_scale=0.5,
        return_certificate=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert isinstance(cert, CubeTopKCertificate)
    assert (cert.noise, cert.norm, cert.bound, cert.n) == ("cube", "linf", "clopper_pearson", 64)
    assert cert.num_input_features == 12 and cert.num_features == 12
    torch.testing.assert_close(cert.scale, torch.full((2,), 0.5, dtype=torch.float64))
    # the answers are the closed form applied to the band
    lower, upper = cert.lower.sort(-1, descending=True).values, cert.upper.sort(-1, True).values
    gap = lower[:, :3] - upper[:, 3:6].flip(-1)
    expected = torch.where(gap > 0, 0.5 * gap, torch.full_like(gap, -math.inf))
    torch.testing.assert_close(cert.rank_radii(3, "l1"), expected)
    # a norm-less query answers for the native l_inf (issue 22: it answered for l1)
    torch.testing.assert_close(cert.rank_radii(3), cert.rank_radii(3, "linf"))
    assert CubeTopKCertifier.supported_noises[0].__name__ == "UniformCubeNoise"
    with pytest.raises(ValueError):  # refused (by check_noise or by the certifier)
        CertifiedWrapper(
            Saliency(model),
            noise=GaussianNoise(),
            transform=TopKBinarize(3),
            certifier=CubeTopKCertifier(),
        ).attribute(x, target=0, nt_samples=4, stdevs=0.5, return_certificate=True)
    with pytest.raises(ValueError, match="num_input_features"):
        make_cert([0.5], [0.5], n_in=0)
