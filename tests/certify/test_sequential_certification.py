"""CertificationTarget, the per-chunk decision, the sequential loop and the one-pass settings."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm

from captum_certified.certify import (
    CertificationTarget,
    GaussianTopKCertificate,
    StreamingMoments,
)
from captum_certified.certify._core.sequence import BettingConfidenceSequence
from captum_certified.certify._core.sequential import certify_sequentially
from captum_certified.certify._core.settings import SettingStatistics
from captum_certified.certify._core.target import (
    CANNOT_CERTIFY,
    CERTIFIED,
    CONTINUE,
    RESOLVED,
    UNRESOLVED,
    sequential_decision,
)
from captum_certified.noise import GaussianNoise
from captum_certified.transforms import ClipNormalize, TopKBinarize


def cert(lower: torch.Tensor, upper: torch.Tensor, n=100) -> GaussianTopKCertificate:
    return GaussianTopKCertificate(
        lower.to(torch.float64),
        upper.to(torch.float64),
        noise=GaussianNoise(),
        norm="l2",
        scale=torch.ones(lower.shape[0], dtype=torch.float64),
        n=100,
        alpha=0.05,
        bound="betting_sequence",
    )


def test_target_validation_names_the_argument():
    with pytest.raises(ValueError, match="overlap"):
        CertificationTarget(k=0.2, radius=0.1, overlap=1.5)
    with pytest.raises(ValueError, match="radius"):
        CertificationTarget(k=0.2, radius=-1.0, overlap=0.5)
    with pytest.raises(TypeError, match="radius"):
        CertificationTarget(k=0.2, radius="0.1", overlap=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k"):
        CertificationTarget(k=1.5, radius=0.1, overlap=0.5)
    with pytest.raises(ValueError, match="futility"):
        CertificationTarget(k=0.2, radius=0.1, overlap=0.5, futility="maybe")
    with pytest.raises(TypeError, match="top-K certificate"):
        CertificationTarget(k=0.2, radius=0.1, overlap=0.5).reached(object())


def test_decision_codes_on_hand_built_bands():
    # d = 4, K = 1: rank 1 pairs L_(1) with U_(2); radius = (Phi^-1(L) - Phi^-1(U)) / 2
    target = CertificationTarget(k=1, radius=0.5, overlap=1.0)
    tight = torch.tensor([[0.95, 0.05, 0.05, 0.05]])  # gap 3.29: radius 1.64 > 0.5
    wide_lo = torch.tensor([[0.55, 0.0, 0.0, 0.0]])
    wide_up = torch.tensor([[0.99, 0.3, 0.3, 0.3]])  # now: no; best case (0.99 vs 0.0): yes
    flat = torch.tensor([[0.5, 0.45, 0.45, 0.45]])  # best case gap 0.126: never
    lower = torch.cat([tight, wide_lo, flat - 0.01, wide_lo])
    upper = torch.cat([tight, wide_up, flat + 0.01, wide_up])
    n = torch.tensor([100, 100, 100, 4096])
    codes = sequential_decision(target, cert(lower, upper), cert(upper, lower), n, 4096)
    assert codes.tolist() == [CERTIFIED, CONTINUE, CANNOT_CERTIFY, CANNOT_CERTIFY]


def test_best_case_bounds_every_band_that_contains_the_truth():
    # the futility claim: any band [L', U'] containing p certifies no more than (U, L)
    gen = torch.Generator().manual_seed(0)
    d, k, beaten_by_current = 12, 3, 0
    for _ in range(200):
        p = torch.rand(1, d, generator=gen, dtype=torch.float64)
        w = 0.2 * torch.rand(1, d, generator=gen, dtype=torch.float64)
        lower, upper = (p - w).clamp(0, 1), (p + w).clamp(0, 1)
        best = cert(upper, lower).rank_radii(k)
        now = cert(lower, upper).rank_radii(k)
        for _ in range(20):  # future bands containing p, inside or outside [L, U]
            a = torch.rand(1, d, generator=gen, dtype=torch.float64)
            b = torch.rand(1, d, generator=gen, dtype=torch.float64)
            future = cert(p * a, p + (1 - p) * b).rank_radii(k)
            assert (future <= best + 1e-12).all()
            beaten_by_current += int((future > now + 1e-12).any())
    # teeth: the current band itself is no bound on what later bands certify
    assert beaten_by_current > 0


def bernoulli_draw(p: torch.Tensor, gen: torch.Generator, sizes: list[int]):
    def draw(active: torch.Tensor, n_chunk: int) -> torch.Tensor:
        sizes.append(len(active))
        probs = p[active].unsqueeze(1).expand(-1, n_chunk, -1)
        return torch.bernoulli(probs, generator=gen)

    return draw


def test_sequential_loop_decides_every_example_and_drops_finished_ones():
    gen = torch.Generator().manual_seed(3)
    d = 20
    p = torch.full((6, d), 0.05, dtype=torch.float64)
    p[:, :4] = torch.tensor([0.95, 0.9, 0.6, 0.55], dtype=torch.float64)
    p[3:, :8] = 0.3  # flat examples: top-4 and next 4 equal, cannot be certified
    target = CertificationTarget(k=4, radius=0.2, overlap=0.5)
    sizes: list[int] = []
    lower, upper, used, decision, mean = certify_sequentially(
        bernoulli_draw(p, gen, sizes),
        lambda lo, up, n, index: cert(lo, up),
        target,
        batch_size=6,
        alpha=0.05,
        max_samples=4096,
        chunk=64,
        binary=True,
    )
    assert decision[:3].tolist() == [CERTIFIED] * 3
    assert decision[3:].tolist() == [CANNOT_CERTIFY] * 3
    assert (used <= 4096).all() and (used % 64 == 0).all()
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < 6  # finished ones left
    assert ((lower <= p) & (p <= upper)).all()
    assert ((lower <= mean) & (mean <= upper)).all() and mean.shape == p.shape
    assert target.reached(cert(lower, upper))[:3].all()
    with pytest.raises(TypeError, match="stop_when"):
        certify_sequentially(
            bernoulli_draw(p, gen, []),
            lambda lo, up, n, index: cert(lo, up),
            (4, 0.2, 0.5),  # type: ignore[arg-type]
            batch_size=6,
            alpha=0.05,
            max_samples=128,
            chunk=64,
            binary=True,
        )


def test_few_active_examples_fill_the_batch_and_count_only_the_chunks_they_used():
    # examples decided at different times (here after 32 to 576 samples): once some are gone,
    # the others are asked for several chunks per call (batch width kept), and each example's
    # band is exactly the chunk-by-chunk sequence over the samples it used
    gen = torch.Generator().manual_seed(5)
    d, chunk, batch = 10, 32, 8
    p = torch.full((batch, d), 0.05, dtype=torch.float64)
    p[0, :2] = torch.tensor([0.97, 0.95], dtype=torch.float64)
    p[1:6, :4] = 0.4  # flat: cannot be certified
    p[6:, :2] = torch.tensor([0.62, 0.58], dtype=torch.float64)
    target = CertificationTarget(k=2, radius=0.3, overlap=0.5)
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def draw(active: torch.Tensor, n_chunk: int) -> torch.Tensor:
        probs = p[active].unsqueeze(1).expand(-1, n_chunk, -1)
        maps = torch.bernoulli(probs, generator=gen)
        calls.append((active.clone(), maps))
        return maps

    def build(lo, up, n, index):
        return cert(lo, up)

    lower, upper, used, decision, _ = certify_sequentially(
        draw,
        build,
        target,
        batch_size=batch,
        alpha=0.05,
        max_samples=2048,
        chunk=chunk,
        binary=True,
        fill_batch=True,
    )
    widths = [len(a) * m.shape[1] for a, m in calls]
    assert max(widths) <= batch * chunk
    assert any(m.shape[1] > chunk for _, m in calls)  # the batch was refilled
    assert (used % chunk == 0).all()
    for i in range(batch):  # replay each example chunk by chunk from its own stream
        stream = torch.cat([m[(a == i).nonzero().item()] for a, m in calls if (a == i).any()])
        assert stream.shape[0] >= used[i]
        seq = BettingConfidenceSequence(1, d, alpha=0.05, max_samples=2048, binary=True)
        codes = []
        for start in range(0, int(used[i]), chunk):
            seq.update(stream[start : start + chunk].unsqueeze(0))
            lo, up = seq.band()
            n = seq.n
            codes.append(int(sequential_decision(target, cert(lo, up), cert(up, lo), n, 2048)))
        assert codes[:-1] == [CONTINUE] * (len(codes) - 1) and codes[-1] == int(decision[i])
        assert torch.equal(lo[0], lower[i]) and torch.equal(up[0], upper[i])


def test_projected_band_margin_moves_each_end_one_standard_error_toward_the_target():
    gen = torch.Generator().manual_seed(7)
    for binary in (True, False):
        seq = BettingConfidenceSequence(2, 6, alpha=0.05, max_samples=4096, binary=binary)
        x = torch.rand(2, 256, 6, generator=gen)
        seq.update((x < 0.3).double() if binary else x * 0.6)
        plain_lo, plain_up = seq.projected_band(4096)
        lo, up = seq.projected_band(4096, margin=1.0)
        assert (lo > plain_lo).all() and (up < plain_up).all()
        # the same forecast from a mean moved by exactly one standard error
        mean = seq.moments.mean.cpu()
        var = mean * (1 - mean) if binary else seq.moments.m2.cpu() / 256
        se = (var / 256).sqrt()
        moved_up = BettingConfidenceSequence(2, 6, alpha=0.05, max_samples=4096, binary=binary)
        moved_up.moments = seq.moments.__class__(track_second_moment=not binary)
        moved_up.moments.update(torch.zeros(2, 256, 6, dtype=torch.float64))
        moved_up.moments.total = ((mean + se).clamp(0, 1) * 256).to(moved_up.moments.total)
        if not binary:
            moved_up.moments.m2 = seq.moments.m2.clone()
        assert torch.allclose(moved_up.projected_band(4096)[0], lo, rtol=0, atol=2e-5)
    with pytest.raises(ValueError, match="margin"):
        seq.projected_band(4096, margin=-1.0)


def test_forecast_margin_gives_up_later_on_the_same_streams():
    # fixed per-example streams (not drawn by batch position), so every margin sees the same
    # samples: a more optimistic forecast never stops an example earlier, and certifies a
    # superset; the first margin gives up on some example that more samples certify
    gen = torch.Generator().manual_seed(11)
    batch, d, n_max, chunk = 24, 10, 4096, 64
    p = torch.full((batch, d), 0.05, dtype=torch.float64)
    p[:, 0] = 0.9
    p[:, 1] = torch.linspace(0.45, 0.75, batch, dtype=torch.float64)
    p[:, 2] = 0.45
    streams = torch.bernoulli(p.unsqueeze(1).expand(-1, n_max, -1), generator=gen)
    target = dict(k=2, radius=0.1, overlap=1.0)

    def run(**kw):
        position = torch.zeros(batch, dtype=torch.int64)

        def draw(active, n_chunk):
            out = torch.stack([streams[i, position[i] : position[i] + n_chunk] for i in active])
            position[active] += n_chunk
            return out

        _, _, used, decision, _ = certify_sequentially(
            draw,
            lambda lo, up, n, index: cert(lo, up),
            CertificationTarget(**target, **kw),
            batch_size=batch,
            alpha=0.05,
            max_samples=n_max,
            chunk=chunk,
            binary=True,
        )
        return used, decision == CERTIFIED

    used_0, ok_0 = run(futility="projected")
    used_1, ok_1 = run(futility="projected", forecast_margin=1.0)
    used_p, ok_p = run(futility="proven")
    assert (used_1 >= used_0).all() and (used_p >= used_1).all()
    assert (ok_1 >= ok_0).all() and (ok_p >= ok_1).all()
    assert int(ok_1.sum()) > int(ok_0.sum())  # teeth: the margin kept an example
    assert float(used_1.double().mean()) < float(used_p.double().mean())


def test_forecast_margin_validation_and_repr():
    t = CertificationTarget(k=2, radius=0.1, overlap=0.5, futility="projected", forecast_margin=1)
    assert "forecast_margin=1" in repr(t)
    assert "forecast_margin" not in repr(CertificationTarget(k=2, radius=0.1, overlap=0.5))
    with pytest.raises(ValueError, match="forecast_margin"):
        CertificationTarget(k=2, radius=0.1, overlap=0.5, forecast_margin=1.0)  # proven
    with pytest.raises(ValueError, match="forecast_margin"):
        CertificationTarget(
            k=2, radius=0.1, overlap=0.5, futility="projected", forecast_margin=-0.5
        )
    with pytest.raises(TypeError, match="forecast_margin"):
        CertificationTarget(k=2, radius=0.1, overlap=0.5, futility="projected", forecast_margin="1")


def test_sequence_pop_keeps_the_others_streaming():
    gen = torch.Generator().manual_seed(0)
    seq = BettingConfidenceSequence(3, 5, alpha=0.1, max_samples=512)
    x = torch.rand(3, 64, 5, generator=gen)
    seq.update(x)
    before = seq.band()[0].clone()
    lo, up, n, mean = seq.pop(torch.tensor([False, True, False]))
    assert lo.shape == (1, 5) and n.tolist() == [64] and seq.batch_size == 2
    torch.testing.assert_close(mean[0], x[1].double().mean(0))
    torch.testing.assert_close(lo[0], before[1])
    seq.update(torch.rand(2, 64, 5, generator=gen))
    assert seq.n.tolist() == [128, 128]
    with pytest.raises(ValueError, match="chunk"):
        seq.update(torch.rand(3, 8, 5))
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        seq.update(torch.full((2, 8, 5), 2.0))


def test_one_pass_settings_equal_separate_passes_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    transforms = [TopKBinarize(0.1), TopKBinarize(0.3), ClipNormalize(sparsity=0.3, clip=0.05)]
    stats = SettingStatistics(transforms, second_moment=True)
    separate = [StreamingMoments(True) for _ in transforms]
    for _ in range(3):
        raw = torch.randn(4 * 16, 50, generator=gen)
        stats.update((raw,), batch=4, n_chunk=16)
        for t, s in zip(transforms, separate):
            s.update(t(raw).reshape(4, 16, -1))
    for a, b in zip(stats.statistics, separate):
        assert torch.equal(a.total, b.total) and torch.equal(a.m2, b.m2) and a.n == b.n == 48
    with pytest.raises(ValueError, match="transforms"):
        SettingStatistics([])
    with pytest.raises(TypeError, match="transforms"):
        SettingStatistics([lambda a: a])  # type: ignore[list-item]


def test_radius_target_validation_names_the_argument():
    with pytest.raises(ValueError, match="exactly one of `radius`"):
        CertificationTarget(k=0.2, overlap=0.5)
    with pytest.raises(ValueError, match="exactly one of `radius`"):
        CertificationTarget(k=0.2, radius=0.1, overlap=0.5, precision=0.01)
    for bad in (0.0, -0.1, math.inf, math.nan):
        with pytest.raises(ValueError, match="precision"):
            CertificationTarget(k=0.2, overlap=0.5, precision=bad)
    for bad in ("0.1", True, None, torch.tensor(0.1)):
        with pytest.raises((TypeError, ValueError), match="precision|radius"):
            CertificationTarget(k=0.2, overlap=0.5, precision=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="precision"):
        CertificationTarget(k=0.2, overlap=0.5, precision="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overlap"):
        CertificationTarget(k=0.2, overlap=0.0, precision=0.1)
    with pytest.raises(ValueError, match="k"):
        CertificationTarget(k=0, overlap=0.5, precision=0.1)
    with pytest.raises(ValueError, match="futility"):
        CertificationTarget(k=0.2, overlap=0.5, precision=0.1, futility="maybe")
    with pytest.raises(TypeError):  # keyword-only: a positional 0.1 would be ambiguous
        CertificationTarget(0.2, 0.1, 0.5)  # type: ignore[misc]
    search = CertificationTarget(k=0.2, overlap=0.5, precision=0.01)
    assert search.searches_radius and search.radius is None
    assert repr(search) == (
        "CertificationTarget(k=0.2, overlap=0.5, precision=0.01, futility='proven')"
    )
    check = CertificationTarget(k=0.2, radius=0.1, overlap=0.5)
    assert not check.searches_radius and check.precision is None
    assert repr(check) == "CertificationTarget(k=0.2, radius=0.1, overlap=0.5, futility='proven')"
    with pytest.raises(AttributeError):
        search.precision = 0.5  # type: ignore[misc]  # frozen
    band = cert(torch.full((1, 4), 0.4), torch.full((1, 4), 0.6))
    with pytest.raises(ValueError, match="radius"):
        search.reached(band)
    with pytest.raises(ValueError, match="precision"):
        check.within_precision(torch.zeros(1), torch.zeros(1))
    with pytest.raises(TypeError, match="top-K certificate"):
        search.certified_radius(object())


def phi_radius(lower: float, upper: float) -> float:
    """Independent reference: the Gaussian pair radius (Phi^-1(L) - Phi^-1(U)) / 2 at scale 1,
    0 where not positive (inf stays inf)."""
    gap = (norm.ppf(lower) - norm.ppf(upper)) / 2
    return gap if gap > 0 else 0.0


def test_radius_decision_on_hand_built_bands():
    # d = 4, K = 1, overlap 1: R = (Phi^-1(L_(1)) - Phi^-1(U_(2))) / 2 for the band and
    # (Phi^-1(U_(1)) - Phi^-1(L_(2))) / 2 for the swapped band (the best case)
    rows = {  # name: (lower, upper, R_cert, R_best)
        "gap 0.44": ([0.8, 0.1, 0.1, 0.1], [0.9, 0.2, 0.2, 0.2], (0.8, 0.2), (0.9, 0.1)),
        "best inf": ([0.9, 0.0, 0.0, 0.0], [1.0, 0.1, 0.1, 0.1], (0.9, 0.1), (1.0, 0.0)),
        "both 0": ([0.6, 0.6, 0.1, 0.1], [0.6, 0.6, 0.2, 0.2], (0.6, 0.6), (0.6, 0.6)),
        "cert 0": ([0.5, 0.3, 0.3, 0.3], [0.7, 0.6, 0.6, 0.6], (0.5, 0.6), (0.7, 0.3)),
    }
    lower = torch.tensor([r[0] for r in rows.values()], dtype=torch.float64)
    upper = torch.tensor([r[1] for r in rows.values()], dtype=torch.float64)
    now, best = cert(lower, upper), cert(upper, lower)
    target = CertificationTarget(k=1, overlap=1.0, precision=0.5)
    r_cert, r_best = target.certified_radius(now), target.certified_radius(best)
    want_cert = [phi_radius(*r[2]) for r in rows.values()]
    want_best = [phi_radius(*r[3]) for r in rows.values()]
    assert want_best[1] == math.inf and want_cert[2] == want_best[2] == 0.0
    assert want_cert[3] == 0.0 and 0.5 < want_best[3] < 0.53
    assert 0.43 < want_best[0] - want_cert[0] < 0.45
    torch.testing.assert_close(r_cert, torch.tensor(want_cert, dtype=torch.float64))
    torch.testing.assert_close(r_best, torch.tensor(want_best, dtype=torch.float64))
    early = torch.full((4,), 100)
    codes = sequential_decision(target, now, best, early, 4096)
    # gap 0.44 <= 0.5; inf above a finite radius never resolves; 0 = 0; 0.52 > 0.5
    assert codes.tolist() == [RESOLVED, CONTINUE, RESOLVED, CONTINUE]
    codes = sequential_decision(target, now, best, torch.full((4,), 4096), 4096)
    assert codes.tolist() == [RESOLVED, UNRESOLVED, RESOLVED, UNRESOLVED]
    finer = CertificationTarget(k=1, overlap=1.0, precision=0.4, futility="projected")
    assert sequential_decision(finer, now, best, early, 4096).tolist()[0] == CONTINUE
    # the forecast: R_proj = R_cert stops (unresolved), R_proj = R_best (0.44 away) does not
    codes = sequential_decision(finer, now, best, early, 4096, projected=now)
    assert codes.tolist() == [UNRESOLVED, UNRESOLVED, RESOLVED, UNRESOLVED]
    codes = sequential_decision(finer, now, best, early, 4096, projected=best)
    assert codes.tolist() == [CONTINUE, CONTINUE, RESOLVED, CONTINUE]
    # 2K > d: the needed rank is unopposed, both radii inf however wide the band: resolved
    wide = CertificationTarget(k=3, overlap=0.5, precision=1e-3)
    flat_lo, flat_up = torch.full((1, 4), 0.2), torch.full((1, 4), 0.8)
    assert wide.certified_radius(cert(flat_lo, flat_up)).tolist() == [math.inf]
    codes = sequential_decision(
        wide, cert(flat_lo, flat_up), cert(flat_up, flat_lo), torch.tensor([64]), 4096
    )
    assert codes.tolist() == [RESOLVED]


def test_radius_bracket_holds_the_exact_maps_radius():
    # on the band event L <= p <= U: R_cert <= R*(p) <= R_best, R* from the zero-width band
    gen = torch.Generator().manual_seed(1)
    d, below, above = 12, 0, 0
    for overlap in (1 / 3, 2 / 3, 1.0):
        target = CertificationTarget(k=3, overlap=overlap, precision=0.1)
        for _ in range(100):
            p = torch.rand(4, d, generator=gen, dtype=torch.float64)
            w = 0.2 * torch.rand(4, d, generator=gen, dtype=torch.float64)
            lower, upper = (p - w).clamp(0, 1), (p + w).clamp(0, 1)
            r_cert = target.certified_radius(cert(lower, upper))
            r_star = target.certified_radius(cert(p, p))
            r_best = target.certified_radius(cert(upper, lower))
            assert (r_cert <= r_star).all() and (r_star <= r_best).all()
            below += int((r_cert < r_star).sum())
            above += int((r_star < r_best).sum())
    # teeth: both sides of the bracket are strict somewhere (neither is the exact radius)
    assert below > 100 and above > 100


def test_radius_search_loop_resolves_or_spends_the_budget():
    gen = torch.Generator().manual_seed(3)
    d = 20
    p = torch.full((6, d), 0.05, dtype=torch.float64)
    p[:, :4] = torch.tensor([0.95, 0.9, 0.6, 0.55], dtype=torch.float64)
    p[3:5, :8] = 0.3  # flat: R* = 0; the best case shrinks to it
    p[5] = 0.0
    p[5, :4] = 1.0  # R* = inf: the best case stays inf, the band never gets there
    target = CertificationTarget(k=4, overlap=0.5, precision=0.3)
    lower, upper, used, decision, _ = certify_sequentially(
        bernoulli_draw(p, gen, []),
        lambda lo, up, n, index: cert(lo, up),
        target,
        batch_size=6,
        alpha=0.05,
        max_samples=4096,
        chunk=64,
        binary=True,
    )
    r_cert = target.certified_radius(cert(lower, upper))
    r_best = target.certified_radius(cert(upper, lower))
    r_star = target.certified_radius(cert(p, p))
    assert r_star[3:5].tolist() == [0.0, 0.0] and r_star[5].item() == math.inf
    resolved = decision == RESOLVED
    assert resolved[:5].all() and decision[5].item() == UNRESOLVED and used[5].item() == 4096
    assert ((r_best - r_cert)[resolved] <= 0.3).all()
    # measured: [2240, 2432, 2496, 576, 448, 4096]; the flat ones resolve first (R* = 0)
    assert used[:5].max() < 4096 and used[3:5].max() < used[:3].min()
    assert ((r_cert <= r_star) & (r_star <= r_best)).all()
    assert r_best[5].item() == math.inf and math.isfinite(r_cert[5].item())


@pytest.mark.parametrize("binary", [False, True])
def test_fill_batch_equals_one_chunk_per_call_on_replayed_streams(binary):
    # each example reads its own fixed stream in order, so the chunks it uses are the same
    # with or without fill_batch (the discarded ones lie past its stopping time): the results
    # must agree bit for bit, with a per-example scale (wrong rows would change decisions),
    # N_max not a multiple of the chunk, and every form of target
    gen = torch.Generator().manual_seed(4)
    batch, d, chunk, max_samples = 6, 6, 7, 151
    p = torch.rand(batch, d, generator=gen, dtype=torch.float64) ** 3
    scale = 0.2 + torch.rand(batch, generator=gen, dtype=torch.float64)
    length = max_samples + batch * chunk * 2
    if binary:
        streams = torch.bernoulli(p.unsqueeze(1).expand(-1, length, -1), generator=gen)
    else:
        noise = torch.rand(batch, length, d, generator=gen, dtype=torch.float64) - 0.5
        streams = (p.unsqueeze(1) + 0.3 * noise).clamp(0, 1)

    def run(target, fill):
        read = torch.zeros(batch, dtype=torch.int64)

        def draw(active, n_chunk):
            out = torch.stack([streams[i, read[i] : read[i] + n_chunk] for i in active.tolist()])
            read[active] += n_chunk
            return out

        def build(lo, up, n, index):
            return GaussianTopKCertificate(
                lo, up, noise=GaussianNoise(), norm="l2", scale=scale[index], n=int(n.max()),
                alpha=0.1, bound="betting_sequence",
            )  # fmt: skip

        return certify_sequentially(
            draw, build, target, batch_size=batch, alpha=0.1, max_samples=max_samples,
            chunk=chunk, binary=binary, fill_batch=fill,
        )  # fmt: skip

    targets = [
        CertificationTarget(k=2, radius=0.15, overlap=0.5),
        CertificationTarget(k=3, overlap=0.5, precision=0.05),
        CertificationTarget(
            k=2, radius=0.1, overlap=1.0, futility="projected", forecast_margin=1.5
        ),
    ]
    staggered = 0
    for target in targets:
        plain, filled = run(target, False), run(target, True)
        for a, b in zip(plain, filled):
            assert torch.equal(a, b)
        used = filled[2]
        assert int(used.max()) <= max_samples
        staggered += len(set(used.tolist())) > 1  # examples stopped at different times
        for i in range(batch):  # the mean is that of the first used samples of the stream
            torch.testing.assert_close(filled[4][i], streams[i, : int(used[i])].mean(0))
    assert staggered >= 1
