"""RenyiRobustSmooth: reference re-implementation, hygiene, errors, and RDP vs Phi (Gaussian)."""

from __future__ import annotations

import pytest
import torch
from _digits import trained_digits_cnn
from torch import nn

from captum_certified.attr import RenyiRobustSmooth, SparseSmoothGrad, default_certifier
from captum_certified.certify import RDPTopKCertificate
from captum_certified.noise import GaussianNoise, LaplaceNoise, UniformCubeNoise


@pytest.fixture(scope="module")
def digits():
    model, x, y, _ = trained_digits_cnn()
    return model, x, y


def reference_map(model, x, y, *, n, chunk, b, keep, seed, scores=None):
    """Rank-rescaled Laplace-smoothed |grad|, with noise drawn in the engine's documented order:
    per chunk, (bsz * c, *shape) float64 uniforms U1, U2; noise b * (log(1-U2) - log(1-U1))."""
    g = torch.Generator().manual_seed(seed)
    bsz, d = x.shape[0], x[0].numel()
    v = torch.ones(keep) if scores is None else scores / scores[0]
    out = torch.zeros(bsz, d, dtype=torch.float64)
    sizes = [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])
    for c in sizes:
        u = torch.rand((2, bsz * c) + x.shape[1:], generator=g, dtype=torch.float64)
        eps = (torch.log1p(-u[1]) - torch.log1p(-u[0])).to(x.dtype)
        z = (x.repeat_interleave(c, 0) + eps * b).requires_grad_(True)
        with torch.enable_grad():
            logit = model(z).gather(1, y.repeat_interleave(c, 0)[:, None]).sum()
            (grad,) = torch.autograd.grad(logit, z)
        a = grad.abs().reshape(bsz, c, d)
        order = torch.argsort(-a, dim=-1, stable=True)[..., : v.numel()]
        maps = torch.zeros_like(a).scatter_(-1, order, v.to(a.dtype).expand(bsz, c, -1))
        out += maps.sum(1, dtype=torch.float64)
    return (out / n).reshape(x.shape)


def test_issue_example_and_reference(digits):
    model, x, y = digits
    x, y = x[:3], y[:3]
    rrs = RenyiRobustSmooth(model, sparsity=0.1, scoring="topk")
    attr, cert = rrs.attribute(
        x,
        target=y,
        nt_samples=40,
        nt_samples_batch_size=16,
        noise=LaplaceNoise(),
        noise_scale=0.5,
        return_certificate=True,
        alpha=0.05,
        generator=torch.Generator().manual_seed(1),
    )
    expected = reference_map(model, x, y, n=40, chunk=16, b=0.5, keep=6, seed=1)
    torch.testing.assert_close(attr, expected.to(attr.dtype), rtol=0, atol=1e-6)
    torch.testing.assert_close(attr.sum((1, 2, 3)), torch.full((3,), 6.0))
    assert isinstance(cert, RDPTopKCertificate)
    assert (cert.noise, cert.norm, cert.n, cert.bound) == ("laplace", "l1", 40, "clopper_pearson")
    assert cert.num_input_features == 64 and cert.score_mass == 6.0
    torch.testing.assert_close(cert.scale, torch.full((3,), 0.5, dtype=torch.float64))
    for value in (
        cert.topk_overlap(k=0.1, radius=0.05, norm="l1"),
        cert.certified_radius(k=0.1, overlap=0.5, norm="linf"),
        cert.topk_overlap(k=0.1, radius=0.01, norm=2),
    ):
        assert value.shape == (3,) and not torch.isnan(value).any() and (value >= 0).all()
    # explicit scoring vector: KL band, pairwise available
    scores = torch.tensor([4.0, 3.0, 2.0, 1.0])
    attr2, cert2 = RenyiRobustSmooth(model, scoring=scores).attribute(
        x,
        target=y,
        nt_samples=40,
        nt_samples_batch_size=16,
        noise=LaplaceNoise(),
        noise_scale=0.5,
        return_certificate=True,
        generator=torch.Generator().manual_seed(1),
    )
    expected2 = reference_map(model, x, y, n=40, chunk=16, b=0.5, keep=4, seed=1, scores=scores)
    torch.testing.assert_close(attr2, expected2.to(attr2.dtype), rtol=0, atol=1e-6)
    assert cert2.bound == "kl" and cert2.score_mass == pytest.approx(2.5)
    assert cert2.methods == ("holder", "pairwise", "laplace")


def test_determinism_and_hygiene():
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3)
    )
    model.train()
    x = torch.rand(2, 3, 4)
    rrs = RenyiRobustSmooth(model, sparsity=3, scoring="geometric", gamma=0.7)
    state = torch.random.get_rng_state()
    kwargs = dict(
        target=1,
        nt_samples=20,
        nt_samples_batch_size=8,
        noise=LaplaceNoise(),
        noise_scale=0.3,
        return_certificate=True,
    )
    a1, c1 = rrs.attribute(x, generator=torch.Generator().manual_seed(3), **kwargs)
    a2, c2 = rrs.attribute(x, generator=torch.Generator().manual_seed(3), **kwargs)
    assert torch.equal(a1, a2) and torch.equal(c1.lower, c2.lower)
    assert torch.equal(torch.random.get_rng_state(), state)  # dropout drew on a forked RNG
    assert model.training and not x.requires_grad
    a3 = rrs.attribute(x, generator=torch.Generator().manual_seed(4), **kwargs)[0]
    assert not torch.equal(a1, a3)
    # tuple inputs: the certificate counts the features of all input tensors
    two = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    rrs2 = RenyiRobustSmooth(lambda u, w: two(u) + two(w), sparsity=2)
    out, cert = rrs2.attribute(
        (x, x.clone()),
        target=0,
        nt_samples=5,
        noise=GaussianNoise(),
        return_certificate=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert isinstance(out, tuple) and out[0].shape == x.shape
    assert cert.num_input_features == 24 and cert.num_features == 24
    assert cert.methods == ("holder", "pairwise", "phi")


def test_bad_arguments():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = torch.rand(2, 3, 4)
    for bad in (0, -1, 0.0, 1.5):
        with pytest.raises(ValueError, match="`sparsity`"):
            RenyiRobustSmooth(model, sparsity=bad)
    with pytest.raises(ValueError, match="`sparsity`"):  # 20 > d = 12 features
        RenyiRobustSmooth(model, sparsity=20).attribute(x, target=0, nt_samples=2)
    with pytest.raises(TypeError, match="'k'"):  # the name before `sparsity`, never released
        RenyiRobustSmooth(model, sparsity=2, k=2)
    with pytest.raises(ValueError, match="scoring"):
        RenyiRobustSmooth(model, scoring="cubic")
    with pytest.raises(ValueError, match="gamma"):
        RenyiRobustSmooth(model, scoring="geometric", gamma=2.0)
    with pytest.raises(ValueError, match="method"):
        RenyiRobustSmooth(model, method="equalized")
    rrs = RenyiRobustSmooth(model, sparsity=2)
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match="noise_scale"):
            rrs.attribute(x, target=0, nt_samples=2, noise=LaplaceNoise(), noise_scale=bad)
        with pytest.raises(ValueError, match="stdevs"):  # Gaussian: Captum's name
            rrs.attribute(x, target=0, nt_samples=2, stdevs=bad)
    # a zero scale is plain (unsmoothed) attribution, as in NoiseTunnel, but never certified
    with pytest.raises(ValueError, match="`noise_scale` must be > 0 .*certificate"):
        rrs.attribute(
            x,
            target=0,
            nt_samples=2,
            noise=LaplaceNoise(),
            noise_scale=0.0,
            return_certificate=True,
        )
    with pytest.raises(ValueError, match="`stdevs` must be > 0 .*certificate"):
        rrs.attribute(x, target=0, nt_samples=2, stdevs=0.0, return_certificate=True)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            rrs.attribute(x, target=0, nt_samples=2, return_certificate=True, alpha=bad)
    with pytest.raises(TypeError, match="noise"):  # a noise object, not a name
        rrs.attribute(x, target=0, nt_samples=2, noise="laplace")
    with pytest.raises(ValueError, match="certificate"):
        rrs.attribute(x, target=0, nt_samples=2, noise=UniformCubeNoise(), return_certificate=True)
    with pytest.raises(ValueError, match="inputs"):
        rrs.attribute(x * float("nan"), target=0, nt_samples=2)
    with pytest.raises(ValueError, match="clopper_pearson"):
        RenyiRobustSmooth(model, sparsity=2, scoring="linear").attribute(
            x, target=0, nt_samples=2, return_certificate=True, bound="clopper_pearson"
        )
    with pytest.raises(ValueError, match="phi"):
        RenyiRobustSmooth(model, sparsity=2, method="phi").attribute(
            x, target=0, nt_samples=2, noise=LaplaceNoise(), return_certificate=True
        )


def test_gaussian_rdp_certifies_less_than_phi_on_the_same_samples(digits):
    # Same generator seed, binary top-k' scoring = SparseSmoothGrad's map: identical maps and
    # bands. The Phi rule (certificates.rst §5) certifies strictly more than the RDP bounds.
    model, x, y = digits
    x, y = x[:6], y[:6]
    kw = dict(
        target=y, nt_samples=512, nt_samples_batch_size=256, stdevs=0.5, return_certificate=True
    )
    a_ssg, c_ssg = SparseSmoothGrad(model, sparsity=8).attribute(
        x, generator=torch.Generator().manual_seed(0), **kw
    )
    a_rrs, c_rrs = RenyiRobustSmooth(model, sparsity=8, scoring="topk").attribute(
        x, noise=GaussianNoise(), generator=torch.Generator().manual_seed(0), **kw
    )
    assert torch.equal(a_ssg, a_rrs)
    assert torch.equal(c_ssg.lower, c_rrs.lower) and torch.equal(c_ssg.upper, c_rrs.upper)
    k = 8
    phi = c_ssg.certified_radius(k, 0.5)
    torch.testing.assert_close(c_rrs.certified_radius(k, 0.5, "l2", "phi"), phi, rtol=1e-8, atol=0)
    torch.testing.assert_close(c_rrs.certified_radius(k, 0.5, "l2", "best"), phi, rtol=1e-8, atol=0)
    holder = c_rrs.certified_radius(k, 0.5, "l2", "holder")
    pairwise = c_rrs.certified_radius(k, 0.5, "l2", "pairwise")
    print(
        f"l2 radius at K=8, overlap 0.5 (mean over 6 digits): Phi {phi.mean():.4f}, "
        f"Hölder {holder.mean():.4f}, pairwise {pairwise.mean():.4f}"
    )
    assert (phi > 0).all()
    assert (holder < phi).all() and (pairwise < holder).all()
    # the overlap certified at the Hölder radius is no larger than Phi's there
    for radius in (0.05, 0.1, 0.2):
        o_phi = c_ssg.topk_overlap(k, radius)
        for method in ("holder", "pairwise"):
            assert (c_rrs.topk_overlap(k, radius, "l2", method) <= o_phi).all()


def test_laplace_noise_object_and_default_certifier():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = torch.rand(1, 12)
    rrs = RenyiRobustSmooth(model, sparsity=3)
    _, cert = rrs.attribute(
        x,
        target=0,
        nt_samples=30,
        noise=LaplaceNoise(),
        noise_scale=0.4,
        return_certificate=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert cert.noise == "laplace" and cert.methods == ("holder", "pairwise", "laplace")
    assert default_certifier(LaplaceNoise()).method == "best"


def test_engine_default_certifier_for_laplace_noise():
    # CertifiedWrapper with Laplace noise picks the RDP certifier; it cannot know the number of
    # input features (a layer attribution's map may differ), so norms that need it ask for it.
    from captum.attr import Saliency

    from captum_certified.attr import CertifiedWrapper
    from captum_certified.transforms import TopKBinarize

    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Tanh(), nn.Linear(6, 3))
    x = torch.rand(2, 3, 4)
    cw = CertifiedWrapper(Saliency(model), noise=LaplaceNoise(), transform=TopKBinarize(3))
    _, cert = cw.attribute(
        x,
        target=0,
        nt_samples=50,
        noise_scale=0.4,
        return_certificate=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert isinstance(cert, RDPTopKCertificate)
    assert cert.methods == ("holder", "pairwise", "laplace")
    # the engine tells the certifier how many input features the noise perturbed
    assert cert.num_input_features == 12
    cert.topk_overlap(3, 0.01, "l1")
    cert.topk_overlap(3, 0.01, "l2")
    assert cert.topk_overlap(3, 0.01, "linf").shape == (2,)
    with pytest.raises(ValueError, match="cannot be changed"):
        cert.num_input_features = None
    cert._num_input_features = None  # as if built without the count
    with pytest.raises(ValueError, match="num_input_features"):
        cert.topk_overlap(3, 0.01, "linf")


def test_sparsity_gives_the_top_sparsity_binary_map():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(0))
    new = RenyiRobustSmooth(model, sparsity=3)
    assert new.sparsity == 3
    kw = {"target": 0, "nt_samples": 8, "stdevs": 0.3}
    a = new.attribute(x, generator=torch.Generator().manual_seed(1), **kw)
    assert a.sum(dim=(1, 2)).allclose(torch.full((2,), 3.0))  # top-3 binary map, mean of 0/1
