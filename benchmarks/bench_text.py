"""Cost of certified token attributions against Captum's plain LayerIntegratedGradients.

Issue 24: ``CertifiedWrapper(LayerIntegratedGradients(model, model.embedding),
noise_layer=model.embedding)`` with the per-token top-K map and ``return_certificate=True``,
against Captum's ``LayerIntegratedGradients`` on the same number of rows (the token ids
repeated ``nt_samples`` times), i.e. at equal sample count: the same forward/backward passes
(``n_steps`` each), so the ratio is the engine's overhead per sample (capturing the embedding
once, drawing the noise, the per-token transform, the statistics and the certificate). The
model is the package's transformer text classifier (random weights: timing only).

    PYTHONPATH=. python benchmarks/bench_text.py            # ~1-2 min, 1 thread
    PYTHONPATH=. python benchmarks/bench_text.py --quick
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch
from captum.attr import LayerIntegratedGradients

sys.path.insert(0, str(Path(__file__).parent))
from _harness import best_interleaved, environment  # noqa: E402

from captum_certified.attr import CertifiedWrapper  # noqa: E402
from captum_certified.text import TokenTransformerClassifier  # noqa: E402
from captum_certified.transforms import Compose, TokenReduce, TopKBinarize  # noqa: E402


def certified(model, ids, n, chunk, n_steps):
    cw = CertifiedWrapper(
        LayerIntegratedGradients(model, model.embedding),
        noise_layer=model.embedding,
        transform=Compose(TokenReduce("l2"), TopKBinarize(3)),
    )
    return cw.attribute(
        ids,
        target=1,
        n_steps=n_steps,
        nt_samples=n,
        nt_samples_batch_size=chunk,
        stdevs=0.05,
        return_certificate=True,
        generator=torch.Generator().manual_seed(0),
    )


def plain(model, ids, n, chunk, n_steps):
    lig = LayerIntegratedGradients(model, model.embedding)
    rows = ids.repeat_interleave(chunk, dim=0)
    base = torch.zeros_like(rows)
    out = None
    for _ in range(n // chunk):  # the same chunking as the certified run
        out = lig.attribute(rows, baselines=base, target=1, n_steps=n_steps)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(environment())
    configs = [(32, 64, 2, 256, 32, 8), (16, 32, 1, 128, 64, 16)]
    if args.quick:
        configs = [(16, 32, 1, 64, 32, 8)]
    repeats = 2 if args.quick else 3
    print(
        "T  dim layers | n  chunk n_steps | plain LIG s | certified s | ratio (wall) | ratio (cpu)"
    )
    for length, dim, layers, n, chunk, n_steps in configs:
        torch.manual_seed(0)
        model = TokenTransformerClassifier(1000, dim=dim, layers=layers, heads=2).eval()
        ids = torch.randint(3, 1000, (1, length), generator=torch.Generator().manual_seed(0))
        wall, cpu = best_interleaved(
            [
                partial(plain, model, ids, n, chunk, n_steps),
                partial(certified, model, ids, n, chunk, n_steps),
            ],
            repeats,
        )
        print(
            f"{length:2d} {dim:3d} {layers:6d} | {n:3d} {chunk:5d} {n_steps:7d} | "
            f"{wall[0]:11.3f} | {wall[1]:11.3f} | {wall[1] / wall[0]:12.3f} | "
            f"{cpu[1] / cpu[0]:11.3f}"
        )


if __name__ == "__main__":
    main()
