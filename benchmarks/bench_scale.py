"""Certified attributions at ImageNet scale: ResNet-50 and ViT-B/16 (issue 25).

For each model it times, on one image of 3x224x224 and in one process:

- ``grad``: a hand-written batched input gradient (noise + forward + one backward of the
  target logit + ``|grad|`` sum), the floor every method is compared to;
- ``ssg+cert``: ``SparseSmoothGrad(sparsity=0.1)`` with ``return_certificate=True``;
- ``ig16+cert``: ``CertifiedWrapper(IntegratedGradients, transform=TopKBinarize(0.1))`` with
  ``n_steps=16`` and a certificate (16 gradient evaluations per noisy sample: its ratio is to
  16 hand-written gradients);
- ``feature+cert``: ``CertifiedWrapper(Saliency, TopKBinarize(0.1), FeatureCertifier())``;
- ``noisetunnel``: the drop-in ``captum_certified.attr.NoiseTunnel(Saliency)`` smoothgrad.

It prints per-sample wall and CPU time, samples per second, images per hour at
``n = 1024`` and ``8192`` (``--project``; ``3600 / (per-sample seconds x n)``, extrapolated
from the measured ``--n``: the per-sample cost does not depend on ``n``, since the engine
streams chunk by chunk), the peak memory of each call, the peak at ``n = --chunk`` against
``n = --n`` (flat in ``n``), and each method's ratio to the hand-written gradient. A second
table measures the fast-path options of :class:`captum_certified.attr.FastForward` (bf16 /
fp16 autocast, ``channels_last``, ``torch.compile``) on the hand-written gradient and on
``ssg+cert``, and ``torch.inference_mode`` against ``torch.no_grad`` on a forward-only pass
(perturbation methods), as speedups over eager float32.

Random seeded weights: the time of a forward/backward pass does not depend on the weights.
Peak memory is the RSS high-water mark on CPU (the script re-executes itself with glibc
set to return freed memory at once, see ``_harness.MALLOC_ENV``) and
``torch.cuda.max_memory_allocated`` on CUDA.

Examples::

    python benchmarks/bench_scale.py                          # CPU table, ~30 min on 2 busy cores
    python benchmarks/bench_scale.py --device cuda --n 1024 --chunk 128   # a GPU
    python benchmarks/bench_scale.py --tiny --n 4 --chunk 2   # smoke test (tiny models), seconds
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import MALLOC_ENV, PeakRSS, environment  # noqa: E402
from _scale_models import count_parameters, resnet50, vit_b16  # noqa: E402
from captum.attr import IntegratedGradients, Saliency  # noqa: E402

from captum_certified.attr import (  # noqa: E402
    CertifiedWrapper,
    FastForward,
    NoiseTunnel,
    SparseSmoothGrad,
)
from captum_certified.certify import FeatureCertifier  # noqa: E402
from captum_certified.transforms import TopKBinarize  # noqa: E402

MODELS: dict[str, Callable[[bool], nn.Module]] = {"resnet50": resnet50, "vit_b16": vit_b16}
METHODS = ("grad", "ssg+cert", "ig16+cert", "feature+cert", "noisetunnel")
OPTIONS = ("bf16", "fp16", "channels_last", "compile", "inference_mode")
IG_STEPS = 16
SPARSITY = 0.1


# --------------------------------------------------------------------------------------------
# Timing and memory on CPU or CUDA
# --------------------------------------------------------------------------------------------


class Probe:
    """Wall and process-CPU seconds and peak memory (MiB above the start) of one call."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def run(self, fn: Callable[[], Any]) -> dict[str, float]:
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            rss: AbstractContextManager[Any] = nullcontext()
        else:
            rss = PeakRSS()
        with rss as probe:
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize(self.device)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if cuda:
            peak = (torch.cuda.max_memory_allocated(self.device) - base) / 2**20
        else:
            peak = probe.mib
        return {"wall": wall, "cpu": cpu, "peak_mib": peak}


# --------------------------------------------------------------------------------------------
# The methods
# --------------------------------------------------------------------------------------------


def chunk_sizes(n: int, chunk: int) -> list[int]:
    return [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])


def hand_gradient(
    model: Callable[..., Tensor],
    x: Tensor,
    target: Tensor,
    n: int,
    chunk: int,
    sigma: float,
    gen: torch.Generator,
) -> Tensor:
    """The floor: noise + forward + one backward of the target logits + ``|grad|`` mean."""
    total = torch.zeros_like(x)
    for c in chunk_sizes(n, chunk):
        rep = x.repeat_interleave(c, dim=0)
        noisy = rep + sigma * torch.randn(rep.shape, generator=gen, device=x.device)
        noisy.requires_grad_()
        logits = model(noisy)
        picked = logits.gather(1, target.repeat_interleave(c)[:, None]).sum()
        (g,) = torch.autograd.grad(picked, noisy)
        total += g.abs().reshape((x.shape[0], c) + x.shape[1:]).sum(1)
    return total / n


def forward_only(
    model: Callable[..., Tensor],
    x: Tensor,
    n: int,
    chunk: int,
    sigma: float,
    gen: torch.Generator,
    inference: bool,
) -> Tensor:
    """Forward passes on noisy copies (what a perturbation method's sampling loop runs)."""
    ctx = torch.inference_mode if inference else torch.no_grad
    total = torch.zeros((), device=x.device)
    with ctx():
        for c in chunk_sizes(n, chunk):
            rep = x.repeat_interleave(c, dim=0)
            noisy = rep + sigma * torch.randn(rep.shape, generator=gen, device=x.device)
            total = total + model(noisy).sum()
    return total


def method_call(
    name: str,
    model: Callable[..., Tensor],
    x: Tensor,
    target: Tensor,
    n: int,
    chunk: int,
    sigma: float,
    gen: torch.Generator,
    ig_steps: int = IG_STEPS,
) -> Callable[[], Any]:
    common: dict[str, Any] = dict(
        target=target, nt_samples=n, nt_samples_batch_size=chunk, stdevs=sigma, generator=gen
    )
    if name == "grad":
        return lambda: hand_gradient(model, x, target, n, chunk, sigma, gen)
    if name == "ssg+cert":
        ssg = SparseSmoothGrad(model, sparsity=SPARSITY)
        return lambda: ssg.attribute(x, return_certificate=True, **common)
    if name == "ig16+cert":
        ig = CertifiedWrapper(IntegratedGradients(model), transform=TopKBinarize(SPARSITY))
        # IG evaluates n_steps rows per noisy sample: as many rows per chunk as the others
        common["nt_samples_batch_size"] = max(1, chunk // ig_steps)
        return lambda: ig.attribute(x, n_steps=ig_steps, return_certificate=True, **common)
    if name == "feature+cert":
        fc = CertifiedWrapper(
            Saliency(model), transform=TopKBinarize(SPARSITY), certifier=FeatureCertifier()
        )
        return lambda: fc.attribute(x, return_certificate=True, **common)
    if name == "noisetunnel":
        nt = NoiseTunnel(Saliency(model))
        return lambda: nt.attribute(x, nt_type="smoothgrad", **common)
    raise ValueError(f"unknown method {name!r}")


def fast_model(model: nn.Module, option: str) -> Callable[..., Tensor]:
    if option == "bf16":
        return FastForward(model, autocast=torch.bfloat16)
    if option == "fp16":
        return FastForward(model, autocast=torch.float16)
    if option == "channels_last":
        return FastForward(model, channels_last=True)
    if option == "compile":
        return FastForward(model, compile=True)
    raise ValueError(f"unknown option {option!r}")


# --------------------------------------------------------------------------------------------
# One model
# --------------------------------------------------------------------------------------------


def bench_model(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    torch.manual_seed(0)
    model = MODELS[name](args.tiny).eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    size = 32 if args.tiny else 224
    gen_data = torch.Generator().manual_seed(1)
    x = torch.rand((args.batch, 3, size, size), generator=gen_data).to(device)
    target = torch.randint(1000, (args.batch,), generator=gen_data).to(device)
    probe = Probe(device)

    def gen() -> torch.Generator:
        return torch.Generator(device=device).manual_seed(0)

    info: dict[str, Any] = {
        "model": name,
        "parameters_m": count_parameters(model) / 1e6,
        "input": list(x.shape[1:]),
        "n": args.n,
        "ig_n": args.ig_n,
        "chunk": args.chunk,
        "batch": args.batch,
    }
    # warm-up: the model's first-call costs (allocator, kernels), one chunk
    hand_gradient(model, x, target, args.chunk, args.chunk, args.sigma, gen())

    # each method once at n = 1 (IG with 2 steps): lazy imports and first-call costs
    for method in args.methods:
        method_call(method, model, x, target, 1, 1, args.sigma, gen(), ig_steps=2)()

    rows: dict[str, dict[str, float]] = {}
    for method in args.methods:
        n = args.ig_n if method == "ig16+cert" else args.n
        call = method_call(method, model, x, target, n, args.chunk, args.sigma, gen())
        r = probe.run(call)
        evals = IG_STEPS if method == "ig16+cert" else 1
        r.update(n=n, evals=evals, per_sample=r["wall"] / (n * args.batch))
        r["per_sample_cpu"] = r["cpu"] / (n * args.batch)
        rows[method] = r
        print(f"  {name} {method}: {r['wall']:.2f} s wall for n = {n}", file=sys.stderr)
    info["methods"] = rows
    if "grad" in rows:
        g = rows["grad"]
        for r in rows.values():
            r["ratio"] = r["per_sample"] / (g["per_sample"] * r["evals"])
            r["ratio_cpu"] = r["per_sample_cpu"] / (g["per_sample_cpu"] * r["evals"])

    # memory flat in n: ssg+cert at one chunk against the measured n
    if "ssg+cert" in rows and args.n > args.chunk:
        call = method_call("ssg+cert", model, x, target, args.chunk, args.chunk, args.sigma, gen())
        small = probe.run(call)
        info["memory"] = {
            "n_small": args.chunk,
            "peak_small": small["peak_mib"],
            "n_large": args.n,
            "peak_large": rows["ssg+cert"]["peak_mib"],
        }

    # fast-path options, each against eager float32 on the same n
    options: dict[str, dict[str, float]] = {}
    on = args.option_n
    for option in args.options:
        if option == "inference_mode":
            base = probe.run(
                lambda: forward_only(model, x, on, args.chunk, args.sigma, gen(), False)
            )
            fast = probe.run(
                lambda: forward_only(model, x, on, args.chunk, args.sigma, gen(), True)
            )
            options[option] = {"forward": base["wall"] / fast["wall"]}
            continue
        if option == "channels_last" and name != "resnet50":
            print(f"  channels_last skipped for {name}: not a CNN", file=sys.stderr)
            continue
        if option == "fp16" and device.type == "cpu":
            print("  fp16 autocast skipped on CPU (bf16 is CPU's 16-bit type)", file=sys.stderr)
            continue
        fmodel = fast_model(model, option)
        entry: dict[str, float] = {}
        if option == "compile":  # first call compiles forward and backward
            t0 = time.perf_counter()
            hand_gradient(fmodel, x, target, args.chunk, args.chunk, args.sigma, gen())
            entry["compile_s"] = time.perf_counter() - t0
        for method in ("grad", "ssg+cert"):
            eager = probe.run(
                method_call(method, model, x, target, on, args.chunk, args.sigma, gen())
            )
            faster = probe.run(
                method_call(method, fmodel, x, target, on, args.chunk, args.sigma, gen())
            )
            entry[method] = eager["wall"] / faster["wall"]
            entry[method + "_cpu"] = eager["cpu"] / max(faster["cpu"], 1e-9)
        options[option] = entry
        print(f"  {name} {option}: {entry}", file=sys.stderr)
    info["options"] = options
    return info


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def print_tables(results: list[dict[str, Any]], args: argparse.Namespace, header: str) -> None:
    print(header)
    print(
        f"device {args.device_resolved}; sigma {args.sigma}; sparsity {SPARSITY}; IG n_steps "
        f"{IG_STEPS}; nt_samples_batch_size {args.chunk}; batch {args.batch} image(s); "
        f"os.getloadavg() = {tuple(round(v, 1) for v in os.getloadavg())}"
    )
    print(
        f"images/hour at n = {args.project} are extrapolated from the per-sample time measured "
        "at the n of each row (3600 / (s/sample x n); the engine streams chunk by chunk, so the "
        "per-sample cost does not depend on n)"
    )
    proj = " | ".join(f"img/h n={p}" for p in args.project)
    print(
        f"\n| model | method | measured n | s/sample wall | s/sample CPU | samples/s | {proj} "
        "| peak MiB | ratio wall | ratio CPU |"
    )
    print("|" + "---|" * (9 + len(args.project)))
    for res in results:
        for method, r in res["methods"].items():
            per = r["per_sample"]
            imgs = " | ".join(f"{3600 / (per * p):.3g}" for p in args.project)
            ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
            ratio_cpu = f"{r['ratio_cpu']:.2f}" if "ratio_cpu" in r else "-"
            print(
                f"| {res['model']} | {method} | {r['n']} | {per:.3g} | {r['per_sample_cpu']:.3g} "
                f"| {1 / per:.3g} | {imgs} | {r['peak_mib']:.0f} | {ratio} | {ratio_cpu} |"
            )
    print(
        "\nratio: per-sample time over the hand-written gradient's (x16 for IG's 16 gradient "
        "evaluations per sample), same process, same n"
    )
    mem = [r for r in results if "memory" in r]
    if mem:
        print("\n| model | peak MiB ssg+cert, n = chunk | peak MiB, n = measured | ratio |")
        print("|---|---|---|---|")
        for r in mem:
            m = r["memory"]
            ratio = m["peak_large"] / m["peak_small"] if m["peak_small"] > 0 else float("nan")
            print(
                f"| {r['model']} | {m['peak_small']:.0f} (n={m['n_small']}) | "
                f"{m['peak_large']:.0f} (n={m['n_large']}) | {ratio:.2f} |"
            )
    opts = [r for r in results if r["options"]]
    if opts:
        print(
            f"\nFast-path options: speedup over eager float32 (wall; CPU in brackets), n = "
            f"{args.option_n}; inference_mode: forward-only pass against torch.no_grad"
        )
        print("\n| model | option | hand-written grad | ssg+cert | forward only | compile s |")
        print("|---|---|---|---|---|---|")
        for r in opts:
            for option, e in r["options"].items():

                def cell(key: str, e: dict[str, float] = e) -> str:
                    if key not in e:
                        return "-"
                    cpu = e.get(key + "_cpu")
                    return f"{e[key]:.2f}x" + (f" ({cpu:.2f}x)" if cpu is not None else "")

                compile_s = f"{e['compile_s']:.0f}" if "compile_s" in e else "-"
                print(
                    f"| {r['model']} | {option} | {cell('grad')} | {cell('ssg+cert')} | "
                    f"{cell('forward')} | {compile_s} |"
                )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Throughput of certified attributions on ResNet-50 and ViT-B/16 (3x224x224): "
            "per-sample time, samples/s, images/hour at n = 1024 and 8192, peak memory, "
            "ratio to a hand-written batched gradient, and the fast-path options."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--options",
        nargs="*",
        choices=OPTIONS,
        default=["bf16", "channels_last", "inference_mode"],
        help="fast-path options to measure (compile is slow to compile on CPU)",
    )
    parser.add_argument("--n", type=int, default=16, help="measured nt_samples per image")
    parser.add_argument("--ig-n", type=int, default=1, help="measured nt_samples for IG")
    parser.add_argument("--option-n", type=int, default=None, help="n for options (--chunk)")
    parser.add_argument("--chunk", type=int, default=8, help="nt_samples_batch_size")
    parser.add_argument("--batch", type=int, default=1, help="images per call")
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--project", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--tiny", action="store_true", help="tiny models (smoke test only)")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    for name in ("n", "ig_n", "chunk", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.option_n is None:
        args.option_n = args.chunk
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    args.device_resolved = args.device
    header = environment()
    if device.type == "cuda":
        header += f"; GPU {torch.cuda.get_device_name(device)}"
    results = [bench_model(name, args, device) for name in args.models]
    print_tables(results, args, header)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": header, "results": results}, f, indent=2)


if __name__ == "__main__":
    # CPU peak RSS follows live tensors only with glibc's caches off: re-execute once
    if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_ENV})
    main()
