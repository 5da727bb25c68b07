"""Per-chunk cost of each stage of SparseSmoothGrad + certificate vs a hand-written gradient.

Every stage (forward+backward written by hand, Captum's ``compute_gradients``, the engine's
single-root gradient, noise, the top-tau binarization, the certifier's sample check, the
streaming sums, the Clopper-Pearson band) is timed alone on one chunk of ``b`` noisy samples,
best of ``--repeats``, stages interleaved round-robin; the figures are far steadier than the
end-to-end ratios of ``bench_sparse_smoothgrad.py`` on a shared machine. Models and settings
(sigma, sparsity, alpha) are that benchmark's.

Usage::

    python benchmarks/bench_ssg_stages.py            # SmallCNN b = 64, 256; ResNet-18 b = 8, 32
    python benchmarks/bench_ssg_stages.py --quick    # without ResNet-18 b = 32
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import torch
from torch import Tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import best_interleaved, build, environment  # noqa: E402
from bench_sparse_smoothgrad import ALPHA, SIGMA, SPARSITY  # noqa: E402


def breakdown(configs: list[tuple[str, int, int]], repeats: int) -> None:
    """Per-chunk cost of each stage of SparseSmoothGrad+cert vs the hand-written gradient.

    Every stage is timed alone on one chunk of ``b`` noisy samples (best of ``repeats``,
    stages interleaved round-robin), so the figures are far steadier than end-to-end ratios
    on a shared machine.
    """
    for model_name, n, b in configs:
        reps = repeats if model_name == "SmallCNN" else max(2, repeats // 10)
        _breakdown_one(model_name, n, b, reps)


def _breakdown_one(model_name: str, n: int, b: int, reps: int) -> None:
    from captum._utils.gradient import compute_gradients

    from captum_certified.certify import (
        GaussianTopKCertifier,
        StreamingMoments,
        clopper_pearson_band,
    )
    from captum_certified.transforms import TopKBinarize, topk_mask

    try:  # the engine's single-root replacement for compute_gradients (private helper)
        from captum_certified._utils.captum_compat import summed_output_gradients
    except ImportError:  # older or newer layouts
        summed_output_gradients = None

    model, x, y = build(model_name, 1)
    gen = torch.Generator().manual_seed(0)
    z = x.repeat_interleave(b, 0) + torch.randn((b,) + x.shape[1:], generator=gen) * SIGMA
    z.requires_grad_(True)
    yb = y.repeat_interleave(b).unsqueeze(1)
    target = int(y.item())
    d = x[0].numel()
    k = int(SPARSITY * d + 1e-9)

    def hand() -> Tensor:
        return torch.autograd.grad(model(z).gather(1, yb).sum(), z)[0]

    grads = hand().abs().reshape(b, d)
    transform = TopKBinarize(SPARSITY)
    maps = transform(grads)
    certifier = GaussianTopKCertifier()
    stats = StreamingMoments()
    for _ in range(n // b):
        stats.update(maps.reshape(1, b, d))
    stages: list[tuple[str, Callable[[], object], int]] = [
        ("forward+backward, hand-written (one root)", hand, 1),
        (
            "  Captum compute_gradients (b roots, unbind)",
            lambda: compute_gradients(model, (z,), target),
            1,
        ),
    ]
    if summed_output_gradients is not None:
        stages.append(
            (
                "  engine summed_output_gradients",
                lambda: summed_output_gradients(model, (z,), target),
                1,
            )
        )
    stages += [
        ("randn noise", lambda: torch.randn((b,) + x.shape[1:], generator=gen), 1),
        ("abs (Saliency)", lambda: grads.abs(), 1),
        ("TopKBinarize (abs + topk_mask + to float)", lambda: transform(grads), 1),
        ("  topk_mask", lambda: topk_mask(grads, k), 1),
        ("  torch.topk values alone (floor)", lambda: grads.topk(k, 1, sorted=False), 1),
        (
            "  hand-written topk + scatter",
            lambda: torch.zeros_like(grads).scatter_(
                1, grads.topk(k, 1, sorted=False).indices, 1.0
            ),
            1,
        ),
        (
            "certifier.check_samples (min, max, isnan)",
            lambda: certifier.check_samples(maps, transform),
            1,
        ),
        (
            "StreamingMoments.update (float64 sum)",
            lambda: StreamingMoments().update(maps.reshape(1, b, d)),
            1,
        ),
        (
            "clopper_pearson_band (once per call, / chunks)",
            lambda: clopper_pearson_band(stats.total, stats.n, ALPHA),
            n // b,
        ),
    ]
    print(
        f"\n{model_name}, n = {n}, b = {b} ({n // b} chunks, d = {d}, k = {k}): ms per chunk, "
        f"best of {reps}; % of the hand-written forward+backward"
    )
    walls, _ = best_interleaved([fn for _, fn, _ in stages], reps)
    times = [1e3 * t for t in walls]
    base = times[0]
    for (name, _, per), ms in zip(stages, times):
        print(f"  {name:<48} {ms / per:9.3f} ms {100 * ms / per / base:6.1f} %")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip ResNet-18 with b = 32")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per stage")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(environment())
    cfgs = [("SmallCNN", 1024, 64), ("SmallCNN", 1024, 256), ("ResNet-18", 64, 8)]
    if not args.quick:
        cfgs.append(("ResNet-18", 64, 32))
    breakdown(cfgs, args.repeats)


if __name__ == "__main__":
    main()
