"""Attacks never beat the RDP certificate on the digits CNN (certificates.rst §8), l1, l2, l_inf.

Setting: d = 64 pixels, binary top-8 scoring (k' = 8), top-K = 8, Laplace noise with b = 0.5
(standard deviation 0.71) and n = 4000 samples, alpha = 0.05. At each norm we take the radius
the certificate gives for overlap 1/2, attack the *smoothed* map within it (a score-function
estimate of its exact gradient, see _rdp_attack.py), re-estimate the attacked map with 4000 fresh
samples and a simultaneous Clopper-Pearson band at 1e-3, and require that the provable upper
bound on the true overlap (from both bands) is at least the certified count: Monte-Carlo error
cannot fake a violation. At a larger radius the same attack provably moves the top-K (the upper
bound falls below K), so it has teeth; the certificate is 0 there.
"""

from __future__ import annotations

import math

import pytest
import torch
from _digits import trained_digits_cnn
from _rdp_attack import (
    binary_topk_maps,
    lp_norm,
    smoothed_counts,
    smoothed_topk_attack,
)
from _smoothed_attack import clopper_pearson_band, overlap_upper_bound

from captum_certified.attr import RenyiRobustSmooth
from captum_certified.noise import resolve_noise

K = KEEP = 8
N = 4000
CASES = {
    # noise, scale, norm: radius at which the attack must provably move the top-K
    ("laplace", 0.5, "l1"): 8.0,
    ("laplace", 0.5, "l2"): 2.0,
    ("laplace", 0.5, "linf"): 0.3,
    ("gaussian", 0.5, "l2"): 2.0,
}


@pytest.fixture(scope="module")
def setup():
    model, x, y, _ = trained_digits_cnn()
    correct = torch.nonzero(model(x).argmax(1) == y)[:3, 0]
    x, y = x[correct], y[correct]
    certs = {}
    for noise in ("laplace", "gaussian"):
        attr, cert = RenyiRobustSmooth(model, sparsity=KEEP, scoring="topk").attribute(
            x,
            target=y,
            nt_samples=N,
            nt_samples_batch_size=2000,
            noise=resolve_noise(noise),
            **{"stdevs" if noise == "gaussian" else "noise_scale": 0.5},
            return_certificate=True,
            alpha=0.05,
            generator=torch.Generator().manual_seed(0),
        )
        q = attr.flatten(1).to(torch.float64)
        order = torch.argsort(-q, dim=1, stable=True)
        weights = torch.zeros_like(q, dtype=torch.float32)
        weights.scatter_(1, order[:, :K], 1.0).scatter_(1, order[:, K : 2 * K], -1.0)
        certs[noise] = (cert, weights)
    return model, x, y, certs


def attack_and_judge(model, x, y, cert, weights, radius, norm, noise, scale, seed):
    p = {"l1": 1.0, "l2": 2.0, "linf": math.inf}[norm]
    maps = binary_topk_maps(model, y, KEEP)
    delta = smoothed_topk_attack(
        maps, x, weights, radius.float(), p, noise=noise, scale=scale, seed=seed
    )
    assert (lp_norm(delta, p) <= radius * (1 + 1e-5) + 1e-7).all()  # within budget
    counts = smoothed_counts(maps, x + delta, noise, scale, N, 2000, seed=seed + 100)
    lower, upper = clopper_pearson_band(counts, N, 1e-3)
    return overlap_upper_bound(cert.lower, cert.upper, lower, upper, K)


@pytest.mark.parametrize(("noise", "scale", "norm"), list(CASES))
def test_attack_never_beats_certificate(setup, noise, scale, norm):
    model, x, y, certs = setup
    cert, weights = certs[noise]
    radius = cert.certified_radius(K, 0.5, norm)
    assert (radius > 0).all()  # non-trivial certificates at d = 64
    certified = cert.certified_count(K, radius, norm)
    assert (certified >= K // 2).all()
    bound = attack_and_judge(model, x, y, cert, weights, radius, norm, noise, scale, seed=1)
    assert (bound >= certified).all(), (radius, certified, bound)

    # teeth: at a larger radius the attack provably changes the top-K of the true smoothed map
    big = torch.full_like(radius, CASES[(noise, scale, norm)])
    bound_big = attack_and_judge(model, x, y, cert, weights, big, norm, noise, scale, seed=2)
    assert (bound_big < K).all(), bound_big
    assert (bound_big >= cert.certified_count(K, big, norm)).all()
    print(
        f"{noise} b/sigma={scale} {norm}: certified radius {radius.numpy().round(4)} "
        f"(m = {certified.tolist()}), attacked overlap bound {bound.tolist()}; at radius "
        f"{big[0].item()}: bound {bound_big.tolist()}"
    )
