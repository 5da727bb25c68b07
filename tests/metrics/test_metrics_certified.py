"""Certified counterparts read from (duck-typed) certificates."""

import pytest
import torch

from captum_certified import metrics as M


class FakeTopKCertificate:
    def __init__(self, values):
        self.values = values
        self.calls = []

    def topk_overlap(self, k, radius):
        self.calls.append((k, radius))
        return self.values


class FakeCosineCertificate:
    def __init__(self, values):
        self.values = values

    def cosine_lower_bound(self, radius):
        return self.values


def test_certified_topk_reads_the_certificate():
    cert = FakeTopKCertificate(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    out = M.certified_topk_intersection(cert, k=0.2, radius=0.1)
    assert out is cert.values
    assert cert.calls == [(0.2, 0.1)]
    radius = torch.tensor([0.0, 0.1, 0.2])
    M.certified_topk_intersection(cert, k=10, radius=radius)
    assert cert.calls[-1][0] == 10 and cert.calls[-1][1] is radius


def test_certified_topk_with_a_real_certificate_when_available():
    certify = pytest.importorskip("captum_certified.certify")
    if not hasattr(certify, "GaussianTopKCertificate"):
        pytest.skip("no GaussianTopKCertificate")
    # only check the duck-typed contract: the method exists and has the right keywords
    import inspect

    params = inspect.signature(certify.GaussianTopKCertificate.topk_overlap).parameters
    assert "k" in params and "radius" in params


def test_certified_topk_validation():
    good = FakeTopKCertificate(torch.tensor([0.5]))
    with pytest.raises(TypeError, match="certificate"):
        M.certified_topk_intersection(object(), k=1, radius=0.1)
    for k in (0, -1, 0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="k"):
            M.certified_topk_intersection(good, k=k, radius=0.1)
    for k in (True, "3", None):
        with pytest.raises(TypeError, match="k"):
            M.certified_topk_intersection(good, k=k, radius=0.1)
    for radius in (-0.1, float("nan"), torch.tensor([0.1, -1.0])):
        with pytest.raises(ValueError, match="radius"):
            M.certified_topk_intersection(good, k=1, radius=radius)
    with pytest.raises(TypeError, match="radius"):
        M.certified_topk_intersection(good, k=1, radius="0.1")
    with pytest.raises(ValueError, match="topk_overlap"):
        M.certified_topk_intersection(FakeTopKCertificate(torch.tensor([1.5])), k=1, radius=0)
    with pytest.raises(ValueError, match="topk_overlap"):
        M.certified_topk_intersection(FakeTopKCertificate(torch.tensor([[0.5]])), k=1, radius=0)
    with pytest.raises(TypeError, match="topk_overlap"):
        M.certified_topk_intersection(FakeTopKCertificate([0.5]), k=1, radius=0)


def test_certified_cosine():
    cert = FakeCosineCertificate(torch.tensor([0.0, 0.9]))
    assert torch.equal(M.certified_cosine_similarity(cert, radius=0.05), cert.values)
    with pytest.raises(TypeError, match="certificate"):
        M.certified_cosine_similarity(FakeTopKCertificate(torch.ones(1)), radius=0.05)
    with pytest.raises(ValueError, match="radius"):
        M.certified_cosine_similarity(cert, radius=-1.0)
    with pytest.raises(ValueError, match="cosine_lower_bound"):
        M.certified_cosine_similarity(FakeCosineCertificate(torch.tensor([2.0])), radius=0.1)
