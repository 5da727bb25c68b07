"""SparseSmoothGrad against an independent re-implementation of Levine et al.'s procedure."""

import numpy as np
import pytest
import torch
from _digits import trained_digits_cnn
from scipy import stats

from captum_certified.attr import SparseSmoothGrad
from captum_certified.transforms import TopKBinarize


def _reference_samples(model, x, target, n, chunk, sigma, seed):
    """Per-sample |grad| maps (bsz, n, d), drawing noise in the engine's documented order."""
    g = torch.Generator().manual_seed(seed)
    bsz = x.shape[0]
    maps = []
    sizes = [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])
    for c in sizes:
        z = x.repeat_interleave(c, 0) + torch.randn((bsz * c,) + x.shape[1:], generator=g) * sigma
        z.requires_grad_(True)
        with torch.enable_grad():
            out = model(z)
            t = out.argmax(1) if target is None else target.repeat_interleave(c, 0)
            (grad,) = torch.autograd.grad(out.gather(1, t[:, None]).sum(), z)
        maps.append(grad.abs().reshape(bsz, c, -1))
    return torch.cat(maps, dim=1)


def _binarize_reference(a, k):
    # stable argsort of -a: among equal values the lower index ranks first
    order = torch.argsort(-a, dim=-1, stable=True)[..., :k]
    return torch.zeros_like(a).scatter_(-1, order, 1.0)


@pytest.fixture(scope="module")
def digits():
    model, x, y, _ = trained_digits_cnn()
    return model, x[:3], y[:3]


@pytest.mark.parametrize("use_argmax", [False, True])
def test_binary_map_matches_reference(digits, use_argmax):
    model, x, y = digits
    ssg = SparseSmoothGrad(model, sparsity=0.1)
    target = "noisy_argmax" if use_argmax else y
    attr = ssg.attribute(
        x,
        target=target,
        nt_samples=50,
        nt_samples_batch_size=16,
        stdevs=0.3,
        generator=torch.Generator().manual_seed(2),
    )
    samples = _reference_samples(model, x, None if use_argmax else y, 50, 16, 0.3, 2)
    expected = _binarize_reference(samples, 6).mean(1).reshape(x.shape)
    torch.testing.assert_close(attr, expected, rtol=0, atol=1e-6)
    # every sample contributes exactly floor(0.1 * 64) = 6 ones
    torch.testing.assert_close(attr.sum(dim=(1, 2, 3)), torch.full((3,), 6.0))


def test_relaxed_and_linear_variants_match_reference(digits):
    model, x, y = digits
    samples = _reference_samples(model, x, y, 20, 20, 0.3, 4)
    kwargs = dict(target=y, nt_samples=20, stdevs=0.3)

    relaxed = SparseSmoothGrad(model, sparsity=10, variant="relaxed", clip=3).attribute(
        x, generator=torch.Generator().manual_seed(4), **kwargs
    )
    top = torch.argsort(-samples, dim=-1, stable=True)
    ceiling = samples.gather(-1, top[..., 2:3])
    keep = torch.zeros_like(samples).scatter_(-1, top[..., :10], 1.0)
    expected = (samples.minimum(ceiling) / ceiling * keep).mean(1).reshape(x.shape)
    torch.testing.assert_close(relaxed, expected, rtol=0, atol=1e-6)

    linear = SparseSmoothGrad(model, sparsity=4, variant="linear").attribute(
        x, generator=torch.Generator().manual_seed(4), **kwargs
    )
    scores = torch.zeros_like(samples).scatter_(
        -1, top[..., :4], torch.tensor([1.0, 0.75, 0.5, 0.25]).expand(3, 20, 4)
    )
    torch.testing.assert_close(linear, scores.mean(1).reshape(x.shape), rtol=0, atol=1e-6)


def _reference_certified_count(counts, n, alpha, sigma, k, radius):
    """Clopper-Pearson band + sorted pigeonhole rule, written with scipy only."""
    d = counts.shape[-1]
    tail = alpha / (2 * d)
    lower = np.where(counts > 0, stats.beta.ppf(tail, counts, n - counts + 1), 0.0)
    upper = np.where(counts < n, stats.beta.isf(tail, counts + 1, n - counts), 1.0)
    lower_sorted = np.sort(lower)[::-1]
    upper_sorted = np.sort(upper)[::-1]
    m = 0
    for i in range(1, k + 1):
        lo = stats.norm.cdf(stats.norm.ppf(lower_sorted[i - 1]) - radius / sigma)
        hi = stats.norm.cdf(stats.norm.ppf(upper_sorted[2 * k - i]) + radius / sigma)
        if lo > hi:
            m = i
    return m


def test_certificate_matches_scipy_reference(digits):
    model, x, y = digits
    ssg = SparseSmoothGrad(model, sparsity=0.15)
    n, sigma, alpha = 2000, 0.3, 0.05
    attr, cert = ssg.attribute(
        x,
        target=y,
        nt_samples=n,
        nt_samples_batch_size=500,
        stdevs=sigma,
        return_certificate=True,
        alpha=alpha,
        generator=torch.Generator().manual_seed(0),
    )
    assert cert.bound == "clopper_pearson" and cert.n == n and cert.alpha == alpha
    flat = attr.reshape(3, -1).double()
    assert (cert.lower <= flat).all() and (flat <= cert.upper).all()
    counts = (flat * n).round().numpy()
    for k in (5, 13, 0.25):
        kk = k if isinstance(k, int) else int(k * 64)
        for radius in (0.0, 0.02, 0.05, 0.1):
            got = cert.certified_count(k, radius)
            expected = [
                _reference_certified_count(counts[b], n, alpha, sigma, kk, radius) for b in range(3)
            ]
            assert got.tolist() == expected, (k, radius)
    # the overlap at the certified radius is at least the requested one, and some is certified
    r = cert.certified_radius(k=13, overlap=0.5)
    assert (r > 0).all()
    assert (cert.topk_overlap(k=13, radius=r) >= 0.5).all()


def test_betting_is_the_default_band_of_the_linear_map_only(digits):
    # the transform names the band (default_bound); the certificate is the explicit
    # bound="betting" one bit for bit
    from captum_certified.transforms import ClipNormalize, Compose, LinearRank, ScoringRescale

    model, x, y = digits
    linear = SparseSmoothGrad(model, variant="linear")
    kw = dict(target=y, nt_samples=64, return_certificate=True)
    _, default = linear.attribute(x, generator=torch.Generator().manual_seed(4), **kw)
    _, explicit = linear.attribute(
        x, bound="betting", generator=torch.Generator().manual_seed(4), **kw
    )
    _, kl = linear.attribute(x, bound="kl", generator=torch.Generator().manual_seed(4), **kw)
    assert default.bound == "betting" and kl.bound == "kl"
    assert torch.equal(default.lower, explicit.lower) and torch.equal(default.upper, explicit.upper)
    assert not torch.equal(default.lower, kl.lower)
    assert LinearRank(3).default_bound == "betting"
    assert ScoringRescale("linear", sparsity=3).default_bound == "betting"
    assert Compose(ClipNormalize(sparsity=3), LinearRank(3)).default_bound == "betting"
    for other in (TopKBinarize(3), ClipNormalize(sparsity=3), ScoringRescale("geometric", 3)):
        assert other.default_bound is None
    assert Compose(LinearRank(3), ClipNormalize(sparsity=3)).default_bound is None


def test_kl_default_for_relaxed_and_paper_bound_for_binary(digits):
    model, x, y = digits
    relaxed = SparseSmoothGrad(model, variant="relaxed", clip=0.05)
    _, cert = relaxed.attribute(
        x,
        target=y,
        nt_samples=64,
        return_certificate=True,
        generator=torch.Generator().manual_seed(2),
    )
    assert cert.bound == "kl"
    _, paper = relaxed.attribute(
        x,
        target=y,
        nt_samples=64,
        return_certificate=True,
        bound="hoeffding",
        generator=torch.Generator().manual_seed(2),
    )
    # same samples: the KL band is inside Hoeffding's, so it never certifies less
    assert paper.bound == "hoeffding"
    assert (cert.lower >= paper.lower).all() and (cert.upper <= paper.upper).all()
    for radius in (0.0, 0.05):
        assert (cert.certified_count(0.2, radius) >= paper.certified_count(0.2, radius)).all()
    _, cp = SparseSmoothGrad(model).attribute(
        x,
        target=y,
        nt_samples=256,
        return_certificate=True,
        generator=torch.Generator().manual_seed(1),
    )
    _, hf = SparseSmoothGrad(model).attribute(
        x,
        target=y,
        nt_samples=256,
        return_certificate=True,
        bound="hoeffding",
        generator=torch.Generator().manual_seed(1),
    )
    # same samples; the exact band is never looser, so it never certifies less
    assert (cp.lower >= hf.lower - 1e-12).all() and (cp.upper <= hf.upper + 1e-12).all()
    for radius in (0.0, 0.05):
        assert (cp.certified_count(0.2, radius) >= hf.certified_count(0.2, radius)).all()


def test_bad_preset_arguments(digits):
    model, x, y = digits
    with pytest.raises(ValueError, match="variant"):
        SparseSmoothGrad(model, variant="soft")
    with pytest.raises(ValueError, match="sparsity"):
        SparseSmoothGrad(model, sparsity=0.0)
    with pytest.raises(ValueError, match="sparsity"):
        SparseSmoothGrad(model, sparsity=65).attribute(x, target=y, nt_samples=2)
    with pytest.raises(ValueError, match="clip"):
        SparseSmoothGrad(model, sparsity=2, variant="relaxed", clip=5).attribute(
            x, target=y, nt_samples=2
        )


def test_subclass_with_its_own_attribute_signature_keeps_preset_defaults(digits):
    # a user subclass overriding attribute(self, inputs, **kw) raised KeyError 'stdevs'
    model, x, y = digits

    class Mine(SparseSmoothGrad):
        def attribute(self, inputs, **kwargs):
            return super().attribute(inputs, **kwargs)

    def run(cls, **kwargs):
        return cls(model, sparsity=0.1).attribute(
            x, target=y, nt_samples=16, generator=torch.Generator().manual_seed(3), **kwargs
        )

    # the preset's default stdevs (0.25), not CertifiedWrapper's 1.0
    assert torch.equal(run(Mine), run(SparseSmoothGrad, stdevs=0.25))
    assert not torch.equal(run(Mine), run(SparseSmoothGrad, stdevs=1.0))
    out = Mine(model, sparsity=0.1).attribute_settings(
        x, [TopKBinarize(0.1)], target=y, nt_samples=16, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(out[0][0], run(SparseSmoothGrad, stdevs=0.25))
