"""API contract of RDPTopKCertificate / RDPTopKCertifier: shapes, consistency, errors, cost."""

from __future__ import annotations

import math
import time

import pytest
import torch
from _oracles import scan_ranks

from captum_certified.certify import (
    GaussianTopKCertificate,
    RDPTopKCertificate,
    RDPTopKCertifier,
    StreamingMoments,
    rdp_orders,
)
from captum_certified.noise import GaussianNoise, LaplaceNoise, UniformCubeNoise, resolve_noise
from captum_certified.transforms import ClipNormalize, ScoringRescale, TopKBinarize

BSZ, D = 6, 40
NORMS = ["l1", "l2", 3, "linf"]


def make_cert(noise: str, *, d: int = D, bsz: int = BSZ, seed: int = 0, mass=4.0, width=0.03):
    g = torch.Generator().manual_seed(seed)
    q = torch.rand(bsz, d, generator=g, dtype=torch.float64) ** 3
    q[:, :3] = 0.0
    q[:, 3] = 1.0
    q[0] = torch.linspace(0.99, 0.0, d, dtype=torch.float64)  # well separated
    lower, upper = (q - width).clamp(0, 1), (q + width).clamp(0, 1)
    lower[-1], upper[-1] = 0.0, 1.0  # nothing certifiable
    scale = 0.25 + torch.rand(bsz, generator=g, dtype=torch.float64)
    return RDPTopKCertificate(
        lower,
        upper,
        orders=rdp_orders(),
        score_mass=mass,
        num_input_features=d,
        noise=resolve_noise(noise),
        norm="l2" if noise == "gaussian" else "l1",
        scale=scale,
        n=1000,
        alpha=0.05,
        bound="test",
    )


@pytest.fixture(scope="module", params=["gaussian", "laplace"])
def cert(request):
    return make_cert(request.param)


@pytest.mark.parametrize("k", [1, 5, 0.25, 20, 21, 40])
def test_overlap_shape_range_monotone(cert, k):
    radii = [0.0, 1e-3, 0.01, 0.05, 0.2, 1.0, math.inf]
    for norm in NORMS:
        for method in (*cert.methods, "best"):
            curve = torch.stack([cert.topk_overlap(k, r, norm, method) for r in radii], 1)
            assert curve.shape == (BSZ, len(radii)) and curve.dtype == torch.float64
            assert not torch.isnan(curve).any()
            assert ((curve >= 0) & (curve <= 1)).all()
            assert (curve[:, :-1] >= curve[:, 1:]).all()  # non-increasing in the radius
            count = k if isinstance(k, int) else int(k * D)
            # at an infinite radius only the 2K - d unopposed ranks remain
            assert (curve[:, -1] == max(0, 2 * count - D) / count).all()
            assert curve[-1, 0] == max(0, 2 * count - D) / count  # uninformative band


def test_binary_search_equals_full_scan():
    for seed in range(4):
        for noise in ("gaussian", "laplace"):
            cert = make_cert(noise, seed=seed, d=60, width=0.01 * seed)
            for method in (*cert.methods, "best"):
                for k in (3, 10, 30, 35):
                    for r in (0.0, 0.003, 0.03, 0.3):
                        mask = scan_ranks(cert, k, r, "l2", method)
                        ranks = torch.arange(1, k + 1)
                        # the certified ranks form a prefix, and the search finds its end
                        assert (mask.cumprod(1) == mask).all()
                        expected = (mask * ranks).amax(1)
                        assert torch.equal(cert.certified_count(k, r, "l2", method), expected)


def test_certified_radius_is_consistent_and_tight(cert):
    for norm in NORMS:
        for method in (*cert.methods, "best"):
            for k, overlap in ((4, 0.5), (10, 0.2), (0.5, 1.0)):
                r = cert.certified_radius(k, overlap, norm, method)
                assert r.shape == (BSZ,) and not torch.isnan(r).any() and (r >= 0).all()
                assert r[-1] == 0  # nothing certifiable: 0, never NaN
                pos = (r > 0) & torch.isfinite(r)
                got = cert.topk_overlap(k, r.where(pos, torch.zeros_like(r)), norm, method)
                assert (got[pos] >= overlap - 1e-12).all()
                # tight: 0.1% beyond it the overlap is no longer certified
                above = cert.topk_overlap(
                    k, (r * 1.001).where(pos, torch.zeros_like(r)), norm, method
                )
                assert (above[pos] < overlap).all()
    assert cert.certified_radius(10, 0.5, "l2")[0] > 0  # the separated example certifies


def test_radius_ordering_across_norms_and_methods(cert):
    # B_1(r) ⊂ B_2(r) ⊂ B_3(r) ⊂ B_inf(r): radii certified for a norm shrink as p grows
    for method in (*cert.methods, "best"):
        radii = [cert.certified_radius(6, 0.5, n, method) for n in NORMS]
        for a, b in zip(radii, radii[1:]):
            assert (a >= b * (1 - 1e-9)).all()
    best = cert.certified_radius(6, 0.5, "l1", "best")
    for method in cert.methods:
        assert (best >= cert.certified_radius(6, 0.5, "l1", method) * (1 - 1e-9)).all()


def test_gaussian_phi_method_equals_levine_certificate():
    cert = make_cert("gaussian")
    levine = GaussianTopKCertificate(
        cert.lower,
        cert.upper,
        noise=GaussianNoise(),
        norm="l2",
        scale=cert.scale,
        n=1000,
        alpha=0.05,
        bound="test",
    )
    for k in (3, 10, 25):
        for r in (0.0, 0.05, 0.2):
            torch.testing.assert_close(
                cert.topk_overlap(k, r, "l2", "phi"), levine.topk_overlap(k, r)
            )
        torch.testing.assert_close(
            cert.certified_radius(k, 0.5, "l2", "phi"),
            levine.certified_radius(k, 0.5),
            rtol=1e-8,
            atol=0,
        )
        # l_inf: sqrt(N) conversion; l1: rho_2 <= rho_1
        torch.testing.assert_close(
            cert.certified_radius(k, 0.5, "linf", "phi"),
            levine.certified_radius(k, 0.5) / math.sqrt(D),
            rtol=1e-8,
            atol=0,
        )
    # for Gaussian noise the Phi rule dominates the RDP methods
    for method in ("holder", "pairwise"):
        assert (
            cert.certified_radius(6, 0.5, "l2", "phi")
            >= cert.certified_radius(6, 0.5, "l2", method)
        ).all()


def test_per_example_radius_and_epsilon():
    cert = make_cert("laplace")
    r = torch.linspace(0.0, 0.2, BSZ, dtype=torch.float64)
    per = cert.topk_overlap(5, r)
    for i in range(BSZ):
        assert per[i] == cert.topk_overlap(5, float(r[i]))[i]
    eps = cert.epsilon(r, "linf")
    assert eps.shape == (BSZ, 200) and (eps[0] == 0).all()


def test_bad_arguments():
    cert = make_cert("laplace")
    for bad in (0, D + 1, 1.5, -0.1, 0.0):
        with pytest.raises(ValueError, match="`k`"):
            cert.topk_overlap(bad, 0.1)
    with pytest.raises(TypeError, match="`k`"):
        cert.topk_overlap("3", 0.1)
    for bad in ("l0", 0.5, "cosine", float("nan")):
        with pytest.raises(ValueError, match="norm"):
            cert.topk_overlap(3, 0.1, norm=bad)
    for bad in (float("nan"), -0.1, torch.tensor([0.1, float("nan")] * 3)):
        with pytest.raises(ValueError, match="radius"):
            cert.topk_overlap(3, bad)
    with pytest.raises(ValueError, match="radius"):
        cert.topk_overlap(3, torch.zeros(BSZ + 1))
    for bad in (0.0, 1.5, -1):
        with pytest.raises(ValueError, match="overlap"):
            cert.certified_radius(3, bad)
    with pytest.raises(ValueError, match="method"):
        cert.topk_overlap(3, 0.1, method="joint")
    with pytest.raises(ValueError, match="phi"):
        cert.topk_overlap(3, 0.1, method="phi")  # Laplace noise
    no_mass = make_cert("laplace", mass=None)
    assert no_mass.methods == ("holder", "laplace")
    assert make_cert("gaussian").methods == ("holder", "pairwise", "phi")
    with pytest.raises(ValueError, match="Laplace noise only"):
        make_cert("gaussian").topk_overlap(3, 0.1, method="laplace")
    with pytest.raises(ValueError, match="pairwise"):
        no_mass.topk_overlap(3, 0.1, method="pairwise")
    with pytest.raises(ValueError, match="cannot be changed"):
        cert.num_input_features = None  # a known count is a fact, not a setting
    cert = make_cert("laplace")
    cert._num_input_features = None  # a certificate built without the count
    with pytest.raises(ValueError, match="num_input_features"):
        cert.topk_overlap(3, 0.1, norm="linf")
    with pytest.raises(ValueError, match="num_input_features"):
        cert.certified_radius(3, 0.5, norm=4)
    cert.topk_overlap(3, 0.1, norm="l2")  # zCDP route needs no N
    with pytest.raises(ValueError, match="score_mass"):
        make_cert("laplace", mass=0.5)
    with pytest.raises(ValueError, match="uniform"):
        make_cert("uniform")


def test_certifier_checks():
    with pytest.raises(ValueError, match="method"):
        RDPTopKCertifier(method="equalized")
    with pytest.raises(ValueError, match="orders"):
        RDPTopKCertifier(orders=torch.tensor([0.5, 2.0]))
    with pytest.raises(ValueError, match="num_input_features"):
        RDPTopKCertifier(num_input_features=0)
    certifier = RDPTopKCertifier()
    certifier.check_transform(ScoringRescale("linear", sparsity=3))
    with pytest.raises(ValueError, match="totals"):  # a map that breaks the constant mass
        certifier.check_samples(torch.tensor([[1.0, 1.0, 0.0, 0.0]]), TopKBinarize(1))
    stats = StreamingMoments()
    stats.update(torch.tensor([[[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]]]))
    cert = certifier.certify(
        stats,
        scale=torch.tensor([0.5], dtype=torch.float64),
        noise=LaplaceNoise(),
        alpha=0.05,
        bound=None,
        transform=TopKBinarize(2),
    )
    assert cert.bound == "clopper_pearson" and cert.score_mass == 2.0 and cert.n == 2
    assert "RDPTopKCertificate" in repr(cert) and "method='best'" in repr(cert)
    with pytest.raises(ValueError, match="gaussian"):
        certifier.certify(
            stats,
            scale=torch.ones(1),
            noise=UniformCubeNoise(),
            alpha=0.05,
            bound=None,
            transform=TopKBinarize(2),
        )
    with pytest.raises(ValueError, match="pairwise"):
        RDPTopKCertifier(method="pairwise").certify(
            stats,
            scale=torch.ones(1),
            noise=LaplaceNoise(),
            alpha=0.05,
            bound="hoeffding",
            transform=ClipNormalize(2, 1),
        )


@pytest.mark.parametrize("d", [3072, 150528])
def test_query_cost(d):
    # One sort per K (cached), then O(log K) pair evaluations x 200 orders per query: small next
    # to the n forward/backward passes behind the certificate. Loose bounds (shared machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        q = torch.rand(1, d, generator=g, dtype=torch.float64) ** 8
        timings = {}
        for noise in ("gaussian", "laplace"):
            cert = RDPTopKCertificate(
                (q - 0.02).clamp(0, 1),
                (q + 0.02).clamp(0, 1),
                orders=rdp_orders(),
                score_mass=0.1 * d,
                num_input_features=d,
                noise=resolve_noise(noise),
                norm="l2" if noise == "gaussian" else "l1",
                scale=torch.tensor([0.5], dtype=torch.float64),
                n=1000,
                alpha=0.05,
                bound="t",
            )
            start = time.perf_counter()
            cert.topk_overlap(0.1, 0.0)  # sorts
            timings[f"{noise} first"] = time.perf_counter() - start
            start = time.perf_counter()
            cert.topk_overlap(0.1, 0.01, "linf", "best")
            timings[f"{noise} overlap"] = time.perf_counter() - start
            start = time.perf_counter()
            cert.certified_radius(0.1, 0.5, "linf", "best")
            timings[f"{noise} radius"] = time.perf_counter() - start
        print(f"d={d}: " + ", ".join(f"{key} {1e3 * v:.1f} ms" for key, v in timings.items()))
        assert max(timings.values()) < 5.0
    finally:
        torch.set_num_threads(threads)
