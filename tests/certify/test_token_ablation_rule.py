"""The token-ablation l0 rule against exact enumeration over all keep-sets and all changes.

Small cases: d positions, every k-subset S enumerated, a deterministic per-sample map of the
kept tokens only; g_i(x) = E[s_i | i in S] computed exactly, and every x' within rho changed
tokens enumerated over a small alphabet.
"""

import itertools

import numpy as np
import pytest
import torch

from captum_certified.certify._core.token_ablation import (
    ablation_topk_kept,
    conditional_band,
    conditional_delta,
    kept_guaranteed,
    unconditional_delta,
)


@pytest.mark.parametrize("d, k", [(5, 2), (6, 3), (7, 1), (8, 4)])
def test_deltas_against_enumeration(d, k):
    subsets = list(itertools.combinations(range(d), k))
    for rho in range(0, d):
        R = set(range(d - rho, d))
        meets = [bool(set(S) & R) for S in subsets]
        assert unconditional_delta(d, k, rho) == pytest.approx(np.mean(meets))
        if rho < d:
            i = 0  # a position outside R
            cond = [m for S, m in zip(subsets, meets) if i in S]
            assert conditional_delta(d, k, rho) == pytest.approx(np.mean(cond))


def test_unconditional_map_is_vacuous_by_construction():
    # a position is in a top-K of kept positions only when kept: q_i <= k/d, which is the
    # total variation of one changed token, so no pair gap can exceed twice the bound
    for d, k in [(16, 4), (16, 8), (32, 8)]:
        assert unconditional_delta(d, k, 1) == pytest.approx(k / d)


def _exact_g(x, d, k, base):
    subsets = list(itertools.combinations(range(d), k))
    total = np.zeros(d)
    count = np.zeros(d)
    for S in subsets:
        s = base(x, S)
        for i in S:
            total[i] += s[i]
            count[i] += 1
    return total / count


def _topk(values, k_top, reverse_ties):
    order = sorted(range(len(values)), key=lambda i: (-values[i], -i if reverse_ties else i))
    return set(order[:k_top])


def _make_base(d, k_top, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, 3))
    inter = rng.normal(size=(3, 3))

    def base(x, S):
        scores = np.full(d, -np.inf)
        kept_tokens = [x[j] for j in S]
        for i in S:
            scores[i] = w[i, x[i]] + 0.7 * sum(inter[x[i], t] for t in kept_tokens)
        top = sorted(S, key=lambda i: (-scores[i], i))[:k_top]
        s = np.zeros(d)
        s[list(top)] = 1.0
        return s

    return base


def _worst_kept(x, d, k, k_top, rho, base):
    g = _exact_g(x, d, k, base)
    worst = k_top
    for reverse in (False, True):
        top = _topk(g, k_top, reverse)
        for positions in itertools.combinations(range(d), rho):
            for tokens in itertools.product(range(3), repeat=rho):
                x2 = list(x)
                for p, t in zip(positions, tokens):
                    x2[p] = t
                g2 = _exact_g(x2, d, k, base)
                for reverse2 in (False, True):
                    worst = min(worst, len(top & _topk(g2, k_top, reverse2)))
    return g, worst


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "d, k, k_top, rho",
    [(6, 3, 2, 1), (6, 2, 1, 1), (5, 3, 2, 1), (6, 4, 3, 2), (7, 2, 2, 1), (8, 2, 3, 1)],
)
def test_rule_is_never_beaten_by_any_change(seed, d, k, k_top, rho):
    base = _make_base(d, min(k_top, k - 1) if k > 1 else 1, seed)
    x = list(np.random.default_rng(100 + seed).integers(0, 3, size=d))
    g, worst = _worst_kept(x, d, k, k_top, rho, base)
    gt = torch.from_numpy(g[None])
    cert = int(ablation_topk_kept(gt, gt, k_top, conditional_delta(d, k, rho), rho)[0])
    assert cert <= worst
    if (d, k, k_top, rho) == (7, 2, 2, 1):
        assert cert == worst == 1  # certifies, and the adversary reaches the bound
    if (d, k, k_top, rho) == (8, 2, 3, 1):
        assert cert == 1  # K - rho = 2 is the most any l0 rule can keep


def test_rule_has_teeth():
    # rules that forget the changed positions, or halve delta, are beaten on these cases
    beaten_forget, beaten_half, certified_something = 0, 0, 0
    for seed in range(12):
        d, k, k_top, rho = 6, 2, 1, 1
        base = _make_base(d, 1, seed)
        x = list(np.random.default_rng(100 + seed).integers(0, 3, size=d))
        g, worst = _worst_kept(x, d, k, k_top, rho, base)
        gt = torch.from_numpy(g[None])
        delta = conditional_delta(d, k, rho)
        # forgetting that changed positions are free: the plain pigeonhole rule with delta
        a = np.sort(g)[::-1]
        forget = kept_guaranteed(a[:k_top] - delta, a[k_top:] + delta, k_top)
        beaten_forget += forget > worst
        half = int(ablation_topk_kept(gt, gt, k_top, delta / 2, rho)[0])
        beaten_half += half > worst
        certified_something += int(ablation_topk_kept(gt, gt, k_top, delta, rho)[0]) > 0
    assert beaten_forget > 0
    assert certified_something == 0  # K = rho: the changed token can always be the top one


def test_delta_is_attained():
    # s_i = 1 when no kept position holds token 2: g_i(x) = 1 without a 2, and after writing 2
    # at rho positions the unchanged positions drop to exactly 1 - delta
    d, k, rho = 7, 3, 2

    def base(x, S):
        hit = any(x[j] == 2 for j in S)
        return np.zeros(d) if hit else np.ones(d)

    x = [0] * d
    x2 = [0] * (d - rho) + [2] * rho
    g, g2 = _exact_g(x, d, k, base), _exact_g(x2, d, k, base)
    assert np.allclose(g, 1.0)
    np.testing.assert_allclose(g2[: d - rho], 1.0 - conditional_delta(d, k, rho))


def test_kept_guaranteed_by_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(300):
        na, nb = rng.integers(1, 4), rng.integers(0, 4)
        slots = int(rng.integers(1, na + nb + 1))
        a = np.sort(rng.integers(0, 4, size=na) / 3)[::-1]
        b = np.sort(rng.integers(0, 4, size=nb) / 3)[::-1]
        # adversary: A at its lower bounds, B at its upper bounds, ties against A
        items = [(v, 0) for v in a] + [(v, 1) for v in b]
        chosen = sorted(items, key=lambda t: (-t[0], -t[1]))[:slots]
        assert kept_guaranteed(a, b, slots) == sum(1 for t in chosen if t[1] == 0)


def test_conditional_band_is_exact_binomial():
    from scipy import stats

    counts = torch.tensor([[0, 3, 10, 5]])
    trials = torch.tensor([[10, 10, 10, 0]])
    lo, hi = conditional_band(counts, trials, alpha=0.08)
    tail = 0.08 / 8
    assert float(lo[0, 0]) == 0.0 and float(hi[0, 2]) == 1.0
    assert float(lo[0, 1]) == pytest.approx(stats.beta.ppf(tail, 3, 8))
    assert float(hi[0, 1]) == pytest.approx(stats.beta.isf(tail, 4, 7))
    assert (float(lo[0, 3]), float(hi[0, 3])) == (0.0, 1.0)
