"""The top-K certificates share one interface (TopKCertificate): the same five queries with the
same arguments, each answer consistent with the others, norms a family cannot answer refused."""

from __future__ import annotations

import math

import pytest
import torch

from captum_certified.certify import (
    CosineCertificate,
    CubeTopKCertificate,
    FeatureCertificate,
    GaussianTopKCertificate,
    RDPTopKCertificate,
    TopKCertificate,
    rdp_orders,
)
from captum_certified.noise import GaussianNoise, LaplaceNoise, UniformCubeNoise

BSZ, D = 3, 24


def band(seed: int = 0, width: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q = torch.rand(BSZ, D, generator=g, dtype=torch.float64) ** 3
    q[0] = torch.linspace(0.99, 0.0, D, dtype=torch.float64)  # well separated
    lower, upper = (q - width).clamp(0, 1), (q + width).clamp(0, 1)
    lower[-1], upper[-1] = 0.0, 1.0  # nothing certifiable
    return lower, upper


def fields(noise, norm: str) -> dict:
    scale = torch.tensor([0.5, 0.8, 0.3], dtype=torch.float64)
    return dict(noise=noise, norm=norm, scale=scale, n=1000, alpha=0.05, bound="test")


def certificates() -> dict[str, TopKCertificate]:
    lower, upper = band()
    return {
        "gaussian": GaussianTopKCertificate(
            lower, upper, num_input_features=D, **fields(GaussianNoise(), "l2")
        ),
        "cube": CubeTopKCertificate(
            lower, upper, num_input_features=D, **fields(UniformCubeNoise(), "linf")
        ),
        "rdp_laplace": RDPTopKCertificate(
            lower,
            upper,
            orders=rdp_orders(40),
            score_mass=4.0,
            num_input_features=D,
            **fields(LaplaceNoise(), "l1"),
        ),
    }


CERTS = certificates()


def test_every_topk_family_is_a_topk_certificate_and_the_others_are_not():
    assert all(isinstance(c, TopKCertificate) for c in CERTS.values())
    assert not issubclass(CosineCertificate, TopKCertificate)
    assert not issubclass(FeatureCertificate, TopKCertificate)
    assert TopKCertificate.__abstractmethods__ == {
        "rank_radii",
        "certified_count",
        "topk_overlap",
        "certified_radius",
        "overlap_curve",
    }


@pytest.mark.parametrize("name", sorted(CERTS))
@pytest.mark.parametrize("k", [3, 0.25])
def test_the_five_queries_agree(name, k):
    cert = CERTS[name]
    count = cert._count(k)
    radii = cert.rank_radii(k)
    assert radii.shape == (BSZ, count) and radii.dtype == torch.float64
    assert (radii[:, :-1] >= radii[:, 1:]).all()  # R_1 >= ... >= R_K
    grid = torch.tensor([0.0, 1e-3, 0.01, 0.05, 0.2], dtype=torch.float64)
    curve = cert.overlap_curve(k, grid)
    assert curve.shape == (BSZ, grid.numel())
    for j, r in enumerate(grid.tolist()):
        overlap = cert.topk_overlap(k, r)
        m = cert.certified_count(k, r)
        torch.testing.assert_close(curve[:, j], overlap, rtol=0, atol=0)
        torch.testing.assert_close(overlap, m.to(torch.float64) / count, rtol=0, atol=0)
        # a rank counts at r exactly when its radius exceeds r (or it is unopposed)
        kept = ((radii > r) | torch.isposinf(radii)).sum(-1)
        assert (kept <= m).all()  # rank radii never claim more than the count
        if name != "rdp_laplace":  # closed-form rank radii: exactly the count
            assert torch.equal(kept, m)
    assert cert.topk_overlap(k, 0.0)[-1] == 0  # the vacuous band certifies nothing
    for overlap in (1 / count, 0.5):
        r = cert.certified_radius(k, overlap)
        pos = torch.isfinite(r) & (r > 0)
        got = cert.topk_overlap(k, torch.where(pos, r, 0.0))
        assert (got[pos] >= overlap - 1e-12).all()


def test_native_norm_is_the_default_of_every_query():
    for cert in CERTS.values():
        native = cert.norm
        for query in ("topk_overlap", "certified_count"):
            a = getattr(cert, query)(0.25, 0.01)
            b = getattr(cert, query)(0.25, 0.01, native)
            assert torch.equal(a, b)


def test_gaussian_answers_for_l2_only():
    cert = CERTS["gaussian"]
    assert torch.equal(cert.topk_overlap(3, 0.05, "l2"), cert.topk_overlap(3, 0.05))
    for query, arg in (
        ("topk_overlap", 0.05),
        ("certified_count", 0.05),
        ("certified_radius", 0.5),
        ("overlap_curve", torch.tensor([0.05])),
    ):
        with pytest.raises(ValueError, match="norm"):
            getattr(cert, query)(3, arg, "l1")
    with pytest.raises(ValueError, match="norm"):
        cert.rank_radii(3, "linf")


def test_rdp_rank_radii_are_the_per_rank_certified_radii():
    # teeth: rank i is certified at R_i and no longer a little above it; -inf exactly where
    # rank i is not certified at radius 0
    cert = CERTS["rdp_laplace"]
    count = 6
    radii = cert.rank_radii(count)
    at_zero = cert.certified_count(count, 0.0)
    checked = 0
    for i in range(1, count + 1):
        col = radii[:, i - 1]
        assert torch.equal(torch.isneginf(col), at_zero < i)
        for b in range(BSZ):
            r = col[b].item()
            if math.isfinite(r) and r > 0:
                at = torch.zeros(BSZ, dtype=torch.float64)
                at[b] = r
                assert cert.certified_count(count, at)[b] >= i
                at[b] = r * 1.001
                assert cert.certified_count(count, at)[b] < i
                checked += 1
    assert checked >= 3
