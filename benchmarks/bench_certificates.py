"""Old vs new certificate rules and bands, side by side, on the same numbers or samples.

1. Laplace noise, l1: the exact per-coordinate rule (``method="laplace"``) vs the Rényi-DP
   Hölder rule on the pairs of the issue, and on digits (RenyiRobustSmooth, Laplace noise):
   mean certified l1 radius at 50 % overlap, RDP ``holder``/``pairwise`` vs ``best``.
2. Uniform cube noise: the largest l1 / l2 / l_inf radius any pair can certify at the paper's
   ``r = 4/255`` on 3x32x32 (where l_inf is vacuous) and on digits.
3. Digits, SparseSmoothGrad relaxed and linear variants: Hoeffding vs the Bernoulli-KL band on
   the same samples (mean certified l2 radius at 50 % and 80 % overlap).
4. Digits, binary variant: our default certificate at n/2 and n/4 vs the paper's Hoeffding
   certificate at n: the fraction of (example, radius) pairs where ours certifies at least as
   much (radii 0, 0.025, ..., 0.3).

Setup: the embedded digits CNN (8x8 inputs, trained once and cached), 8 correctly classified
digits of different classes, sigma = 0.25, tau = 10 %, K = 20 %, alpha = 0.05.

    python benchmarks/bench_certificates.py [--n 1024] [--threads 1] [--sections 1234]
"""

from __future__ import annotations

import argparse
import math

import torch

from captum_certified.attr import RenyiRobustSmooth, SparseSmoothGrad
from captum_certified.certify import (
    CubeTopKCertificate,
    RDPTopKCertificate,
    laplace_pair_radius,
    rdp_orders,
)
from captum_certified.cli import default_digits_model, load_digits_split
from captum_certified.noise import LaplaceNoise, UniformCubeNoise

PAIRS = [(0.8, 0.3), (0.6, 0.4), (0.95, 0.05), (0.99, 0.5)]
SIGMA, TAU, K, ALPHA = 0.25, 0.1, 0.2, 0.05


def laplace_pairs() -> None:
    print("== 1a. Laplace l1, pair radius (b = 1): RDP Hölder vs exact Laplace rule ==")
    print(f"{'pair':>14} {'RDP holder':>11} {'exact':>8} {'ratio':>6} {'best picks':>11}")
    for qa, qb in PAIRS:
        band = torch.tensor([[qa, qb]], dtype=torch.float64)
        cert = RDPTopKCertificate(
            band,
            band,
            orders=rdp_orders(),
            noise=LaplaceNoise(),
            norm="l1",
            scale=torch.ones(1, dtype=torch.float64),
            n=1,
            alpha=ALPHA,
            bound="exact",
        )
        old = cert.certified_radius(1, 1.0, method="holder").item()
        new = cert.certified_radius(1, 1.0).item()
        exact = laplace_pair_radius(qa, qb, 1.0).item()
        assert abs(new - exact) <= 1e-8 * exact
        picks = cert.certifying_method(1, 0.5 * new)[0]
        print(f"{str((qa, qb)):>14} {old:11.4f} {new:8.4f} {old / new:6.2f} {picks:>11}")


def examples(count: int = 8):
    model = default_digits_model()
    for p in model.parameters():
        p.requires_grad_(False)
    _, _, x, y = load_digits_split(seed=0)
    with torch.no_grad():
        pred = model(x).argmax(1)
    chosen, seen = [], set()
    for i in range(len(x)):
        if pred[i] == y[i] and int(y[i]) not in seen:
            chosen.append(i)
            seen.add(int(y[i]))
        if len(chosen) == count:
            break
    return model, x[chosen], y[chosen]


def laplace_digits(model, x, y, n: int) -> None:
    print(f"\n== 1b. Digits, RenyiRobustSmooth topk, Laplace b = {SIGMA}, n = {n} ==")
    rrs = RenyiRobustSmooth(model, sparsity=TAU, scoring="topk")
    _, cert = rrs.attribute(
        x,
        target=y,
        nt_samples=n,
        nt_samples_batch_size=256,
        noise=LaplaceNoise(),
        noise_scale=SIGMA,
        return_certificate=True,
        alpha=ALPHA,
        generator=torch.Generator().manual_seed(0),
    )
    print(f"band: {cert.bound}; mean certified radius at 50 % top-{K:.0%} overlap")
    print(f"{'norm':>5} {'holder':>8} {'pairwise':>9} {'old best':>9} {'new best':>9} {'gain':>6}")
    for norm in ("l1", "l2"):
        holder = cert.certified_radius(K, 0.5, norm, "holder")
        pairwise = cert.certified_radius(K, 0.5, norm, "pairwise")
        old = torch.maximum(holder, pairwise)
        new = cert.certified_radius(K, 0.5, norm)
        gain = new.mean().item() / max(old.mean().item(), 1e-300)
        print(
            f"{norm:>5} {holder.mean().item():8.4f} {pairwise.mean().item():9.4f} "
            f"{old.mean().item():9.4f} {new.mean().item():9.4f} {gain:6.2f}"
        )
    print("certifying method at the old radius:", cert.certifying_method(K, old.mean().item()))


def cube_ceilings() -> None:
    print("\n== 2. Uniform cube noise: largest certifiable radius (L = 1, U = 0) ==")
    print(f"{'setting':>28} {'l1':>10} {'l2':>10} {'linf':>10}  (x 255)")
    for label, r, n_in in (
        ("r = 4/255, 3x32x32", 4 / 255, 3072),
        ("r = 0.25, digits 8x8", 0.25, 64),
    ):
        one = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
        cert = CubeTopKCertificate(
            one,
            one,
            num_input_features=n_in,
            noise=UniformCubeNoise(),
            norm="linf",
            scale=torch.tensor([r], dtype=torch.float64),
            n=1,
            alpha=ALPHA,
            bound="exact",
        )
        row = [255 * cert.max_radius(p).item() for p in ("l1", "l2", "linf")]
        print(f"{label:>28} {row[0]:10.4f} {row[1]:10.4f} {row[2]:10.6f}")


def bands_digits(model, x, y, n: int) -> None:
    print(f"\n== 3. Digits SparseSmoothGrad, sigma = {SIGMA}, n = {n}: Hoeffding vs KL band ==")
    print(f"{'variant':>8} {'overlap':>8} {'Hoeffding':>10} {'KL':>8} {'gain':>6}")
    for variant in ("relaxed", "linear"):
        # the default clip (1 %) selects no pixel out of 64
        kwargs = {"clip": 0.05} if variant == "relaxed" else {}
        ssg = SparseSmoothGrad(model, sparsity=TAU, variant=variant, **kwargs)
        certs = {}
        for bound in ("hoeffding", None):
            _, certs[bound] = ssg.attribute(
                x,
                target=y,
                stdevs=SIGMA,
                nt_samples=n,
                nt_samples_batch_size=256,
                return_certificate=True,
                alpha=ALPHA,
                bound=bound,
                generator=torch.Generator().manual_seed(1),
            )
        assert certs[None].bound == "kl"
        for overlap in (0.5, 0.8):
            old = certs["hoeffding"].certified_radius(K, overlap).mean().item()
            new = certs[None].certified_radius(K, overlap).mean().item()
            gain = new / old if old > 0 else math.inf
            print(f"{variant:>8} {overlap:8.1f} {old:10.4f} {new:8.4f} {gain:6.2f}")


def samples_table(model, x, y, n: int) -> None:
    print(f"\n== 4. Digits binary variant: default at n/2, n/4 vs paper's Hoeffding at n = {n} ==")
    radii = torch.linspace(0.0, 0.3, 13)
    ssg = SparseSmoothGrad(model, sparsity=TAU)
    curves = {}
    for label, count, bound in (
        ("hoeffding n", n, "hoeffding"),
        ("default n", n, None),
        ("default n/2", n // 2, None),
        ("default n/4", n // 4, None),
    ):
        _, cert = ssg.attribute(
            x,
            target=y,
            stdevs=SIGMA,
            nt_samples=count,
            nt_samples_batch_size=256,
            return_certificate=True,
            alpha=ALPHA,
            bound=bound,
            generator=torch.Generator().manual_seed(2),
        )
        curves[label] = (cert.overlap_curve(K, radii), cert.bound)
    ref = curves["hoeffding n"][0]
    print(f"{'certificate':>12} {'band':>16} {'>= paper@n':>11} {'mean overlap':>13}")
    for label, (curve, bound) in curves.items():
        frac = (curve >= ref).double().mean().item()
        print(f"{label:>12} {bound:>16} {frac:11.1%} {curve.mean().item():13.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="samples of the reference run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sections", default="1234", help="which sections to run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if "1" in args.sections:
        laplace_pairs()
    if "2" in args.sections:
        cube_ceilings()
    model, x, y = examples()
    if "1" in args.sections:
        laplace_digits(model, x, y, args.n)
    if "3" in args.sections:
        bands_digits(model, x, y, args.n)
    if "4" in args.sections:
        samples_table(model, x, y, args.n)


if __name__ == "__main__":
    main()
