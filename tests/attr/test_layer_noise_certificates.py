"""Certificates with noise at a layer: exact truths in embedding space, coverage at alpha.

The model: an embedding and ``f(h) = 0.5 ||h||^2``, so Saliency (signed) at the embedding's
output is ``h' = h + eps``; per token the sum over the embedding dims, and the signed top-1 of
two tokens, make each sample's map a half-space indicator:
``s_1 = 1{S_1 + e_1 > S_2 + e_2}`` with ``S_t = sum_e h[t, e]`` and ``e_1 - e_2 ~ N(0, 2 E
sigma^2)``. So ``q_1 = Phi((S_1 - S_2) / (sigma sqrt(2E)))`` exactly, and the top-1 token
changes exactly when ``h`` moves by ``|S_1 - S_2| / sqrt(2E)`` in l2: the certificate's radius
must never exceed that (and the Gaussian rule reaches it as n grows).
"""

import math

import torch
from captum.attr import Saliency
from scipy import stats
from torch import nn

from captum_certified.attr import CertifiedWrapper
from captum_certified.transforms import Compose, TokenReduce, TopKBinarize

E = 3
SIGMA = 0.5


class HalfSpaceTokens(nn.Module):
    def __init__(self, rows: torch.Tensor) -> None:
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(rows.float(), freeze=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.embedding(ids).square().sum((1, 2)).unsqueeze(1)


def _certify(model, ids, n, alpha, seed, **kwargs):
    transform = Compose(TokenReduce("sum"), TopKBinarize(1, by_magnitude=False))
    cw = CertifiedWrapper(Saliency(model), noise_layer=model.embedding, transform=transform)
    return cw.attribute(
        ids, target=0, abs=False, nt_samples=n, stdevs=SIGMA, alpha=alpha,
        return_certificate=True, generator=torch.Generator().manual_seed(seed), **kwargs,
    )  # fmt: skip


def _setting(gap_sums):
    """Embedding rows whose token sums differ by the given gaps; ids (k, 2) one row per gap."""
    rows = []
    for gap in gap_sums:
        rows.append(torch.full((E,), (1.0 + gap) / E))  # token 1: sum 1 + gap
        rows.append(torch.full((E,), 1.0 / E))  # token 2: sum 1
    ids = torch.arange(2 * len(gap_sums)).reshape(-1, 2)
    return HalfSpaceTokens(torch.stack(rows)), ids


def test_exact_map_and_radius_in_embedding_space():
    gaps = [0.3, 0.8, 1.5]
    model, ids = _setting(gaps)
    attr, cert = _certify(model, ids, n=4000, alpha=0.05, seed=0)
    truth = torch.tensor(
        [stats.norm.cdf(g / (SIGMA * math.sqrt(2 * E))) for g in gaps], dtype=torch.float64
    )
    # the estimate against the closed form (binomial sd <= 0.0079 at n = 4000)
    torch.testing.assert_close(attr[:, 0].double(), truth, atol=0.03, rtol=0)
    assert bool((cert.lower[:, 0] <= truth).all() and (truth <= cert.upper[:, 0]).all())
    exact = torch.tensor(gaps, dtype=torch.float64) / math.sqrt(2 * E)
    radius = cert.certified_radius(k=1, overlap=1.0)
    assert bool((radius <= exact).all())  # never more than the true flipping distance
    assert bool((radius >= 0.6 * exact).all())  # and close to it at n = 4000
    # the engine at h moved by 1.2 x the true radius towards S_1 = S_2 (the worst direction):
    # the smoothed top-1 token flips, so no certificate may claim that radius
    for i, gap in enumerate(gaps):
        t = 1.2 * float(exact[i])
        step = t / math.sqrt(2 * E)  # per entry: token 1 down, token 2 up
        moved, moved_ids = _setting([gap - 2 * E * step])
        flipped, _ = _certify(moved, moved_ids, n=4000, alpha=0.05, seed=2)
        assert float(flipped[0, 0]) < 0.5
        assert t > float(radius[i])


def test_coverage_at_alpha_and_teeth():
    # 400 independent certificates (one per row of a batch of identical examples), alpha 0.2,
    # n = 48: the claimed radius exceeds the true one only on the band's failure event
    gap = 0.6
    model, ids = _setting([gap])
    batch = ids.repeat(400, 1)
    alpha = 0.2
    _, cert = _certify(model, batch, n=48, alpha=alpha, seed=1)
    exact = gap / math.sqrt(2 * E)
    radius = cert.certified_radius(k=1, overlap=1.0)
    failures = int((radius > exact).sum())
    # failures ~ Bin(400, p) with p <= alpha: reject above the binomial 0.999 quantile
    assert failures <= stats.binom.ppf(0.999, 400, alpha)
    truth = stats.norm.cdf(gap / (SIGMA * math.sqrt(2 * E)))
    outside = int(((cert.lower[:, 0] > truth) | (cert.upper[:, 0] < truth)).sum())
    assert outside <= stats.binom.ppf(0.999, 400, alpha)
    # teeth: a certificate claiming twice the radius is caught by the same count
    inflated = int((2 * radius > exact).sum())
    assert inflated > stats.binom.ppf(0.999, 400, alpha)
