"""Brute-force checks of the inequality chain behind the cosine certificate, on toy maps (8.5).

1. The difference lemma is *tight*: for h(z) = sign(t/2 - <z - x, w>) e_1 (M = 1) and
   delta = t w, hbar(x) - hbar(x + delta) = Delta(t) e_1 exactly (the map is +e_1 on one lune,
   -e_1 on the other and antisymmetric under the reflection swapping the two balls), so a
   Monte-Carlo estimate with common random numbers must match Delta(t) to within its error.
2. On h(z) = normalize((z, 1)) in d = 2..5 (through the engine, so the certificate reads the
   *input* dimension d, not the map's d + 1), for many perturbations: the estimated
   ||hbar(x) - hbar(x + delta)|| stays below Delta(t) and the estimated cosine stays above
   the certified bound, both up to a rigorous Monte-Carlo slack (McDiarmid at 1e-6), so MC
   noise cannot fake a violation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from captum.attr import Attribution

from captum_certified.attr import CertifiedWrapper
from captum_certified.certify import ball_difference_bound, mcdiarmid_error
from captum_certified.noise import UniformBallNoise
from captum_certified.transforms import UnitL2Normalize


def _uniform_ball(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True) * rng.random((n, 1)) ** (1.0 / d)


@pytest.mark.parametrize("d", [2, 3, 5])
def test_difference_lemma_is_attained(d):
    n, r = 200_000, 1.0
    rng = np.random.default_rng(40 + d)
    u = _uniform_ball(n, d, rng) * r
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    proj = u @ w
    for t in (0.05, 0.3, 1.0, 1.8):
        s_x = np.sign(t / 2 - proj)  # h(x + u), first coordinate
        s_y = np.sign(-t / 2 - proj)  # h(x + delta + u) = sign(t/2 - <u + t w, w>)
        diff = s_x - s_y
        err = 5 * diff.std() / math.sqrt(n)  # 5 standard errors
        expected = float(ball_difference_bound(t, r, d))
        assert abs(diff.mean() - expected) <= err + 1e-12, (d, t, diff.mean(), expected)


class _AppendOne(Attribution):
    """Map z -> (z, 1): with UnitL2Normalize the per-sample map is normalize((z, 1)), M = 1."""

    def __init__(self) -> None:
        super().__init__(lambda z: z)

    def attribute(self, inputs, **kwargs):
        return torch.cat([inputs, torch.ones_like(inputs[:, :1])], dim=1)


def _cos_upper(a: torch.Tensor, b: torch.Tensor, e: float) -> torch.Tensor:
    """Largest cos(hbar_a, hbar_b) compatible with ||a - hbar_a||, ||b - hbar_b|| <= e."""
    na, nb = a.norm(dim=-1), b.norm(dim=-1)
    angle = torch.arccos((a * b).sum(-1) / (na * nb)).clamp(0, math.pi)
    slack = torch.arcsin((e / na).clamp(max=1)) + torch.arcsin((e / nb).clamp(max=1))
    return torch.cos((angle - slack).clamp(min=0))


@pytest.mark.parametrize("d", [2, 3, 5])
def test_normalized_affine_map_respects_the_certificate(d):
    n, r, alpha, n_dirs = 40_000, 1.0, 1e-3, 12
    gen = torch.Generator().manual_seed(50 + d)
    x = 0.7 * torch.randn(1, d, generator=gen, dtype=torch.float64)
    cw = CertifiedWrapper(_AppendOne(), noise=UniformBallNoise(), transform=UnitL2Normalize())

    def smooth(points, seed, certify=False):
        return cw.attribute(
            points, nt_samples=n, nt_samples_batch_size=n, noise_scale=r,
            return_certificate=certify, alpha=alpha,
            generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip

    h_x, cert = smooth(x, 1, certify=True)
    assert cert.input_dim == d and cert.num_features == d + 1
    h_ref = smooth(x, 2)  # fresh samples for the judge
    e = mcdiarmid_error(n, 1e-6)  # each estimate is within e of its mean, w.p. >= 1 - 1e-6
    directions = torch.randn(n_dirs, d, generator=gen, dtype=torch.float64)
    directions = torch.cat([directions, x, -x])  # plus the radial directions
    directions = directions / directions.norm(dim=1, keepdim=True)
    checked = 0
    for t in (0.02, 0.1, 0.3, 0.6):
        bound = float(cert.cosine_lower_bound(t)[0])
        delta_t = float(ball_difference_bound(t, r, d))
        h_y = smooth(x + t * directions, 3 + int(100 * t))
        gap = (h_ref - h_y).norm(dim=1)
        assert torch.all(gap <= delta_t + 2 * e), (t, gap.max(), delta_t)
        cos_up = _cos_upper(h_ref.expand_as(h_y), h_y, e)
        assert torch.all(cos_up >= bound), (t, cos_up.min(), bound)
        checked += int(bound > 0)
    assert checked >= 2  # the certificate is non-trivial at the small radii checked
