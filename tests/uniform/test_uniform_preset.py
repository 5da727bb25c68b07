"""UniformSmoothedAttribution: Uniform Gradient equivalence, certificates, transforms, hygiene."""

from __future__ import annotations

import math

import pytest
import torch
from captum.attr import IntegratedGradients, LayerGradientXActivation, Saliency
from torch import nn

from captum_certified.attr import CertifiedWrapper, UniformSmoothedAttribution
from captum_certified.certify import (
    CosineCertificate,
    CosineCertifier,
    CubeCosineCertificate,
    ball_difference_bound,
    cube_difference_bound,
    mcdiarmid_error,
)
from captum_certified.noise import GaussianNoise, UniformBallNoise, UniformCubeNoise, resolve_noise
from captum_certified.transforms import Identity, L2BoundedTransform, L2NormClip, UnitL2Normalize

BALL, CUBE = UniformBallNoise(), UniformCubeNoise()


def _model() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)
        ).eval()


def _x(batch: int = 3) -> torch.Tensor:
    return torch.rand(batch, 1, 4, 4, generator=torch.Generator().manual_seed(1))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _manual_ug(forward, x, y, radius, n, chunk, seed):
    """Uniform Gradient by its definition: (1/N) sum_t grad_x z_y(x + u_t), u = (2U - 1) r.

    Noise is drawn chunk by chunk exactly as documented by UniformCubeNoise: for a chunk of c
    samples, U = torch.rand((bsz * c, *x.shape[1:]), generator) with row i * c + j belonging
    to example i; ``radius`` broadcasts against the repeated batch.
    """
    g = _gen(seed)
    total = torch.zeros(x.shape, dtype=torch.float64)
    done = 0
    while done < n:
        c = min(chunk, n - done)
        u = (2 * torch.rand((x.shape[0] * c,) + tuple(x.shape[1:]), generator=g) - 1) * radius
        z = (x.repeat_interleave(c, 0) + u).requires_grad_()
        out = forward(z).gather(1, y.repeat_interleave(c).unsqueeze(1)).sum()
        (grad,) = torch.autograd.grad(out, z)
        total += grad.reshape((x.shape[0], c) + tuple(x.shape[1:])).sum(1, dtype=torch.float64)
        done += c
    return (total / n).float()


# ------------------------------------------------------------------------------------------------
# Equivalence with the paper's definition
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [50, 16])
def test_cube_identity_equals_uniform_gradient(chunk):
    model, x, y = _model(), _x(), torch.tensor([0, 2, 1])
    usa = UniformSmoothedAttribution(model)
    got = usa.attribute(
        x, target=y, nt_samples=50, nt_samples_batch_size=chunk, noise_scale=4 / 255, noise=CUBE,
        generator=_gen(5),
    )  # fmt: skip
    expected = _manual_ug(model, x, y, 4 / 255, 50, chunk, 5)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    # the default radius is the paper's 4/255 and the default noise the cube
    again = usa.attribute(
        x, target=y, nt_samples=50, nt_samples_batch_size=chunk, generator=_gen(5)
    )
    assert torch.equal(got, again)


def test_relative_radius_is_the_notebook_convention():
    # UG.ipynb: r = 0.2 * (max - min) per example
    model, x, y = _model(), _x(), torch.tensor([1, 1, 0])
    x[1] *= 3.0
    usa = UniformSmoothedAttribution(model)
    got = usa.attribute(
        x, target=y, nt_samples=20, noise_scale=0.2, relative_noise_scale=True, generator=_gen(2)
    )
    span = (x.flatten(1).max(1).values - x.flatten(1).min(1).values).reshape(-1, 1, 1, 1)
    r = (0.2 * span).repeat_interleave(20, 0)
    expected = _manual_ug(model, x, y, r, 20, 20, 2)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_softmax_option_differentiates_probabilities():
    model, x, y = _model(), _x(), torch.tensor([0, 1, 2])
    usa = UniformSmoothedAttribution(model, softmax=True)
    got = usa.attribute(x, target=y, nt_samples=30, noise_scale=0.1, generator=_gen(3))
    expected = _manual_ug(lambda z: torch.softmax(model(z), -1), x, y, 0.1, 30, 30, 3)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-8)
    logits = UniformSmoothedAttribution(model).attribute(
        x, target=y, nt_samples=30, noise_scale=0.1, generator=_gen(3)
    )
    assert not torch.allclose(got, logits)


def test_signed_gradients_by_default_and_other_methods_allowed():
    model, x = _model(), _x()
    usa = UniformSmoothedAttribution(model)
    attr = usa.attribute(x, target=0, nt_samples=8, noise_scale=0.05, generator=_gen())
    assert (attr < 0).any()  # abs=False: signed, unlike Captum's Saliency default
    ig = UniformSmoothedAttribution(model, IntegratedGradients(model))
    out = ig.attribute(x, target=0, nt_samples=4, noise_scale=0.05, n_steps=5, generator=_gen())
    assert out.shape == x.shape


# ------------------------------------------------------------------------------------------------
# Certificates through the preset
# ------------------------------------------------------------------------------------------------


def test_ball_certificate_fields_and_queries():
    model, x, y = _model(), _x(), torch.tensor([0, 1, 2])
    usa = UniformSmoothedAttribution(model)
    attr, cert = usa.attribute(
        x, target=y, nt_samples=512, nt_samples_batch_size=128, noise_scale=2.0, noise=BALL,
        return_certificate=True, alpha=0.01, generator=_gen(4),
    )  # fmt: skip
    assert isinstance(cert, CosineCertificate) and not isinstance(cert, CubeCosineCertificate)
    assert (cert.n, cert.alpha, cert.noise, cert.norm, cert.bound) == (
        512, 0.01, "l2_ball", "l2", "mcdiarmid"
    )  # fmt: skip
    assert cert.input_dim == 16 and cert.num_features == 16 and cert.norm_bound == 1.0
    assert torch.equal(cert.smoothing_radius, torch.full((3,), 2.0, dtype=torch.float64))
    # the returned map is the mean of unit-normalized gradients: its norm is ||hhat||
    torch.testing.assert_close(attr.flatten(1).double().norm(dim=1), cert.estimate_norm)
    assert torch.all(cert.estimate_norm <= 1.0)
    m = 1.0 + 1e-6
    torch.testing.assert_close(
        cert.norm_lower, (cert.estimate_norm - mcdiarmid_error(512, 0.01, m)).clamp(min=0)
    )
    for query in (0.01, torch.tensor([0.0, 0.05, 0.2])):
        cos = cert.cosine_lower_bound(query)
        assert cos.shape == (3,) and torch.all((cos >= 0) & (cos <= 1))
    t = cert.certified_radius(min_cosine=0.9)
    assert torch.all(t > 0) and torch.all(cert.cosine_lower_bound(t) >= 0.9)
    delta = ball_difference_bound(0.05, 2.0, 16, norm_bound=m)
    torch.testing.assert_close(cert.difference_bound(0.05), delta.expand(3))
    r_min = cert.min_smoothing_radius(radius=0.05, min_cosine=0.9)
    assert r_min.shape == (3,) and torch.all(r_min > 0)
    assert "CosineCertificate" in repr(cert)


def test_tuple_inputs_share_one_ball():
    model = _model()

    def two_inputs(a, b):
        return model(a + b.reshape(-1, 1, 4, 4))

    a, b = _x(2), torch.rand(2, 16, generator=_gen(9))
    usa = UniformSmoothedAttribution(two_inputs)
    (ga, gb), cert = usa.attribute(
        (a, b), target=0, nt_samples=64, noise_scale=1.0, noise=BALL, return_certificate=True,
        generator=_gen(),
    )  # fmt: skip
    assert ga.shape == a.shape and gb.shape == b.shape
    assert cert.input_dim == 32 and cert.num_features == 32
    # the normalization runs over both inputs together
    joint = torch.cat([ga.flatten(1), gb], 1).double().norm(dim=1)
    torch.testing.assert_close(joint, cert.estimate_norm)
    with pytest.raises(ValueError, match="noise_scale"):
        usa.attribute((a, b), target=0, nt_samples=4, noise_scale=(1.0, 2.0), noise=BALL)
    # equal per-input radii are one ball
    usa.attribute((a, b), target=0, nt_samples=4, noise_scale=(1.0, 1.0), noise=BALL)


def test_layer_attribution_uses_the_input_dimension():
    # a layer map has its own size; the volume term must use the noise's input dimension
    model = _model()
    usa = UniformSmoothedAttribution(model, LayerGradientXActivation(model, model[2]))
    _, cert = usa.attribute(
        _x(2), target=0, nt_samples=32, noise_scale=1.0, noise=BALL, return_certificate=True,
        generator=_gen(),
    )  # fmt: skip
    assert cert.input_dim == 16 and cert.num_features == 64


def test_norm_bound_clipping():
    model, x = _model(), _x()
    usa = UniformSmoothedAttribution(model, norm_bound=0.05)
    attr, cert = usa.attribute(
        x, target=0, nt_samples=64, noise_scale=1.0, noise=BALL, return_certificate=True,
        generator=_gen(),
    )  # fmt: skip
    assert cert.norm_bound == 0.05
    assert torch.all(cert.estimate_norm <= 0.05)
    # plain calls clip too (the configured map), so attr matches with and without certificate
    plain = usa.attribute(x, target=0, nt_samples=64, noise_scale=1.0, noise=BALL, generator=_gen())
    assert torch.equal(attr, plain)


def test_cube_certificate_is_vacuous_at_the_paper_radius():
    model, x = _model(), _x()
    usa = UniformSmoothedAttribution(model)
    _, cert = usa.attribute(
        x, target=0, nt_samples=256, noise_scale=4 / 255, noise=CUBE, return_certificate=True,
        generator=_gen(),
    )  # fmt: skip
    assert isinstance(cert, CubeCosineCertificate) and cert.norm == "linf"
    assert cert.noise == "cube" and cert.input_dim == 16
    # d = 16, r = 4/255, eps = 1/255: Delta = 2 (1 - (7/8)^16) = 1.77 > ||hbar||: nothing
    assert torch.equal(cert.cosine_lower_bound(1 / 255), torch.zeros(3, dtype=torch.float64))
    assert float(cube_difference_bound(1 / 255, 4 / 255, 16)) > 1.7
    # only tiny l_inf perturbations are certified: far below one grey level
    assert torch.all(cert.certified_radius(0.5) < 1e-3 / 255 * 255)  # < 1e-3
    # a radius of the order d * eps makes it non-trivial
    _, big = usa.attribute(
        x, target=0, nt_samples=256, noise_scale=16.0, noise=CUBE, return_certificate=True,
        generator=_gen(),
    )  # fmt: skip
    assert torch.all(big.cosine_lower_bound(0.05) > 0)


# ------------------------------------------------------------------------------------------------
# Certifier and transform checks
# ------------------------------------------------------------------------------------------------


class _LyingTransform(L2BoundedTransform):
    norm_bound = 0.5

    def __call__(self, attributions):
        return UnitL2Normalize()(attributions)


def test_certifier_requires_and_checks_a_norm_bound():
    model, x = _model(), _x()
    usa = UniformSmoothedAttribution(model)
    kw = dict(target=0, nt_samples=4, noise_scale=1.0, noise=BALL, return_certificate=True)
    with pytest.raises(ValueError, match="norm_bound"):
        usa.attribute(x, transform=Identity(), **kw)
    with pytest.raises(ValueError, match="norm_bound"):
        usa.attribute(x, transform=_LyingTransform(), **kw)
    cw = CertifiedWrapper(Saliency(model), noise=BALL, transform=UnitL2Normalize())
    with pytest.raises(ValueError, match="bound"):
        cw.attribute(x, target=0, nt_samples=4, return_certificate=True, bound="hoeffding")
    gauss = CertifiedWrapper(
        Saliency(model), transform=UnitL2Normalize(), certifier=CosineCertifier(input_dim=16)
    )
    with pytest.raises(ValueError, match="noise"):
        gauss.attribute(x, target=0, nt_samples=4, return_certificate=True)
    unbound = CertifiedWrapper(
        Saliency(model),
        noise=BALL,
        transform=UnitL2Normalize(),
        certifier=CosineCertifier(),
    )
    # the engine passes the number of perturbed input features to the certifier
    _, cert = unbound.attribute(x, target=0, nt_samples=4, return_certificate=True)
    assert cert.input_dim == x[0].numel()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_unit_normalize(dtype):
    a = (torch.randn(50, 300, generator=_gen(1)) * torch.logspace(-30, 30, 50)[:, None]).to(dtype)
    a[3] = 0
    h = UnitL2Normalize()(a)
    assert h.dtype == dtype
    norms = h.double().norm(dim=1)
    assert norms[3] == 0 and torch.equal(h[3], torch.zeros_like(h[3]))
    others = torch.cat([norms[:3], norms[4:]])
    assert torch.all(others <= 1.0)  # exactly, after rounding to dtype
    # shrunk by (1 - eps) before rounding, each entry then rounded by at most u = eps / 2
    eps = torch.finfo(dtype).eps
    assert torch.all(others >= 1 - 2 * eps)
    # same direction (up to the rounding of the dtype)
    hd, ad = h.double(), a.double()
    cos = (hd * ad).sum(1) / (hd.norm(dim=1) * ad.norm(dim=1))
    assert torch.all((cos[torch.arange(50) != 3] - 1).abs() < 10 * eps)


def test_norm_clip():
    a = torch.randn(40, 30, generator=_gen(2)) * torch.linspace(0.01, 3, 40)[:, None]
    h = L2NormClip(2.0)(a)
    norms_a, norms_h = a.double().norm(dim=1), h.double().norm(dim=1)
    inside = norms_a <= 2.0
    assert torch.equal(h[inside], a[inside])
    assert torch.all(norms_h <= 2.0)
    torch.testing.assert_close(norms_h[~inside], torch.full_like(norms_h[~inside], 2.0))
    assert torch.allclose(h[~inside] / norms_h[~inside, None], a[~inside] / norms_a[~inside, None])
    assert L2NormClip(2.0).norm_bound == 2.0 and UnitL2Normalize().norm_bound == 1.0
    with pytest.raises(ValueError, match="max_norm"):
        L2NormClip(0.0)
    with pytest.raises(TypeError, match="max_norm"):
        L2NormClip("1")


# ------------------------------------------------------------------------------------------------
# Input hygiene
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(noise_scale=0.0), ValueError, "noise_scale"),
        (dict(noise_scale=-1.0), ValueError, "noise_scale"),
        (dict(noise_scale=float("nan")), ValueError, "noise_scale"),
        (dict(noise_scale=float("inf")), ValueError, "noise_scale"),
        (dict(noise_scale="0.1"), TypeError, "noise_scale"),
        (dict(noise_scale=0.0, noise=BALL), ValueError, "noise_scale"),
        (dict(noise_scale=torch.rand(1, 1, 4, 4) + 0.1, noise=BALL), ValueError, "noise_scale"),
        (dict(noise=GaussianNoise()), TypeError, "noise"),
        (dict(noise="cube"), TypeError, "noise"),  # a noise object, not a name
        (dict(relative_noise_scale="yes"), TypeError, "relative_noise_scale"),
        (dict(radius=0.3), TypeError, "radius"),  # the name before `noise_scale`, never released
        (dict(return_certificate=True, noise=BALL, alpha=0.0), ValueError, "alpha"),
        (dict(return_certificate=True, noise=BALL, alpha=1.5), ValueError, "alpha"),
        (
            dict(return_certificate=True, noise=BALL, alpha=math.nan),
            ValueError,
            "alpha",
        ),
        (dict(nt_samples=0), ValueError, "nt_samples"),
        (dict(nt_samples_batch_size=0), ValueError, "nt_samples_batch_size"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, error, match):
    usa = UniformSmoothedAttribution(_model())
    call = dict(target=0, nt_samples=4)
    call.update(kwargs)
    with pytest.raises(error, match=match):
        usa.attribute(_x(), **call)


def test_bad_constructor_and_query_arguments():
    model = _model()
    with pytest.raises(ValueError, match="norm_bound"):
        UniformSmoothedAttribution(model, norm_bound=0.0)
    with pytest.raises(TypeError, match="norm_bound"):
        UniformSmoothedAttribution(model, norm_bound="1")
    with pytest.raises(ValueError, match="softmax"):
        UniformSmoothedAttribution(model, Saliency(model), softmax=True)
    with pytest.raises(ValueError, match="relative `noise_scale`"):
        UniformSmoothedAttribution(model).attribute(
            torch.ones(1, 1, 4, 4),
            target=0,
            nt_samples=2,
            noise=BALL,
            relative_noise_scale=True,
        )
    _, cert = UniformSmoothedAttribution(model).attribute(
        _x(),
        target=0,
        nt_samples=16,
        noise_scale=1.0,
        noise=BALL,
        return_certificate=True,
    )
    for bad in (-0.1, 1.0, 1.5, math.nan):
        with pytest.raises(ValueError, match="min_cosine"):
            cert.certified_radius(min_cosine=bad)
        with pytest.raises(ValueError, match="min_cosine"):
            cert.min_smoothing_radius(radius=0.1, min_cosine=bad)
    with pytest.raises(TypeError, match="min_cosine"):
        cert.certified_radius(min_cosine="0.5")
    for bad in (-0.1, math.nan, torch.tensor([0.1, -1.0, 0.1])):
        with pytest.raises(ValueError, match="radius"):
            cert.cosine_lower_bound(radius=bad)
        with pytest.raises(ValueError, match="radius"):
            cert.min_smoothing_radius(radius=bad, min_cosine=0.5)
    with pytest.raises(ValueError, match="radius"):
        cert.cosine_lower_bound(radius=torch.ones(2))
    with pytest.raises(TypeError, match="radius"):
        cert.cosine_lower_bound(radius="0.1")
    with pytest.raises(ValueError, match="eps"):
        cube_difference_bound(-1.0, 1.0, 4)
    with pytest.raises(ValueError, match="r"):
        ball_difference_bound(0.1, 0.0, 4)
    with pytest.raises(ValueError, match="d"):
        ball_difference_bound(0.1, 1.0, 0)
    with pytest.raises(TypeError, match="d"):
        ball_difference_bound(0.1, 1.0, 2.5)
    with pytest.raises(ValueError, match="n"):
        mcdiarmid_error(0, 0.05)
    with pytest.raises(ValueError, match="alpha"):
        mcdiarmid_error(10, 1.0)


@pytest.mark.parametrize("noise", ["cube", "l2_ball"])
@pytest.mark.parametrize("train_mode", [True, False])
def test_no_side_effects(noise, train_mode):
    model = _model().train(train_mode)
    for p in model[0].parameters():
        p.requires_grad_(False)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    x = _x()
    x_req = x.clone().requires_grad_()
    x_copy = x.clone()
    rng_before = torch.get_rng_state()
    usa = UniformSmoothedAttribution(model)
    for inputs in (x, x_req):
        usa.attribute(
            inputs, target=0, nt_samples=8, nt_samples_batch_size=3, noise_scale=0.5,
            noise=resolve_noise(noise), return_certificate=True, generator=_gen(),
        )  # fmt: skip
    assert model.training is train_mode
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
    assert not x.requires_grad and x_req.requires_grad and x_req.grad is None
    assert torch.equal(x, x_copy)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("noise", ["cube", "l2_ball"])
def test_seeded_determinism_is_bitwise(noise):
    usa = UniformSmoothedAttribution(_model())

    def run(seed):
        return usa.attribute(
            _x(), target=1, nt_samples=40, nt_samples_batch_size=7, noise_scale=0.7,
            noise=resolve_noise(noise), return_certificate=True, generator=_gen(seed),
        )  # fmt: skip

    (a1, c1), (a2, c2), (a3, _) = run(11), run(11), run(12)
    assert torch.equal(a1, a2) and torch.equal(c1.estimate_norm, c2.estimate_norm)
    assert torch.equal(c1.certified_radius(0.5), c2.certified_radius(0.5))
    assert not torch.equal(a1, a3)


def test_stdevs_is_refused_with_a_pointer_to_noise_scale():
    usa = UniformSmoothedAttribution(_model())
    with pytest.raises(TypeError, match="takes `noise_scale`"):
        usa.attribute(_x(), target=0, nt_samples=2, stdevs=0.1)
