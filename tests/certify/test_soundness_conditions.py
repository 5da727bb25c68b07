"""Regression tests for the conditions a certificate needs (issue: five soundness holes).

Each test first computes, in closed form, a perturbation that beats the certificate the option
used to produce (so the hole is real, not hypothetical), then checks that the option is now
refused with an error naming the argument. Every claim compared against the truth is the Phi
rule evaluated at the *exact* probabilities: a confidence band only widens the interval, so any
certificate built from samples claims at most this much.
"""

import math

import pytest
import torch
from captum.attr import (
    Attribution,
    FeaturePermutation,
    KernelShap,
    LayerFeaturePermutation,
    Saliency,
    ShapleyValues,
    ShapleyValueSampling,
)
from scipy import special, stats
from torch import nn

from captum_certified.attr import (
    CertifiedWrapper,
    RenyiRobustSmooth,
    SparseSmoothGrad,
    UniformSmoothedAttribution,
    shares_randomness_across_rows,
    uses_batch_statistics,
)
from captum_certified.certify import CosineCertifier, GaussianTopKCertifier, RDPTopKCertifier
from captum_certified.certify._core.cosine_bounds import ball_nonoverlap
from captum_certified.noise import (
    GeneralizedGaussianNoise,
    LaplaceNoise,
    UniformBallNoise,
    UniformCubeNoise,
)
from captum_certified.transforms import TopKBinarize, UnitL2Normalize


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _phi_claim(p_top: float, sigma: float) -> float:
    """Levine et al.'s top-1 radius (d = 2 binary map) at the exact probabilities."""
    return sigma * (stats.norm.ppf(p_top) - stats.norm.ppf(1 - p_top)) / 2


# -- 1. a noise scale relative to the input's range --------------------------------------


class _Threshold(Attribution):
    """Map of a 3-feature input: (0.5, 1[|z_1| > tau]); top-1 flips once P(|z_1| > tau) > 1/2."""

    def __init__(self, tau: float) -> None:
        super().__init__(lambda z: z.sum(1, keepdim=True))
        self.tau = tau

    def attribute(self, inputs, **kwargs):
        big = (inputs[:, 1].abs() > self.tau).to(inputs.dtype)
        return torch.stack([torch.full_like(big, 0.5), big], dim=1)


def test_relative_stdevs_with_certificate_is_beaten_in_closed_form_and_refused():
    s, tau = 2.0, 4.0
    x = torch.tensor([[1.0, 0.0, 0.0]])  # range 1, so sigma = s
    sigma = s * 1.0
    p_flip = 2 * stats.norm.cdf(-tau / sigma)  # P(|sigma eps| > tau)
    claim = _phi_claim(1 - p_flip, sigma)
    # raise the maximum by t (an l2 perturbation of size t): sigma grows to s * (1 + t)
    t = 2.5
    p_flip_after = 2 * stats.norm.cdf(-tau / (s * (1 + t)))
    assert t < claim  # 2.5 < 3.38: the certificate would cover this perturbation ...
    assert p_flip_after > 0.5  # ... yet the smoothed top-1 has moved to the other feature
    # the engine really smooths with the input-dependent scale: Monte-Carlo agrees with it
    cw = CertifiedWrapper(_Threshold(tau), transform=TopKBinarize(1))
    n = 20000
    moved = x.clone()
    moved[0, 0] += t
    mean = cw.attribute(moved, nt_samples=n, stdevs=s, relative_stdevs=True, generator=_gen())
    se = math.sqrt(p_flip_after * (1 - p_flip_after) / n)
    assert abs(mean[0, 1].item() - p_flip_after) < 5 * se
    with pytest.raises(ValueError, match="relative_stdevs"):
        cw.attribute(x, nt_samples=10, stdevs=s, relative_stdevs=True, return_certificate=True)


def test_relative_scale_refused_by_every_preset():
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 3)).eval()
    x = torch.rand(2, 8, generator=_gen())
    kw = dict(target=0, nt_samples=4, return_certificate=True)
    with pytest.raises(ValueError, match="relative_stdevs"):
        SparseSmoothGrad(model, sparsity=2).attribute(x, stdevs=0.2, relative_stdevs=True, **kw)
    with pytest.raises(ValueError, match="relative_stdevs"):
        RenyiRobustSmooth(model, sparsity=2).attribute(x, stdevs=0.2, relative_stdevs=True, **kw)
    for noise in (UniformCubeNoise(), UniformBallNoise()):
        with pytest.raises(ValueError, match="relative_noise_scale"):
            UniformSmoothedAttribution(model).attribute(
                x, noise_scale=0.2, noise=noise, relative_noise_scale=True, **kw
            )
    # without a certificate the relative convention still works (SmoothGrad's, zennit's)
    out = SparseSmoothGrad(model, sparsity=2).attribute(
        x, target=0, nt_samples=4, stdevs=0.2, relative_stdevs=True
    )
    assert out.shape == x.shape


# -- 2. a certifier used with a noise it was not proven for ------------------------------


class _Identity(Attribution):
    def __init__(self) -> None:
        super().__init__(lambda z: z.sum(1, keepdim=True))

    def attribute(self, inputs, **kwargs):
        return inputs


def test_gaussian_rule_on_cube_noise_is_beaten_in_closed_form_and_refused():
    # identity map ranked by |z|, top-1 of (x0 + u0, x1 + u1) with u ~ U[-r, r]^2 and
    # x = (2, 0.2): z0 >= 1 > |z1| unless z1 > z0, so p_1 = P(u1 - u0 > g), u1 - u0
    # triangular on [-2r, 2r]. The smoothed top-1 flips once x0 - x1 changes sign (both stay
    # positive on the way to (1.1, 1.1)), i.e. at the l2 distance g / sqrt(2)
    r, g = 1.0, 1.8
    p_other = (2 * r - g) ** 2 / (8 * r**2)
    claim = _phi_claim(1 - p_other, r)
    truth = g / math.sqrt(2)
    assert claim > 2.0 * truth  # 2.58 claimed against a true flip at 1.27
    x = torch.tensor([[0.2 + g, 0.2]])
    cw = CertifiedWrapper(
        _Identity(),
        noise=UniformCubeNoise(),
        transform=TopKBinarize(1),
        certifier=GaussianTopKCertifier(),
    )
    mean = cw.attribute(x, nt_samples=20000, noise_scale=r, generator=_gen())
    assert abs(mean[0, 1].item() - p_other) < 5 * math.sqrt(p_other * (1 - p_other) / 20000)
    for noise in (
        UniformCubeNoise(),
        LaplaceNoise(),
        UniformBallNoise(),
        GeneralizedGaussianNoise(1.5),
    ):
        with pytest.raises(ValueError, match="noise"):
            cw.attribute(x, nt_samples=8, noise_scale=r, noise=noise, return_certificate=True)


def test_noise_subclass_is_not_accepted_implicitly():
    class _NotReallyLaplace(LaplaceNoise):
        def sample_unit(self, shape, *, generator, dtype, device):
            return torch.rand(tuple(shape), generator=generator, dtype=dtype, device=device)

    cw = CertifiedWrapper(_Identity(), transform=TopKBinarize(1), certifier=RDPTopKCertifier())
    with pytest.raises(ValueError, match="noise"):
        cw.attribute(
            torch.zeros(1, 4), nt_samples=4, noise=_NotReallyLaplace(), return_certificate=True
        )


# -- 3. a wrapped method whose rows share randomness -------------------------------------


def _product(z):
    return (z[:, 0] * z[:, 1]).unsqueeze(1)


def test_shapley_sampling_shares_permutations_across_rows_and_is_refused():
    # f = z0 z1, baseline 0, one permutation per call: the top-1 of the sampled Shapley map
    # is feature 1 when the permutation is (0, 1) and feature 0 otherwise, so the expected
    # binary map is exactly (0.5, 0.5) (z0 z1 > 0 almost surely at x = (1, 1), sigma = 0.1).
    x = torch.ones(1, 2)
    cw = CertifiedWrapper(ShapleyValueSampling(_product), transform=TopKBinarize(1))
    torch.manual_seed(0)
    means = [
        cw.attribute(x, nt_samples=200, stdevs=0.1, target=0, n_samples=1, generator=_gen(i))
        for i in range(4)
    ]
    # one chunk shares one permutation: every sample agrees, so the mean is 0 or 1, never
    # near the truth 0.5 that a band from i.i.d. samples would cover
    for m in means:
        assert m[0, 0].item() in (0.0, 1.0)
    for method in (
        ShapleyValueSampling(_product),
        FeaturePermutation(_product),
        LayerFeaturePermutation(nn.Sequential(nn.Identity()), nn.Identity()),
    ):
        assert shares_randomness_across_rows(method)
        cw = CertifiedWrapper(method, transform=TopKBinarize(1))
        with pytest.raises(ValueError, match=type(method).__name__):
            cw.attribute(x, nt_samples=4, stdevs=0.1, target=0, return_certificate=True)


def test_row_wise_random_methods_are_certified():
    # exact Shapley values are deterministic; KernelShap draws its perturbations per row
    x = torch.tensor([[1.0, 2.0]])
    for method in (ShapleyValues(_product), KernelShap(_product)):
        assert not shares_randomness_across_rows(method)
        cw = CertifiedWrapper(method, transform=TopKBinarize(1))
        kw = {"n_samples": 20} if isinstance(method, KernelShap) else {}
        _, cert = cw.attribute(
            x, nt_samples=8, stdevs=0.1, target=0, return_certificate=True, generator=_gen(), **kw
        )
        assert cert.n == 8


# -- 4. dimension overrides --------------------------------------------------------------


def _ball_nonoverlap_scipy(t: float, r: float, d: int) -> float:
    # vol(B(0, r) \ B(delta, r)) / vol(B) = 1 - I_{1 - (t / 2r)^2}((d + 1) / 2, 1 / 2)
    return 1.0 - special.betainc((d + 1) / 2, 0.5, 1 - (t / (2 * r)) ** 2)


def test_input_dim_override_understates_the_worst_case_and_is_refused():
    r, t = 1.0, 0.1
    true_tv = _ball_nonoverlap_scipy(t, r, 64)  # the worst change of a [0, 1] smoothed value
    claimed_tv = _ball_nonoverlap_scipy(t, r, 8)
    assert claimed_tv < 0.4 * true_tv  # 0.116 claimed against 0.312 attained
    assert float(ball_nonoverlap(t, r, 64)) == pytest.approx(true_tv, rel=1e-9)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    x = torch.rand(1, 64, generator=_gen())
    cw = CertifiedWrapper(
        Saliency(model),
        noise=UniformBallNoise(),
        transform=UnitL2Normalize(),
        certifier=CosineCertifier(input_dim=8),
    )
    with pytest.raises(ValueError, match="input_dim"):
        cw.attribute(x, target=0, nt_samples=4, noise_scale=r, return_certificate=True)
    # restating the true count is fine
    cw.certifier = CosineCertifier(input_dim=64)
    _, cert = cw.attribute(x, target=0, nt_samples=4, noise_scale=r, return_certificate=True)
    assert cert.input_dim == 64
    with pytest.raises(AttributeError):
        cert.input_dim = 8


def test_num_input_features_override_is_refused_and_immutable():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    x = torch.rand(1, 64, generator=_gen())
    cw = CertifiedWrapper(
        Saliency(model),
        noise=LaplaceNoise(),
        transform=TopKBinarize(4),
        certifier=RDPTopKCertifier(num_input_features=8),
    )
    with pytest.raises(ValueError, match="num_input_features"):
        cw.attribute(x, target=0, nt_samples=4, noise_scale=0.5, return_certificate=True)
    cw.certifier = RDPTopKCertifier()
    _, cert = cw.attribute(x, target=0, nt_samples=4, noise_scale=0.5, return_certificate=True)
    assert cert.num_input_features == 64
    # the l_inf radius converts through N: a smaller N would certify a larger radius
    with pytest.raises(ValueError, match="cannot be changed"):
        cert.num_input_features = 8


# -- 5. batch-dependent layers in train mode ---------------------------------------------


class _OutputMap(Attribution):
    """The model's output as the map (one value per feature)."""

    def attribute(self, inputs, **kwargs):
        return self.forward_func(inputs)


def test_batchnorm_in_train_mode_couples_rows_and_is_refused():
    bn = nn.BatchNorm1d(2, affine=False)  # train mode
    cw = CertifiedWrapper(_OutputMap(bn), transform=TopKBinarize(1))
    x0 = torch.tensor([1.0, 0.0])
    # example 0 is the same in both batches; only the *other* example differs. The map ranks
    # |y|. Next to (-1, 0), example 0's normalized feature 0 is about +-1 and feature 1 is
    # N(0, 1): P(top-1 = feature 0) = P(|N| < 1) = 0.683. Next to (1, 100), feature 0 is
    # N(0, 1) and feature 1 about -1: P = P(|N| > 1) = 0.317. The top-1 flips while x0 is fixed.
    kw = dict(nt_samples=4000, stdevs=0.1, generator=_gen())
    with torch.no_grad():
        left = cw.attribute(torch.stack([x0, torch.tensor([-1.0, 0.0])]), **kw)
        right = cw.attribute(torch.stack([x0, torch.tensor([1.0, 100.0])]), **kw)
    se = math.sqrt(0.683 * 0.317 / 4000)
    assert left[0, 0].item() == pytest.approx(2 * stats.norm.cdf(1) - 1, abs=5 * se)
    assert right[0, 0].item() == pytest.approx(2 * stats.norm.cdf(-1), abs=5 * se)
    running = bn.running_mean.clone()
    batch = torch.stack([x0, x0])
    with pytest.raises(ValueError, match=r"model\.eval\(\)"):
        cw.attribute(batch, nt_samples=4, stdevs=0.1, return_certificate=True)
    assert bn.training and torch.equal(bn.running_mean, running)  # nothing touched
    bn.eval()
    _, cert = cw.attribute(batch, nt_samples=4, stdevs=0.1, return_certificate=True)
    assert cert.n == 4
    # eval mode without running statistics still normalizes with the batch's
    no_stats = nn.BatchNorm1d(2, affine=False, track_running_stats=False).eval()
    assert uses_batch_statistics(no_stats)
    with pytest.raises(ValueError, match="track_running_stats"):
        CertifiedWrapper(_OutputMap(no_stats), transform=TopKBinarize(1)).attribute(
            batch, nt_samples=4, stdevs=0.1, return_certificate=True
        )


def test_batchnorm_hidden_in_a_closure_is_refused_before_it_runs():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))  # train mode

    def forward(z):  # the wrapper cannot see the model through this function
        return model(z)

    running = model[1].running_mean.clone()
    cw = CertifiedWrapper(Saliency(forward), transform=TopKBinarize(1))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        cw.attribute(torch.rand(2, 2), target=0, nt_samples=4, return_certificate=True)
    assert torch.equal(model[1].running_mean, running)
    # the guard is gone afterwards: plain training still works
    model(torch.rand(4, 2))
    assert not torch.equal(model[1].running_mean, running)


def test_dropout_in_train_mode_stays_allowed_and_mode_is_kept():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))  # train mode
    cw = CertifiedWrapper(Saliency(model), transform=TopKBinarize(1))
    _, cert = cw.attribute(
        torch.rand(2, 4), target=0, nt_samples=8, return_certificate=True, generator=_gen()
    )
    assert cert.n == 8 and model.training
    # plain smoothing keeps NoiseTunnel's behaviour with batch statistics (no certificate)
    bn_model = nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(2))
    out = CertifiedWrapper(Saliency(bn_model)).attribute(torch.rand(2, 4), target=0, nt_samples=4)
    assert out.shape == (2, 4) and bn_model.training


# -- a transform that breaks its declared kind -------------------------------------------


def test_transform_declaring_binary_must_produce_binary_maps():
    # Clopper-Pearson is exact for sums of 0/1 draws only; fractional values would get it too
    class _HalfBinary(TopKBinarize):
        def __call__(self, maps):
            return super().__call__(maps) * 0.5

    cw = CertifiedWrapper(_Identity(), transform=_HalfBinary(1))
    with pytest.raises(ValueError, match="kind='binary'"):
        cw.attribute(torch.rand(1, 4), nt_samples=4, stdevs=0.1, return_certificate=True)
