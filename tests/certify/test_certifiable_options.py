"""Options whose returned or computed map is not the certified one are refused (issue 22).

Each test would fail on 8d0fcd9, where these calls returned a certificate.
"""

from pathlib import Path

import pytest
import torch
from captum.attr import NoiseTunnel as CaptumNoiseTunnel
from captum.attr import Saliency
from scipy import stats
from torch import nn

from captum_certified.attr import (
    CertifiedWrapper,
    NoiseTunnel,
    RenyiRobustSmooth,
    SparseSmoothGrad,
    UniformSmoothedAttribution,
)
from captum_certified.transforms import TopKBinarize

# -- nt_type ---------------------------------------------------------------------------------

# A closed-form model: the noise on x0 alone decides which feature has the smallest |gradient|.
# |grad| = (2, A(z), B(z)) with z = x0 + eps0: z < a -> (2, 3, 3) (feature 0 is the smallest),
# a <= z < b -> (2, 1, 3) (feature 1), z >= b -> (2, 3, 1) (feature 2). TopKBinarize(2) drops the
# smallest, so s = 1 - e_argmin and, with m = P(argmin = j),
#   E[s] = 1 - m          (certified; top-1 feature 0 when m_0 is the smallest)
#   Var[s] = m (1 - m)    (vargrad; top-1 the feature with m_j closest to 1/2)
SIGMA, X0, B = 1.0, 0.0, 0.0
A = float(stats.norm.ppf(0.05))  # m = (0.05, 0.45, 0.5) at x0 = 0


def _forward(x):
    z0 = x[:, 0]
    with torch.no_grad():
        a = torch.where((z0 >= A) & (z0 < B), 1.0, 3.0)
        b = torch.where(z0 >= B, 1.0, 3.0)
    return (2 * z0 + a * x[:, 1] + b * x[:, 2]).unsqueeze(1)


def _argmin_probabilities():
    m0 = stats.norm.cdf((A - X0) / SIGMA)
    m1 = stats.norm.cdf((B - X0) / SIGMA) - m0
    return torch.tensor([m0, m1, 1 - m0 - m1], dtype=torch.float64)


X = torch.tensor([[X0, 0.3, -0.2]])
CALL = dict(target=0, nt_samples=2000, nt_samples_batch_size=500, stdevs=SIGMA)


def test_vargrad_returns_another_top1_than_the_certified_one_and_is_refused():
    m = _argmin_probabilities()
    expected, variance = 1 - m, m * (1 - m)
    assert int(expected.argmax()) == 0 and int(variance.argmax()) == 2  # the two maps disagree
    cw = CertifiedWrapper(Saliency(_forward), transform=TopKBinarize(2))
    gen = torch.Generator().manual_seed(0)
    # the certified map: its top-1 (feature 0) is certified at radius 0 ...
    mean, cert = cw.attribute(X, generator=gen, return_certificate=True, **CALL)
    assert cert.topk_overlap(1, 0.0).item() == 1.0
    assert int(mean.argmax()) == 0
    torch.testing.assert_close(mean[0].double(), expected, atol=0.05, rtol=0)
    # ... while vargrad returns Var[s], whose top-1 is feature 2 (the estimate agrees: the
    # Monte-Carlo error of a variance of n = 2000 binary samples is about 0.005)
    var = cw.attribute(X, nt_type="vargrad", generator=gen, **CALL)
    torch.testing.assert_close(var[0].double(), variance, atol=0.03, rtol=0)
    assert int(var.argmax()) == 2
    for nt_type in ("vargrad", "smoothgrad_sq"):
        with pytest.raises(ValueError, match=f"`nt_type`='{nt_type}' cannot be certified"):
            cw.attribute(X, nt_type=nt_type, return_certificate=True, **CALL)


@pytest.mark.parametrize("nt_type", ["vargrad", "smoothgrad_sq"])
def test_every_route_to_nt_type_is_refused_with_a_certificate(nt_type):
    t = TopKBinarize(2)
    wrappers = [
        CertifiedWrapper(Saliency(_forward), transform=t),
        NoiseTunnel(Saliency(_forward), transform=t),
        CertifiedWrapper(CaptumNoiseTunnel(Saliency(_forward)), transform=t),  # unwrapped
        NoiseTunnel(CaptumNoiseTunnel(Saliency(_forward)), transform=t),
    ]
    for w in wrappers:
        with pytest.raises(ValueError, match="`nt_type`"):
            w.attribute(X, nt_type=nt_type, return_certificate=True, **CALL)
        with pytest.raises(ValueError, match="`nt_type`"):  # positionally, as Captum's
            w.attribute(X, nt_type, 8, return_certificate=True, stdevs=0.5, target=0)
        assert w.attribute(X, nt_type=nt_type, **CALL).shape == X.shape  # plain: fine
    presets = [
        SparseSmoothGrad(_forward, sparsity=2),
        RenyiRobustSmooth(_forward, sparsity=2),
        UniformSmoothedAttribution(_forward),
    ]
    for preset in presets:  # a preset returns the mean only: nt_type is not its argument
        for certify in (True, False):
            with pytest.raises(ValueError, match="`nt_type`"):
                preset.attribute(
                    X, target=0, nt_samples=4, nt_type=nt_type, return_certificate=certify
                )


def test_smoothgrad_keeps_its_certificate_through_captums_noise_tunnel():
    w = CertifiedWrapper(CaptumNoiseTunnel(Saliency(_forward)), transform=TopKBinarize(2))
    out, cert = w.attribute(X, nt_type="smoothgrad", return_certificate=True, **CALL)
    assert cert.n == 2000 and out.shape == X.shape


# -- 16-bit inputs ---------------------------------------------------------------------------


def _lsb(z):
    """The last mantissa bit of ``z`` rounded to bfloat16: a model that reads low bits."""
    return (z.to(torch.bfloat16).view(torch.int16) & 1).to(z.dtype)


def _low_bit_model(x):
    # |grad| = (1 + 2 lsb(x0), 2): feature 0 is the top-1 exactly when the low bit is set
    z0 = x[:, 0]
    return (z0 * (1 + 2 * _lsb(z0.detach())) + 2 * x[:, 1]).unsqueeze(1)


def test_16_bit_noise_is_not_the_law_the_theorem_is_about():
    # Under Gaussian noise of sigma = 0.25 the low bit of x0 + eps is 1 with probability 1/2
    # up to 2^-16 (ties of the float32 -> bfloat16 rounding) plus the density's slope across
    # one bfloat16 step (2^-8 / 0.25 * 0.4 < 0.02 of a step, averaging out). In 16 bits the
    # noise is drawn and added on the input's grid: round-half-to-even makes the bit 0 far
    # more often, so the smoothed map is that of another noise law (total variation at least
    # the gap). n = 20000: standard error 0.0035, so the float32 tolerance 0.018 is 5 of them.
    cw = CertifiedWrapper(Saliency(_low_bit_model), transform=TopKBinarize(1))
    gap = {}
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        x = torch.tensor([[0.75, 0.0]], dtype=dtype)
        m = cw.attribute(
            x,
            target=0,
            nt_samples=20000,
            nt_samples_batch_size=20000,
            stdevs=0.25,
            generator=torch.Generator().manual_seed(0),
        )
        assert m.dtype == dtype  # plain smoothing works in any dtype
        gap[dtype] = abs(float(m[0, 0]) - 0.5)
    assert gap[torch.float32] < 0.018
    assert gap[torch.float16] > 0.05 and gap[torch.bfloat16] > 0.05


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_inputs_are_refused_with_a_certificate(dtype):
    x = torch.tensor([[0.75, 0.1]])
    ssg = SparseSmoothGrad(_low_bit_model, sparsity=1)
    kw = dict(target=0, nt_samples=8, stdevs=0.25, return_certificate=True)
    with pytest.raises(TypeError, match=rf"`inputs` has dtype {dtype}.*float32"):
        ssg.attribute(x.to(dtype), **kw)
    for preset in (
        RenyiRobustSmooth(_low_bit_model, sparsity=1),
        NoiseTunnel(Saliency(_low_bit_model), transform=TopKBinarize(1)),
    ):
        with pytest.raises(TypeError, match=str(dtype)):
            preset.attribute(x.to(dtype), **kw)
    with pytest.raises(TypeError, match=str(dtype)):
        UniformSmoothedAttribution(_low_bit_model).attribute(
            x.to(dtype), target=0, nt_samples=8, noise_scale=0.25, return_certificate=True
        )

    # one 16-bit tensor in a tuple is enough (its noise is added in 16 bits)
    def pair(a, b):
        return _low_bit_model(a + b)

    cw = CertifiedWrapper(Saliency(pair), transform=TopKBinarize(1))
    with pytest.raises(TypeError, match=rf"`inputs`\[1\] has dtype {dtype}"):
        cw.attribute((x, x.to(dtype)), **kw)
    # plain smoothing keeps working, and float32 inputs are certified
    assert ssg.attribute(x.to(dtype), target=0, nt_samples=8, stdevs=0.25).dtype == dtype
    assert ssg.attribute(x, **kw)[1].n == 8


def test_a_16_bit_model_on_float32_inputs_is_certified():
    # the noise is float32; the model's cast to 16 bits is part of the smoothed function
    model = nn.Linear(2, 3).to(torch.bfloat16)

    def forward(x):
        return model(x.to(torch.bfloat16)).float()

    x = torch.rand(2, 2)
    cw = CertifiedWrapper(Saliency(forward), transform=TopKBinarize(1))
    _, cert = cw.attribute(x, target=0, nt_samples=8, stdevs=0.25, return_certificate=True)
    assert cert.n == 8


# -- the differentiable paths ----------------------------------------------------------------


def test_graph_paths_refuse_a_certificate():
    cw = CertifiedWrapper(Saliency(_forward), transform=TopKBinarize(2))
    with pytest.raises(ValueError, match="create_graph"):
        cw.attribute(X, create_graph=True, return_certificate=True, **CALL)
    with pytest.raises(ValueError, match="create_graph"):
        cw.loss_gradient(X, lambda m: m.sum(), return_certificate=True, **CALL)


def test_the_grid_half_steps_quoted_in_the_guide():
    # docs/guide.rst, "Floating point": half a grid step on [0.5, 1), per coordinate
    quoted = {torch.float32: 3.0e-8, torch.float16: 2.4e-4, torch.bfloat16: 2.0e-3}
    for dtype, value in quoted.items():
        x = torch.tensor(0.75, dtype=dtype)
        half = float(torch.nextafter(x, torch.tensor(2.0, dtype=dtype)) - x) / 2
        assert half == pytest.approx(value, rel=0.03)
    assert 255 * 2.0e-3 == pytest.approx(0.5, rel=0.03)  # half a grey level
    guide = (Path(__file__).resolve().parents[2] / "docs" / "guide.rst").read_text()
    for text in ("``3.0e-8``", "``2.4e-4``", "``2.0e-3``"):
        assert text in guide


def test_the_drop_in_noise_tunnel_is_unwrapped_not_smoothed_twice():
    inner = Saliency(_forward)
    cw = CertifiedWrapper(NoiseTunnel(inner), transform=TopKBinarize(2))
    assert cw.attribution_method is inner
    nested = NoiseTunnel(NoiseTunnel(inner))
    assert nested.attribution_method is inner
    with pytest.raises(ValueError, match="`attribution_method`"):
        CertifiedWrapper(NoiseTunnel(inner, transform=TopKBinarize(1)))


def test_a_certified_preset_is_not_smoothed_again():
    inner = Saliency(_forward)
    for preset in (SparseSmoothGrad(_forward), CertifiedWrapper(inner)):
        with pytest.raises(ValueError, match="`attribution_method` is a .*already smooths"):
            CertifiedWrapper(preset)
    # a preset's own base method is what to wrap
    assert CertifiedWrapper(SparseSmoothGrad(_forward).attribution_method).attribution_method
