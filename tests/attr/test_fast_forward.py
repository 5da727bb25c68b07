"""FastForward: mixed precision inside the model keeps the float32 certificate (issue 25).

The engine adds float32 noise to the float32 input; the wrapper rounds ``z = x + eps`` to
bfloat16 only inside the model, so the smoothed function is ``s(round(z))`` and the certificate
holds for it exactly (rounding after the noise is post-processing). The tests use a model that
reads its input through a bfloat16 matmul and decides the top-1 feature by a threshold on the
*rounded* value: its exact flip distance is known in closed form, including the rounding.
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import Saliency
from scipy import stats
from torch import nn

from captum_certified.attr import CertifiedWrapper, FastForward, SparseSmoothGrad
from captum_certified.certify import FeatureCertifier
from captum_certified.transforms import TopKBinarize

T = 0.75  # a bfloat16 grid point; the bfloat16 spacing on [0.5, 1) is 2^-8
H = 2.0**-9  # half a bfloat16 step: round(z) >= T exactly when z >= T - H (tie to even T)
SIGMA = 0.05


class ThresholdOnRounded(nn.Module):
    """|grad| = (1 + 2 g, 2) with g = [round(x0) >= T]: feature 0 is the top-1 iff g.

    ``round`` is whatever precision the matmul runs in: float32 when called plainly,
    bfloat16 under ``torch.autocast`` (the identity matmul is where autocast rounds)."""

    def __init__(self) -> None:
        super().__init__()
        self.eye = nn.Parameter(torch.eye(2), requires_grad=False)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        z = (x.detach() @ self.eye)[:, 0]  # bfloat16 under autocast
        gate = (z >= T).to(x.dtype)
        return (x[:, 0] * (1 + 2 * gate) + 2 * x[:, 1]).unsqueeze(1)


def _feature0_radius(model, x0, n=50_000, seed=0):
    cw = CertifiedWrapper(Saliency(model), transform=TopKBinarize(1), certifier=FeatureCertifier())
    x = torch.tensor([[x0, 0.0]])
    attr, cert = cw.attribute(
        x,
        target=0,
        nt_samples=n,
        nt_samples_batch_size=n,
        stdevs=SIGMA,
        return_certificate=True,
        generator=torch.Generator().manual_seed(seed),
    )
    return attr, cert


def test_the_certificate_of_the_autocast_model_never_exceeds_the_exact_flip_distance():
    # p0(x) = P(round_bf16(x0 + eps) >= T) = Phi((x0 - (T - H)) / sigma): the smoothed top-1
    # is feature 0 exactly while x0 > T - H, so the exact adversary moves x0 to T - H and the
    # true certified radius is x0 - (T - H) (up to float32 rounding of x0 + eps, ~6e-8).
    inner = ThresholdOnRounded()
    fast = FastForward(inner, autocast=torch.bfloat16)
    x0 = T - H + 0.5 * SIGMA
    attr, cert = _feature0_radius(fast, x0)
    # the noise reached the model in float32: the wrapper saw float32 noisy inputs
    assert all(s.dtype == torch.float32 for s in inner.seen)
    p0 = stats.norm.cdf((x0 - (T - H)) / SIGMA)
    assert abs(float(attr[0, 0]) - p0) < 4 * (p0 * (1 - p0) / 50_000) ** 0.5
    radius = float(cert.feature_radius()[0, 0])
    exact = x0 - (T - H)
    assert int(cert.decision()[0, 0]) == 1
    assert radius <= exact + 1e-6  # sound, with the float32 figure as the only slack
    # teeth: the certificate resolves the bfloat16 grid. The float32 model (no rounding) flips
    # at x0 - T, half a bfloat16 step earlier: the autocast certificate exceeds that distance,
    # so applying it to the other function (or a certificate off by one half step) would be
    # caught by the check above.
    assert radius > x0 - T
    # and the adversary's flip is real: just past T - H the smoothed top-1 is feature 1
    beyond, _ = _feature0_radius(fast, T - H - 0.2 * SIGMA, n=20_000, seed=1)
    assert float(beyond[0, 0]) < 0.5


def test_the_noise_is_drawn_and_added_in_float32_before_the_cast():
    inner = ThresholdOnRounded()
    x = torch.tensor([[0.7, 0.1]])
    ssg = SparseSmoothGrad(FastForward(inner, autocast=torch.bfloat16), sparsity=1)
    ssg.attribute(x, target=0, nt_samples=6, stdevs=0.3, generator=torch.Generator().manual_seed(3))
    eps = torch.randn((6, 2), generator=torch.Generator().manual_seed(3)) * 0.3
    torch.testing.assert_close(inner.seen[0], x + eps, rtol=0, atol=0)


def test_a_low_bit_reader_behind_autocast_sees_the_gaussian_law():
    # the last mantissa bit of round_bf16(x0 + eps) is 1 with probability 1/2 (up to 0.018 at
    # n = 20000, see tests/certify/test_certifiable_options.py) when the noise is float32; with
    # 16-bit inputs it is far from 1/2 (that test), and here autocast rounds after the noise.
    class LowBit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.eye = nn.Parameter(torch.eye(2), requires_grad=False)

        def forward(self, x):
            z = (x.detach() @ self.eye)[:, 0]
            assert z.dtype == torch.bfloat16  # autocast is on
            lsb = (z.view(torch.int16) & 1).to(x.dtype)
            return (x[:, 0] * (1 + 2 * lsb) + 2 * x[:, 1]).unsqueeze(1)

    cw = CertifiedWrapper(
        Saliency(FastForward(LowBit(), autocast=torch.bfloat16)), transform=TopKBinarize(1)
    )
    m = cw.attribute(
        torch.tensor([[0.75, 0.0]]),
        target=0,
        nt_samples=20000,
        nt_samples_batch_size=20000,
        stdevs=0.25,
        generator=torch.Generator().manual_seed(0),
    )
    assert abs(float(m[0, 0]) - 0.5) < 0.018


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_inputs_stay_refused_through_the_wrapper(dtype):
    ssg = SparseSmoothGrad(FastForward(ThresholdOnRounded(), autocast=torch.bfloat16), sparsity=1)
    with pytest.raises(TypeError, match=rf"`inputs` has dtype {dtype}"):
        ssg.attribute(
            torch.tensor([[0.7, 0.1]], dtype=dtype),
            target=0,
            nt_samples=4,
            stdevs=0.3,
            return_certificate=True,
        )


def test_the_wrapper_changes_nothing_about_the_model_and_returns_float32():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    conv.eval()
    before = {k: (v.dtype, v.is_contiguous()) for k, v in conv.state_dict().items()}
    x = torch.rand(2, 3, 8, 8)
    ref = conv(x)
    out = FastForward(conv, channels_last=True)(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    half = FastForward(conv, autocast=torch.bfloat16, channels_last=True)(x)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, ref, rtol=0.05, atol=0.05)
    assert {k: (v.dtype, v.is_contiguous()) for k, v in conv.state_dict().items()} == before
    assert not conv.training
    assert list(FastForward(conv).state_dict()) == [f"model.{k}" for k in conv.state_dict()]


def test_bad_arguments_are_refused_naming_them():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="`autocast`"):
        FastForward(model, autocast=torch.float64)
    with pytest.raises(TypeError, match="`channels_last`"):
        FastForward(model, channels_last=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`compile`"):
        FastForward(model, compile="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`model`"):
        FastForward(3)  # type: ignore[arg-type]
