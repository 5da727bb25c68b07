"""Uniform cube and l2-ball samplers: exact formulas, marginals, radius law (certificates.rst §10).

Statistical checks use fixed seeds and tolerances of 5 standard errors (a correct sampler fails
one with probability < 6e-7) or KS tests at level 1e-3.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from captum.attr import Attribution
from scipy import stats

from captum_certified.attr import CertifiedWrapper, UniformSmoothedAttribution
from captum_certified.noise import NOISES, UniformBallNoise, UniformCubeNoise, resolve_noise

KS_LEVEL = 1e-3
Z = 5.0


def _draw(noise, shapes, scale, seed=0):
    scales = [torch.as_tensor(scale, dtype=torch.float32)] * len(shapes)
    return noise.sample(
        shapes, scales, generator=torch.Generator().manual_seed(seed), dtype=torch.float32,
        device=torch.device("cpu"),
    )  # fmt: skip


def test_registry_names():
    assert NOISES["cube"] is UniformCubeNoise and NOISES["l2_ball"] is UniformBallNoise
    assert isinstance(resolve_noise("cube"), UniformCubeNoise)
    assert isinstance(resolve_noise("L2_BALL"), UniformBallNoise)
    assert UniformBallNoise.joint and not UniformCubeNoise.joint


# ------------------------------------------------------------------------------------------------
# Cube
# ------------------------------------------------------------------------------------------------


def test_cube_exact_formula():
    (u,) = _draw(UniformCubeNoise(), [(7, 3, 2)], 0.25, seed=3)
    g = torch.Generator().manual_seed(3)
    expected = (2 * torch.rand((7, 3, 2), generator=g) - 1) * 0.25
    assert torch.equal(u, expected)


@pytest.mark.parametrize("r", [4 / 255, 0.5, 3.0])
def test_cube_marginals(r):
    n, d = 20_000, 10
    (u,) = _draw(UniformCubeNoise(), [(n, d)], r, seed=11)
    u = u.double()
    assert float(u.abs().max()) <= r
    flat = u.flatten().numpy()
    # variance r^2/3; Var(u^2) = r^4/5 - r^4/9 = 4 r^4 / 45
    se = math.sqrt(4 / 45) * r**2 / math.sqrt(flat.size)
    assert abs(np.mean(flat**2) - r**2 / 3) <= Z * se
    assert abs(flat.mean()) <= Z * r / math.sqrt(3 * flat.size)
    assert stats.kstest(flat, stats.uniform(loc=-r, scale=2 * r).cdf).pvalue > KS_LEVEL
    # coordinates independent: the correlation of two coordinates is ~0
    corr = np.corrcoef(u[:, 0].numpy(), u[:, 1].numpy())[0, 1]
    assert abs(corr) <= Z / math.sqrt(n)


# ------------------------------------------------------------------------------------------------
# Ball
# ------------------------------------------------------------------------------------------------


def test_ball_exact_formula():
    (u,) = _draw(UniformBallNoise(), [(5, 2, 3)], 0.7, seed=4)
    g = torch.Generator().manual_seed(4)
    gauss = torch.randn((5, 6), generator=g)
    radius = torch.rand((5,), generator=g, dtype=torch.float64).pow(1 / 6)
    expected = gauss.double() / gauss.double().norm(dim=1, keepdim=True) * radius[:, None]
    expected = expected.float() * 0.7
    assert torch.equal(u, expected.reshape(5, 2, 3))


@pytest.mark.parametrize("d", [1, 3, 10, 64])
def test_ball_radius_law_and_marginals(d):
    n, r = 20_000, 1.5
    (u,) = _draw(UniformBallNoise(), [(n, d)], r, seed=20 + d)
    u = u.double()
    norms = u.norm(dim=1)
    assert float(norms.max()) <= r * (1 + 1e-6)
    # P(||u|| <= s) = (s/r)^d  <=>  (||u|| / r)^d ~ U[0, 1]
    assert stats.kstest((norms / r).pow(d).numpy(), "uniform").pvalue > KS_LEVEL
    # per-coordinate variance r^2 / (d + 2), each coordinate with its own standard error
    sq = u.square()
    se = sq.std(dim=0) / math.sqrt(n)
    assert torch.all((sq.mean(dim=0) - r**2 / (d + 2)).abs() <= Z * se)
    # mean direction ~ 0: each coordinate of u / ||u|| has variance 1 / d
    direction = u / norms[:, None]
    assert torch.all(direction.mean(dim=0).abs() <= Z / math.sqrt(d * n))
    if d == 3:  # Archimedes: a coordinate of a uniform point of the sphere S^2 is U[-1, 1]
        assert stats.kstest(direction[:, 2].numpy(), stats.uniform(-1, 2).cdf).pvalue > KS_LEVEL
    if d == 1:
        assert stats.kstest(u[:, 0].numpy(), stats.uniform(-r, 2 * r).cdf).pvalue > KS_LEVEL


def test_ball_is_joint_over_tuple_inputs():
    n, r = 20_000, 0.8
    noise = UniformBallNoise()
    u1, u2 = _draw(noise, [(n, 2, 3), (n, 4)], r, seed=5)
    joint = torch.cat([u1.reshape(n, -1), u2], dim=1).double()
    norms = joint.norm(dim=1)
    assert float(norms.max()) <= r * (1 + 1e-6)
    assert stats.kstest((norms / r).pow(10).numpy(), "uniform").pvalue > KS_LEVEL
    sq = joint.square()
    assert torch.all((sq.mean(0) - r**2 / 12).abs() <= Z * sq.std(0) / math.sqrt(n))


def test_ball_rejects_non_isotropic_scales():
    noise = UniformBallNoise()
    kw = dict(generator=None, dtype=torch.float32, device=torch.device("cpu"))
    with pytest.raises(ValueError, match="radius"):
        noise.sample([(4, 3)], [torch.tensor([[0.1, 0.2, 0.3]])], **kw)
    with pytest.raises(ValueError, match="radius"):
        noise.sample([(4, 3), (4, 2)], [torch.tensor(0.1), torch.tensor(0.2)], **kw)
    # per-example values are fine
    (u,) = noise.sample([(2, 3)], [torch.tensor([[1.0], [2.0]])], **kw)
    assert u.shape == (2, 3)


# ------------------------------------------------------------------------------------------------
# Through the engine and the preset (zennit pattern: record what the model sees)
# ------------------------------------------------------------------------------------------------


class _SquaredDeviation(Attribution):
    """Attribution = (noisy input - clean input)^2, so the smoothed map is E[u^2] per feature."""

    def __init__(self, clean: tuple[torch.Tensor, ...]) -> None:
        super().__init__(lambda *a: a[0].flatten(1).sum(1, keepdim=True))
        self.clean = clean

    def attribute(self, inputs, **kwargs):
        is_tuple = isinstance(inputs, tuple)
        inputs = inputs if is_tuple else (inputs,)
        n = inputs[0].shape[0] // self.clean[0].shape[0]
        out = tuple((x - c.repeat_interleave(n, 0)) ** 2 for x, c in zip(inputs, self.clean))
        return out if is_tuple else out[0]


def _inputs():
    g = torch.Generator().manual_seed(7)
    a = torch.rand(2, 2, 3, generator=g, dtype=torch.float64)
    b = torch.rand(2, 4, generator=g, dtype=torch.float64) * 3
    a[1] *= 0.5  # different ranges per example
    return a, b


@pytest.mark.parametrize("noise", ["cube", "l2_ball"])
def test_preset_relative_radius_scaling(noise):
    a, b = _inputs()
    n, rel = 20_000, 0.1
    usa = UniformSmoothedAttribution(lambda *x: x[0].flatten(1), _SquaredDeviation((a, b)))
    ea, eb = usa.attribute(
        (a, b), nt_samples=n, nt_samples_batch_size=5000, noise_scale=rel,
        noise=resolve_noise(noise), relative_noise_scale=True,
        generator=torch.Generator().manual_seed(8),
    )  # fmt: skip
    if noise == "cube":  # per input tensor and example: r = rel * (max - min), E u^2 = r^2 / 3
        for x, e in ((a, ea), (b, eb)):
            span = x.flatten(1).max(1).values - x.flatten(1).min(1).values
            expected = (rel * span) ** 2 / 3
            tol = Z * math.sqrt(4 / 45) * (rel * span) ** 2 / math.sqrt(n)
            assert torch.all((e.flatten(1) - expected[:, None]).abs() <= tol[:, None])
    else:  # one radius per example over both inputs, E u_i^2 = r^2 / (d + 2), d = 10
        flat = torch.cat([a.flatten(1), b], 1)
        span = flat.max(1).values - flat.min(1).values
        expected = (rel * span) ** 2 / 12
        got = torch.cat([ea.flatten(1), eb], 1)
        # Var(u_i^2) <= E u_i^4 <= r^2 E u_i^2: a generous standard error
        tol = Z * (rel * span) * torch.sqrt(expected) / math.sqrt(n)
        assert torch.all((got - expected[:, None]).abs() <= tol[:, None])


def test_engine_vargrad_matches_noise_variance():
    x = torch.zeros(1, 20, dtype=torch.float64)
    ident = _Identity()
    for noise, expected in (("cube", 0.09 / 3), ("l2_ball", 0.09 / 22)):
        cw = CertifiedWrapper(ident, noise=resolve_noise(noise))
        var = cw.attribute(
            x, nt_type="vargrad", nt_samples=20_000, noise_scale=0.3,
            generator=torch.Generator().manual_seed(9),
        )  # fmt: skip
        # relative standard error of a variance ~ sqrt(2 / n) (<= for these light tails)
        assert torch.all((var / expected - 1).abs() <= Z * math.sqrt(2 / 20_000))


class _Identity(Attribution):
    def __init__(self) -> None:
        super().__init__(lambda x: x)

    def attribute(self, inputs, **kwargs):
        return inputs
