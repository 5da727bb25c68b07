"""Fewer samples for the same proof (issue 26): betting bands, sequential certification, one
pass for several settings.

1. Betting vs Bernoulli-KL band on the same samples (SparseSmoothGrad relaxed and linear):
   mean certified l2 radius at 50 % and 80 % top-K overlap, equal n.
2. Sequential certification toward a target vs the fixed-n default at N: the target radius is
   the median certified radius of the fixed-n run; the fraction of the fixed-n certifications
   the sequential run also makes, and its mean samples per example.
3. One sampling pass with 3 sparsities vs 3 passes: wall time.
4. Certified results per second vs the seed paper's pipeline (one sample per forward pass,
   Hoeffding band).
5. The same through the engine (``SparseSmoothGrad(stop_when=...)``, ``attribute_settings``).
6. The cost of the second moment on binary maps: ``BandCertifier.needs_second_moment`` makes
   the engine keep the centred second moment, which the band of a binary map never reads; a
   fixed-n binary run with and without it, and ``StreamingMoments`` alone on the same maps.
7. Searching the radius: ``CertificationTarget(k, overlap=0.5, precision=eps)`` through the
   engine; per eps, mean samples per example, how many resolved (R_best - R_cert <= eps) and
   the mean bracket width R_best - R_cert at the stop.

Setup: ``--model digits`` (default): the embedded digits CNN (8x8 inputs, d = 64, trained once
and cached); ``--model digits28``: the same digits upsampled to 28x28 (d = 784, MNIST-sized)
and ``_harness.SmallCNN`` trained on them (``_digits28.py``, cached). Correctly classified test
digits, sigma = 0.25, tau = 10 %, K = 20 %, alpha = 0.05.

    python benchmarks/bench_sequential.py [--model digits28] [--n 1024] [--examples 8]
        [--threads 1] [--sections 1234567]
"""

from __future__ import annotations

import argparse
import time

import torch

from captum_certified.attr import SparseSmoothGrad
from captum_certified.attr._core.default_certifiers import default_certifier
from captum_certified.certify import (
    CertificationTarget,
    GaussianTopKCertificate,
    StopDecision,
    StreamingMoments,
    clopper_pearson_band,
    hoeffding_band,
)
from captum_certified.certify._core.sequential import certify_sequentially
from captum_certified.certify._core.settings import SettingStatistics
from captum_certified.cli import default_digits_model, load_digits_split
from captum_certified.noise import GaussianNoise
from captum_certified.transforms import TopKBinarize

SIGMA, TAU, K, ALPHA = 0.25, 0.1, 0.2, 0.05


def examples(count: int, name: str = "digits"):
    if name == "digits28":
        from _digits28 import digits28_model, digits28_split

        model, accuracy = digits28_model()
        _, _, x, y = digits28_split(seed=0)
    else:
        model = default_digits_model()
        _, _, x, y = load_digits_split(seed=0)
        with torch.no_grad():
            accuracy = (model(x).argmax(1) == y).float().mean().item()
    for p in model.parameters():
        p.requires_grad_(False)
    print(f"model {name}: d = {x[0].numel()}, test accuracy {accuracy:.4f} ({len(x)} digits)")
    with torch.no_grad():
        pred = model(x).argmax(1)
    keep = (pred == y).nonzero().squeeze(-1)[:count]
    return model, x[keep], y[keep]


def betting_vs_kl(model, x, y, n: int) -> None:
    print(f"\n== 1. Betting vs KL band, same samples, n = {n}, {len(x)} digits ==")
    print(
        f"{'variant':>8} {'overlap':>8} {'KL':>8} {'betting':>8} {'ratio':>6} "
        f"{'KL>0':>5} {'bet>0':>5} {'bet>KL':>6} {'bet<KL':>6}"
    )
    for variant in ("relaxed", "linear"):
        kwargs = {"clip": 0.05} if variant == "relaxed" else {}
        ssg = SparseSmoothGrad(model, sparsity=TAU, variant=variant, **kwargs)
        certs = {}
        for bound in ("kl", "betting"):
            _, certs[bound] = ssg.attribute(
                x,
                target=y,
                nt_samples=n,
                nt_samples_batch_size=256,
                stdevs=SIGMA,
                return_certificate=True,
                alpha=ALPHA,
                bound=bound,
                generator=torch.Generator().manual_seed(0),
            )
        for overlap in (0.5, 0.8):
            r_kl = certs["kl"].certified_radius(K, overlap)
            r_bet = certs["betting"].certified_radius(K, overlap)
            kl, bet = r_kl.mean().item(), r_bet.mean().item()
            ratio = f"{bet / kl:6.2f}" if kl > 0 else f"{'-':>6}"
            print(
                f"{variant:>8} {overlap:8.1f} {kl:8.4f} {bet:8.4f} {ratio} "
                f"{int((r_kl > 0).sum()):5d} {int((r_bet > 0).sum()):5d} "
                f"{int((r_bet > r_kl).sum()):6d} {int((r_bet < r_kl).sum()):6d}"
            )


def saliency_maps(model, x, y, active, n_chunk, gen, transform) -> torch.Tensor:
    """Per-sample maps of SparseSmoothGrad (absolute gradient, then ``transform``) for the
    examples ``active``: ``(len(active), n_chunk, d)``, one batched backward pass."""
    xa = x[active].repeat_interleave(n_chunk, 0)
    noisy = (xa + SIGMA * torch.randn(xa.shape, generator=gen)).requires_grad_()
    out = model(noisy).gather(1, y[active].repeat_interleave(n_chunk).unsqueeze(1)).sum()
    (grad,) = torch.autograd.grad(out, noisy)
    return transform(grad.abs().flatten(1)).reshape(len(active), n_chunk, -1)


def gaussian_cert(lower, upper, n):
    return GaussianTopKCertificate(
        lower,
        upper,
        noise=GaussianNoise(),
        norm="l2",
        scale=torch.full((lower.shape[0],), SIGMA, dtype=torch.float64),
        n=int(n.max()) if isinstance(n, torch.Tensor) else n,
        alpha=ALPHA,
        bound="betting_sequence",
    )


def fixed_n_run(model, x, y, n: int):
    """The fixed-n binary top-tau certificate (Clopper-Pearson) of section 2 and its wall time;
    computed once and shared by every (futility, N_max) row."""
    transform = TopKBinarize(TAU)
    gen = torch.Generator().manual_seed(1)
    everyone = torch.arange(len(x))
    t0 = time.perf_counter()
    total = torch.zeros(len(x), x[0].numel(), dtype=torch.float64)
    for _ in range(0, n, 512):
        total += saliency_maps(model, x, y, everyone, 512, gen, transform).sum(
            1, dtype=torch.float64
        )
    lower, upper = clopper_pearson_band(total, n, ALPHA)
    return gaussian_cert(lower, upper, n), time.perf_counter() - t0


def stopping(spec: str) -> dict:
    """``"proven"``, ``"projected"`` or ``"projected:MARGIN"`` as CertificationTarget
    arguments."""
    futility, _, margin = spec.partition(":")
    return {"futility": futility, "forecast_margin": float(margin or 0.0)}


def sequential_vs_fixed(
    model, x, y, n: int, max_samples: int, chunk: int, futility: str, fixed_run
) -> None:
    print(
        f"\n== 2. Sequential (N_max = {max_samples}, chunks of {chunk}) vs fixed n = {n}, "
        f"binary top-{TAU:.0%}, {len(x)} digits, futility {futility!r} =="
    )
    transform = TopKBinarize(TAU)
    fixed, t_fixed = fixed_run
    gen = torch.Generator().manual_seed(3)  # the same sequential stream for every row
    radius = fixed.certified_radius(K, 0.5).median().item()
    target = CertificationTarget(k=K, radius=radius, overlap=0.5, **stopping(futility))
    fixed_ok = target.reached(fixed)
    t0 = time.perf_counter()
    lo, up, used, _, _ = certify_sequentially(
        lambda active, m: saliency_maps(model, x, y, active, m, gen, transform),
        lambda lo, up, n, index: gaussian_cert(lo, up, n),
        target,
        batch_size=len(x),
        alpha=ALPHA,
        max_samples=max_samples,
        chunk=chunk,
        binary=True,
    )
    t_seq = time.perf_counter() - t0
    seq_ok = target.reached(gaussian_cert(lo, up, used))
    both = (seq_ok & fixed_ok).sum().item()
    print(f"target: top-{K:.0%} overlap 0.5 at radius {radius:.4f} (fixed-n median)")
    print(f"fixed n = {n}: certifies {int(fixed_ok.sum())} / {len(x)}, {t_fixed:.1f} s")
    print(
        f"sequential: certifies {int(seq_ok.sum())} / {len(x)}, of the fixed-n ones "
        f"{both} / {int(fixed_ok.sum())} = {both / max(int(fixed_ok.sum()), 1):.0%}; "
        f"mean samples {used.double().mean().item():.0f} = "
        f"{used.double().mean().item() / n:.2f} x {n}; {t_seq:.1f} s"
    )
    print("samples used:", sorted(used.tolist()))
    q = torch.quantile(
        used.double(), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    )
    print("samples used, quantiles 0/25/50/75/100 %:", [int(v) for v in q.tolist()])


def raw_gradients(model, x, y, n_chunk, gen) -> torch.Tensor:
    xa = x.repeat_interleave(n_chunk, 0)
    noisy = (xa + SIGMA * torch.randn(xa.shape, generator=gen)).requires_grad_()
    out = model(noisy).gather(1, y.repeat_interleave(n_chunk).unsqueeze(1)).sum()
    (grad,) = torch.autograd.grad(out, noisy)
    return grad.abs().flatten(1)


def one_pass_vs_three(model, x, y, n: int, chunk: int) -> None:
    taus = (0.05, 0.1, 0.2)
    print(f"\n== 3. One pass with sparsities {taus} vs 3 passes, n = {n}, {len(x)} digits ==")
    transforms = [TopKBinarize(t) for t in taus]

    def one_pass():
        stats = SettingStatistics(transforms)
        gen = torch.Generator().manual_seed(0)
        for _ in range(0, n, chunk):
            stats.update((raw_gradients(model, x, y, chunk, gen),), batch=len(x), n_chunk=chunk)
        return [s.total for s in stats.statistics]

    def three_passes():
        out = []
        for t in transforms:
            stats = StreamingMoments()
            gen = torch.Generator().manual_seed(0)
            for _ in range(0, n, chunk):
                stats.update(t(raw_gradients(model, x, y, chunk, gen)).reshape(len(x), chunk, -1))
            out.append(stats.total)
        return out

    def single_pass():
        stats = SettingStatistics(transforms[1:2])
        gen = torch.Generator().manual_seed(0)
        for _ in range(0, n, chunk):
            stats.update((raw_gradients(model, x, y, chunk, gen),), batch=len(x), n_chunk=chunk)
        return [s.total for s in stats.statistics]

    times: dict[str, float] = {}
    results = {}
    for _ in range(3):  # best of 3, interleaved (the machine is shared)
        for name, fn in (("one", one_pass), ("three", three_passes), ("single", single_pass)):
            t0 = time.perf_counter()
            results[name] = fn()
            times[name] = min(times.get(name, 1e9), time.perf_counter() - t0)
    same = all(torch.equal(a, b) for a, b in zip(results["one"], results["three"]))
    one, three, single = times["one"], times["three"], times["single"]
    print(
        f"one pass, 3 settings: {one:.2f} s; one pass, 1 setting: {single:.2f} s; "
        f"3 passes: {three:.2f} s (best of 3)"
    )
    print(
        f"3 settings / 1 setting in one pass = {one / single:.2f}; 3 passes / one pass = "
        f"{three / one:.2f}; same statistics as 3 passes: {same}"
    )


def results_per_second(model, x, y, max_samples: int, chunk: int, paper_n: int) -> None:
    print(
        f"\n== 4. Certified results per second, {len(x)} digits: sequential (N_max = "
        f"{max_samples}, chunks of {chunk}, projected futility) vs the paper's pipeline (one "
        f"sample per pass, Hoeffding, n = {paper_n}) =="
    )
    transform = TopKBinarize(TAU)
    gen = torch.Generator().manual_seed(2)
    # the paper's pipeline: one noisy sample per forward/backward pass
    t0 = time.perf_counter()
    total = torch.zeros(len(x), x[0].numel(), dtype=torch.float64)
    for i in range(len(x)):
        one = torch.tensor([i])
        for _ in range(paper_n):
            total[i] += saliency_maps(model, x, y, one, 1, gen, transform)[0, 0].double()
    lower, upper = hoeffding_band(total / paper_n, paper_n, ALPHA)
    paper = gaussian_cert(lower, upper, paper_n)
    t_paper = time.perf_counter() - t0
    radius = paper.certified_radius(K, 0.5).median().item()
    target = CertificationTarget(k=K, radius=radius, overlap=0.5, futility="projected")
    paper_ok = int(target.reached(paper).sum())
    t0 = time.perf_counter()
    lo, up, used, _, _ = certify_sequentially(
        lambda active, m: saliency_maps(model, x, y, active, m, gen, transform),
        lambda lo, up, n, index: gaussian_cert(lo, up, n),
        target,
        batch_size=len(x),
        alpha=ALPHA,
        max_samples=max_samples,
        chunk=chunk,
        binary=True,
    )
    t_seq = time.perf_counter() - t0
    ours = target.reached(gaussian_cert(lo, up, used))
    ours_ok = int(ours.sum())
    both = int((ours & target.reached(paper)).sum())
    rate_paper, rate_ours = paper_ok / t_paper, ours_ok / t_seq
    print(f"target: overlap 0.5 at radius {radius:.4f} (median of the paper pipeline)")
    print(f"paper: {paper_ok} certified in {t_paper:.1f} s = {rate_paper:.3f} / s")
    print(
        f"ours: {ours_ok} certified ({both} of the paper's) in {t_seq:.2f} s = "
        f"{rate_ours:.2f} / s; mean samples {used.double().mean().item():.0f}"
    )
    print(f"ratio: {rate_ours / max(rate_paper, 1e-300):.1f}x")


def engine_runs(model, x, y, n: int, max_samples: int, chunk: int) -> None:
    print(
        f"\n== 5. Through the engine (SparseSmoothGrad): stop_when vs fixed n = {n}; "
        f"attribute_settings (3 sparsities) vs attribute, {len(x)} digits =="
    )
    ssg = SparseSmoothGrad(model, sparsity=TAU)
    kw = dict(target=y, stdevs=SIGMA, alpha=ALPHA, return_certificate=True)
    t0 = time.perf_counter()
    _, fixed = ssg.attribute(
        x, nt_samples=n, nt_samples_batch_size=512, generator=torch.Generator().manual_seed(0), **kw
    )
    t_fixed = time.perf_counter() - t0
    radius = fixed.certified_radius(K, 0.5).median().item()
    for futility in ("proven", "projected"):
        target = CertificationTarget(k=K, radius=radius, overlap=0.5, futility=futility)
        t0 = time.perf_counter()
        _, seq = ssg.attribute(
            x,
            nt_samples=max_samples,
            nt_samples_batch_size=chunk,
            stop_when=target,
            generator=torch.Generator().manual_seed(1),
            **kw,
        )
        t_seq = time.perf_counter() - t0
        fixed_ok, seq_ok = target.reached(fixed), target.reached(seq)
        both = int((fixed_ok & seq_ok).sum())
        print(
            f"{futility:>9}: fixed {int(fixed_ok.sum())} certified in {t_fixed:.1f} s; "
            f"sequential {int(seq_ok.sum())} ({both} / {int(fixed_ok.sum())} of fixed) in "
            f"{t_seq:.1f} s, mean samples {seq.samples_used.double().mean().item():.0f} "
            f"= {seq.samples_used.double().mean().item() / n:.2f} x {n}"
        )
    transforms = [TopKBinarize(t) for t in (0.05, 0.1, 0.2)]
    times: dict[str, float] = {}
    for _ in range(3):
        for name in ("settings", "single"):
            t0 = time.perf_counter()
            if name == "settings":
                ssg.attribute_settings(
                    x,
                    transforms,
                    nt_samples=1024,
                    nt_samples_batch_size=256,
                    generator=torch.Generator().manual_seed(0),
                    **kw,
                )
            else:
                ssg.attribute(
                    x,
                    nt_samples=1024,
                    nt_samples_batch_size=256,
                    generator=torch.Generator().manual_seed(0),
                    **kw,
                )
            times[name] = min(times.get(name, 1e9), time.perf_counter() - t0)
    print(
        f"attribute_settings (3 sparsities, n = 1024): {times['settings']:.2f} s; one attribute: "
        f"{times['single']:.2f} s; ratio {times['settings'] / times['single']:.2f} (best of 3)"
    )


def second_moment_cost(model, x, y, n: int) -> None:
    print(
        f"\n== 6. Cost of the second moment on binary maps (BandCertifier.needs_second_moment), "
        f"fixed n = {n}, {len(x)} digits =="
    )
    ssg = SparseSmoothGrad(model, sparsity=TAU)
    kw = dict(target=y, stdevs=SIGMA, alpha=ALPHA, return_certificate=True)
    with_m2 = default_certifier(GaussianNoise())
    without = default_certifier(GaussianNoise())
    without.needs_second_moment = False  # the band of a binary map reads only the counts
    assert with_m2.needs_second_moment

    def run(certifier):
        ssg.certifier = certifier
        return ssg.attribute(
            x,
            nt_samples=n,
            nt_samples_batch_size=512,
            generator=torch.Generator().manual_seed(0),
            **kw,
        )

    engine: dict[str, float] = {}
    out = {}
    for _ in range(3):  # best of 3, interleaved
        for name, certifier in (("with", with_m2), ("without", without)):
            t0 = time.perf_counter()
            out[name] = run(certifier)
            engine[name] = min(engine.get(name, 1e9), time.perf_counter() - t0)
    ssg.certifier = None
    same = torch.equal(out["with"][1].lower, out["without"][1].lower) and torch.equal(
        out["with"][1].upper, out["without"][1].upper
    )
    # the statistics alone, on the same binary maps (precomputed)
    gen = torch.Generator().manual_seed(0)
    everyone = torch.arange(len(x))
    chunks = [
        saliency_maps(model, x, y, everyone, 512, gen, TopKBinarize(TAU)) for _ in range(0, n, 512)
    ]
    alone: dict[str, float] = {}
    for _ in range(3):
        for name, track in (("with", True), ("without", False)):
            t0 = time.perf_counter()
            stats = StreamingMoments(track_second_moment=track)
            for c in chunks:
                stats.update(c)
            alone[name] = min(alone.get(name, 1e9), time.perf_counter() - t0)
    print(
        f"engine, fixed n = {n}: with second moment {engine['with']:.2f} s, without "
        f"{engine['without']:.2f} s (x{engine['with'] / engine['without']:.3f}, best of 3); "
        f"same band: {same}"
    )
    print(
        f"StreamingMoments alone on the same maps: with {alone['with']:.3f} s, without "
        f"{alone['without']:.3f} s (+{alone['with'] - alone['without']:.3f} s = "
        f"{(alone['with'] - alone['without']) / engine['without']:.1%} of the engine run)"
    )


def radius_search(
    model, x, y, max_samples: int, chunk: int, precisions: list[float], futilities: list[str]
) -> None:
    print(
        f"\n== 7. Radius search, top-{K:.0%} overlap 0.5, SparseSmoothGrad sparsity {TAU}, "
        f"N_max = {max_samples}, chunks of {chunk}, {len(x)} digits =="
    )
    ssg = SparseSmoothGrad(model, sparsity=TAU)
    print(
        f"{'precision':>9} {'futility':>11} {'samples':>8} {'resolved':>8} {'median gap':>10} "
        f"{'R_cert':>7}"
    )
    for futility in futilities:
        for eps in precisions:
            target = CertificationTarget(k=K, overlap=0.5, precision=eps, **stopping(futility))
            _, cert = ssg.attribute(
                x,
                target=y,
                nt_samples=max_samples,
                nt_samples_batch_size=chunk,
                stdevs=SIGMA,
                return_certificate=True,
                alpha=ALPHA,
                stop_when=target,
                generator=torch.Generator().manual_seed(0),
            )
            gap = (cert.stop_radius_best - cert.stop_radius).median().item()  # inf-safe
            resolved = int((cert.stop_decision == StopDecision.RESOLVED).sum())
            print(
                f"{eps:9.3f} {futility:>11} {cert.samples_used.double().mean().item():8.0f} "
                f"{resolved:>4} / {len(x):<2} {gap:10.4f} "
                f"{cert.stop_radius.mean().item():7.4f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("digits", "digits28"), default="digits")
    parser.add_argument("--n", type=int, nargs="+", default=[1024])
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sections", default="1234")
    parser.add_argument("--fixed-n", type=int, default=4096)
    parser.add_argument("--max-samples", type=int, nargs="+", default=[4096, 8192])
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument(
        "--futility",
        nargs="+",
        default=["proven", "projected", "projected:1"],
        help="proven, projected, or projected:MARGIN (forecast_margin in standard errors)",
    )
    parser.add_argument("--paper-n", type=int, default=4096)
    parser.add_argument("--m2-n", type=int, default=None, help="section 6 n (default --fixed-n)")
    parser.add_argument("--paper-examples", type=int, default=8)
    parser.add_argument("--precision", type=float, nargs="+", default=[0.2, 0.1, 0.05, 0.02])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, x, y = examples(args.examples, args.model)
    start = time.perf_counter()
    if "1" in args.sections:
        for n in args.n:
            betting_vs_kl(model, x, y, n)
    if "2" in args.sections:
        fixed = fixed_n_run(model, x, y, args.fixed_n)
        for futility in args.futility:
            for max_samples in args.max_samples:
                sequential_vs_fixed(
                    model, x, y, args.fixed_n, max_samples, args.chunk, futility, fixed
                )
    if "3" in args.sections:
        one_pass_vs_three(model, x, y, args.n[0], args.chunk)
    if "4" in args.sections:
        results_per_second(
            model,
            x[: args.paper_examples],
            y[: args.paper_examples],
            8192,
            args.chunk,
            args.paper_n,
        )
    if "5" in args.sections:
        engine_runs(model, x, y, args.fixed_n, 8192, args.chunk)
    if "6" in args.sections:
        second_moment_cost(model, x, y, args.m2_n or args.fixed_n)
    if "7" in args.sections:
        radius_search(model, x, y, 4096, args.chunk, args.precision, args.futility)
    print(f"\n(total {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
