"""Certified counterparts read from certificates (subclasses of certify's interfaces)."""

import pytest
import torch

from captum_certified import metrics as M
from captum_certified.certify import CosineCertificate, TopKCertificate


def _not_queried(*args, **kwargs):
    raise AssertionError("the metric only reads topk_overlap")


class FakeTopKCertificate(TopKCertificate):
    """A user's own top-K certificate: it subclasses the interface (no statistics behind it)."""

    def __init__(self, values):
        self.values = values
        self.calls = []

    def topk_overlap(self, k, radius, norm=None):
        self.calls.append((k, radius))
        return self.values

    rank_radii = certified_count = certified_radius = overlap_curve = _not_queried


class FakeCosineCertificate(CosineCertificate):
    def __init__(self, values):
        self.values = values

    def cosine_lower_bound(self, radius):
        return self.values


def test_duck_typed_certificates_are_refused():
    # an object with the right method names but not the interface is no certificate
    class Duck:
        def topk_overlap(self, k, radius):
            return torch.ones(1)

        def cosine_lower_bound(self, radius):
            return torch.ones(1)

    with pytest.raises(TypeError, match="TopKCertificate"):
        M.certified_topk_intersection(Duck(), k=1, radius=0.1)
    with pytest.raises(TypeError, match="CosineCertificate"):
        M.certified_cosine_similarity(Duck(), radius=0.1)
    with pytest.raises(TypeError, match="abstract"):
        TopKCertificate()  # the interface itself cannot be built


def test_certified_topk_reads_the_certificate():
    cert = FakeTopKCertificate(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    out = M.certified_topk_intersection(cert, k=0.2, radius=0.1)
    assert out is cert.values
    assert cert.calls == [(0.2, 0.1)]
    radius = torch.tensor([0.0, 0.1, 0.2])
    M.certified_topk_intersection(cert, k=10, radius=radius)
    assert cert.calls[-1][0] == 10 and cert.calls[-1][1] is radius


def test_certified_topk_with_a_real_certificate():
    # The metric reads a real GaussianTopKCertificate: same numbers as the certificate's own
    # method, in [0, 1], non-increasing in the radius, with the keywords it documents.
    import inspect

    from captum_certified.attr import SparseSmoothGrad
    from captum_certified.certify import GaussianTopKCertificate

    params = inspect.signature(GaussianTopKCertificate.topk_overlap).parameters
    assert "k" in params and "radius" in params
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    x = torch.randn(2, 8, generator=torch.Generator().manual_seed(1))
    _, cert = SparseSmoothGrad(model, sparsity=2).attribute(
        x,
        target=0,
        nt_samples=256,
        stdevs=0.5,
        return_certificate=True,
        generator=torch.Generator().manual_seed(2),
    )
    assert isinstance(cert, GaussianTopKCertificate)
    values = [M.certified_topk_intersection(cert, k=2, radius=r) for r in (0.0, 0.05, 0.5, 5.0)]
    for v, r in zip(values, (0.0, 0.05, 0.5, 5.0)):
        assert torch.equal(v, cert.topk_overlap(k=2, radius=r))
        assert ((v >= 0) & (v <= 1)).all()
    for a, b in zip(values, values[1:]):
        assert (b <= a).all()
    assert (values[-1] == 0).all()  # radius 10 sigma: nothing can be certified
    assert (values[0] > 0).any()  # a real certificate somewhere at radius 0


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
