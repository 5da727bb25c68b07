"""Batched Kendall tau-b / Spearman rho vs a Python loop over scipy, at ImageNet size.

64 pairs of maps of d = 3 * 224 * 224 = 150528 values: half continuous (|gradient|-like
smooth fields plus noise), half "sparsified SmoothGrad"-like maps, i.e. means of 16 binary
top-10 % masks of noisy smooth fields: values in {0, 1/16, ..., 1} with ~80 % zeros, so
massive ties. Each timing is the best of ``--repeats`` runs, in one process; the batched
functions are checked against scipy.

    python benchmarks/bench_metrics.py [--n-maps 64] [--repeats 3] [--threads N]

On a machine whose cores are shared with other jobs, OpenMP threads that spin-wait at every
parallel region can make torch many times slower; use ``--threads 1`` or set
``OMP_WAIT_POLICY=PASSIVE`` there. scipy runs single-threaded either way.
"""

import argparse
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from _harness import best_of
from scipy import stats

from captum_certified import metrics as M


def smooth_field(n, gen, size=224, channels=3):
    noise = torch.randn(n, channels, size // 8, size // 8, generator=gen)
    return F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False)


def continuous_pairs(n, gen):
    base = smooth_field(n, gen).abs() + 0.1 * torch.rand(n, 3, 224, 224, generator=gen)
    other = (
        base + 0.3 * smooth_field(n, gen).abs() + 0.1 * torch.rand(n, 3, 224, 224, generator=gen)
    )
    return base.reshape(n, -1), other.reshape(n, -1)


def sparsified_pairs(n, gen, samples=16, density=0.1):
    def sparsified(field):
        acc = torch.zeros(n, field[0].numel())
        for _ in range(samples):
            noisy = (field + 0.5 * torch.randn(field.shape, generator=gen)).reshape(n, -1).abs()
            k = int(density * noisy.shape[1])
            top = noisy.topk(k, dim=1).indices
            acc.scatter_add_(1, top, torch.ones_like(top, dtype=acc.dtype))
        return acc / samples

    base = smooth_field(n, gen)
    other = base + 0.3 * smooth_field(n, gen)
    return sparsified(base), sparsified(other)


def scipy_loop(fn, a, b):
    an, bn = a.numpy(), b.numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([fn(an[i], bn[i]).statistic for i in range(an.shape[0])])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-maps", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(0)
    half = args.n_maps // 2
    ca, cb = continuous_pairs(half, gen)
    sa, sb = sparsified_pairs(args.n_maps - half, gen)
    a, b = torch.cat([ca, sa]), torch.cat([cb, sb])
    zeros = (sa == 0).float().mean().item()
    distinct = np.mean([len(torch.unique(r)) for r in sa])
    print(
        f"{args.n_maps} map pairs, d = {a.shape[1]}, float32; sparsified half: "
        f"{100 * zeros:.0f}% zeros, {distinct:.0f} distinct values per map; "
        f"torch threads = {torch.get_num_threads()}, best of {args.repeats}"
    )
    header = ("statistic", "batched torch", "scipy loop", "speed-up", "max |diff|")
    print(f"{header[0]:<12} {header[1]:>14} {header[2]:>12} {header[3]:>9} {header[4]:>11}")
    for name, ours, ref in [
        ("kendall_tau", M.kendall_tau, stats.kendalltau),
        ("spearman_rho", M.spearman_rho, stats.spearmanr),
    ]:
        t_ours, v_ours = best_of(lambda: ours(a, b), args.repeats)  # noqa: B023
        t_ref, v_ref = best_of(lambda: scipy_loop(ref, a, b), args.repeats)  # noqa: B023
        diff = np.abs(v_ours.double().numpy() - v_ref).max()
        print(f"{name:<12} {t_ours:>13.3f}s {t_ref:>11.3f}s {t_ref / t_ours:>8.2f}x {diff:>11.1e}")
        for part, sl in (("continuous", slice(0, half)), ("sparsified", slice(half, None))):
            t_o, _ = best_of(lambda: ours(a[sl], b[sl]), args.repeats)  # noqa: B023
            t_r, _ = best_of(lambda: scipy_loop(ref, a[sl], b[sl]), args.repeats)  # noqa: B023
            print(f"  {part:<10} {t_o:>13.3f}s {t_r:>11.3f}s {t_r / t_o:>8.2f}x")


if __name__ == "__main__":
    main()
