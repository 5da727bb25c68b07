"""Agreement with Captum's NoiseTunnel over Captum's own NoiseTunnel test configurations.

Walks every ``noise_tunnel`` entry of ``captum.testing.attr.helpers.test_config`` x algorithm
x ``nt_type`` x (unchunked, ``nt_samples_batch_size`` 3 or the config's) x (the config's
``stdevs``, 0.1), with Captum's defaults (IntegratedGradients at 50 steps), from one global
seed. Prints the largest differences for ``smoothgrad``/``smoothgrad_sq`` and, for
``vargrad``, each implementation's error against a float64 variance of the per-sample
attributions it computed. The numbers quoted in docs/noise_tunnel.rst come from this script.

    python benchmarks/nt_parity.py
"""

from __future__ import annotations

import copy
import warnings

import torch
from captum.attr import Attribution, GradientAttribution
from captum.attr import NoiseTunnel as CaptumNoiseTunnel
from captum.log import log_usage
from captum.testing.attr.helpers.test_config import config

from captum_certified.attr import NoiseTunnel


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _recording(method, seen):
    base = GradientAttribution if isinstance(method, GradientAttribution) else Attribution

    class Recorder(base):
        @log_usage()
        def attribute(self, inputs, **kwargs):
            out = type(method).attribute.__wrapped__(method, inputs, **kwargs)
            seen.append(tuple(o.detach().clone() for o in _as_tuple(out)))
            return out

    return Recorder(method.forward_func)


def _variance64(seen, batch):
    return tuple(
        torch.cat([c.double().reshape((batch, -1) + c.shape[1:]) for c in chunks], 1).var(
            1, unbiased=False
        )
        for chunks in zip(*seen)
    )


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    runs = 0
    diff = {"smoothgrad": [0.0, 0.0], "smoothgrad_sq": [0.0, 0.0]}  # max abs, max rel
    # (implementation, noisy?) -> max abs error, max error relative to the map's max
    var_err = {(n, s): [0.0, 0.0] for n in ("captum", "ours") for s in (False, True)}
    worst = None
    for entry in config:
        if not entry.get("noise_tunnel", False):
            continue
        args = dict(entry["attribute_args"])
        inputs = args.pop("inputs")
        batch = _as_tuple(inputs)[0].shape[0]
        for algorithm in entry["algorithms"]:
            for stdevs in (args["stdevs"], 0.1):
                for chunk in (None, args.get("nt_samples_batch_size", 3)):
                    for nt_type in ("smoothgrad", "smoothgrad_sq", "vargrad"):
                        kw = dict(args, stdevs=stdevs, nt_type=nt_type, nt_samples_batch_size=chunk)
                        out, seen = {}, {}
                        for name, cls in (("captum", CaptumNoiseTunnel), ("ours", NoiseTunnel)):
                            seen[name] = []
                            method = _recording(algorithm(entry["model"]), seen[name])
                            torch.manual_seed(7)
                            out[name] = _as_tuple(cls(method).attribute(inputs, **copy.copy(kw)))
                        runs += 1
                        if nt_type != "vargrad":
                            for o, c in zip(out["ours"], out["captum"]):
                                d = (o.double() - c.double()).abs().max().item()
                                diff[nt_type][0] = max(diff[nt_type][0], d)
                                diff[nt_type][1] = max(diff[nt_type][1], d / c.abs().max().item())
                            continue
                        for name in ("captum", "ours"):
                            ref = _variance64(seen[name], batch)
                            for o, r in zip(out[name], ref):
                                err = (o.double() - r).abs().max().item()
                                rel = err / max(r.abs().max().item(), 1e-30)
                                acc = var_err[name, stdevs > 0]
                                acc[0] = max(acc[0], err)
                                acc[1] = max(acc[1], rel) if stdevs > 0 else float("nan")
                                if name == "captum" and (worst is None or err > worst[0]):
                                    worst = (err, entry["name"], algorithm.__name__, stdevs, chunk)
    names = {e["name"] for e in config if e.get("noise_tunnel", False)}
    print(f"{len(names)} configs, {runs} runs per implementation")
    for nt_type, (a, r) in diff.items():
        print(f"{nt_type:14s} ours vs Captum: max abs {a:.3g}, max rel to map max {r:.3g}")
    for (name, noisy), (a, r) in var_err.items():
        label = "stdevs>0" if noisy else "stdevs=0"
        print(f"vargrad {name:7s} {label} vs float64: max abs {a:.3g}, rel to map max {r:.3g}")
    print("largest Captum vargrad error at", worst)


if __name__ == "__main__":
    main()
