"""Parameter sweep behind docs/parameters.rst: how sigma, K, sparsity tau and n shape certificates.

Two models, both trained here on scikit-learn's real 8x8 digits (no download):

* ``digits``: the embedded default (DigitsCNN, 1x8x8, d = 64);
* ``digits64``: the same digits upsampled to 3x64x64 (d = 12288) and a small strided CNN.

For ``EXAMPLES`` correctly classified test digits per model, SparseSmoothGrad certificates are
computed over a grid of one parameter at a time (the others at their reference values) and
summarized by the median over examples of the certified top-K overlap at a few l2 radii and of
the certified radius at overlap 0.5. Also: the accuracy of the model on noisy inputs
(``x + N(0, sigma^2 I)``, the inputs the explanations are computed on), the cost in CPU time
per example, and the largest radius any model could be certified for
(:func:`captum_certified.certify.radius_upper_bound`).

Run by hand from the repository root (about 10 minutes of CPU time, one thread):

    PYTHONPATH=. python benchmarks/parameter_sweep.py          # docs/figures/parameters_*.png
    PYTHONPATH=. python benchmarks/parameter_sweep.py --quick  # smaller, into runs/
    PYTHONPATH=. python benchmarks/parameter_sweep.py --radius-zero  # a few minutes, printed

``--radius-zero`` measures what raises the certified overlap at radius 0, where only the
confidence band matters: on a 3x32x32 CNN after 0, 1 and 4 epochs of training (an untrained
model has diffuse maps, like a first attempt on one's own data), the median overlap at radius 0
over K x tau x n, and the share of the top-K that the band cannot separate from the rest.

The numbers are printed and saved in docs/figures/parameters.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from captum_certified.attr import SparseSmoothGrad
from captum_certified.certify import radius_upper_bound
from captum_certified.cli import default_digits_model, load_digits_split

OUT = Path(__file__).resolve().parents[1] / "docs" / "figures"
ALPHA = 0.05
REF = {"sigma": 0.5, "k": 0.2, "tau": 0.2, "n": 2048}  # reference point of every sweep
SWEEPS = {
    "sigma": [0.1, 0.25, 0.5, 1.0, 2.0],
    "k": [0.05, 0.1, 0.2, 0.3, 0.4],
    "tau": [0.05, 0.1, 0.2, 0.3, 0.4],
    "n": [256, 1024, 4096, 16384],
}
RADII = [0.0, 0.1, 0.25, 0.5]


class Digits64CNN(nn.Module):
    """Two strided convolutions and a linear head for 3x64x64 inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(16 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def to64(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.interpolate(x, size=(64, 64), mode="bilinear").repeat(1, 3, 1, 1)


def train_digits64(epochs: int = 6) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    x_train, y_train, x_test, y_test = load_digits_split(seed=0)
    x_train, x_test = to64(x_train), to64(x_test)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = Digits64CNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x_train), generator=g).split(64):
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), x_test, y_test


class CNN32(nn.Module):
    """A CNN of the size a tutorial trains on 3x32x32 images (25,578 parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 8 * 8, 10),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def radius_zero(examples: int = 4) -> None:
    """What raises the certified top-K overlap at radius 0 (see the module docstring)."""
    x_train, y_train, x_test, y_test = load_digits_split(seed=0)

    def to32(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, size=(32, 32), mode="bilinear").repeat(1, 3, 1, 1)

    x_train, x_test = to32(x_train), to32(x_test)
    torch.manual_seed(0)
    model = CNN32()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    x, y = x_test[:examples], y_test[:examples]
    ks = [0.05, 0.1, 0.2, 0.4, 0.6]
    print("median certified top-K overlap at radius 0 (in brackets: share of the top-K whose")
    print("band overlaps the band of a coordinate outside it), sigma 0.5, alpha 0.05")
    print("epochs tau   n     " + " ".join(f"K={k:<9g}" for k in ks))
    trained = 0
    for epochs in (0, 1, 4):
        model.train()
        while trained < epochs:
            for idx in torch.randperm(len(x_train), generator=g).split(64):
                loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            trained += 1
        model.eval()
        taus, ns = (0.05, 0.2), (512, 2048, 8192)
        certs = {}
        for n in ns:  # both tau from one sampling pass per n
            for tau, (cert, _) in zip(taus, certify_settings(model, x, y, 0.5, taus, n)):
                certs[tau, n] = cert
        for tau in taus:
            for n in ns:
                cert = certs[tau, n]
                middle = (cert.lower + cert.upper) / 2
                cells = []
                for k in ks:
                    overlap = statistics.median(cert.topk_overlap(k, 0.0).tolist())
                    count = max(1, int(k * middle.shape[1] + 1e-9))
                    order = middle.argsort(dim=1, descending=True)
                    inside, outside = order[:, :count], order[:, count:]
                    best_out = cert.upper.gather(1, outside).max(dim=1, keepdim=True).values
                    unsure = (cert.lower.gather(1, inside) <= best_out).double().mean().item()
                    cells.append(f"{overlap:.2f} ({unsure:.2f})")
                print(f"{epochs:<6d} {tau:<5g} {n:<5d} " + " ".join(f"{c:<11s}" for c in cells))


def pick(model: nn.Module, x: torch.Tensor, y: torch.Tensor, count: int):
    with torch.no_grad():
        ok = (model(x).argmax(1) == y).nonzero().flatten()[:count]
    return x[ok], y[ok]


def noisy_accuracy(model, x, y, sigma: float, draws: int = 20) -> float:
    g = torch.Generator().manual_seed(1)
    hits = 0
    with torch.no_grad():
        for _ in range(draws):
            noisy = x + sigma * torch.randn(x.shape, generator=g)
            hits += (model(noisy).argmax(1) == y).sum().item()
    return hits / (draws * len(x))


def certify(model, x, y, sigma, tau, n):
    """The certificate of one ``tau`` and the CPU seconds per example (one sampling pass)."""
    return certify_settings(model, x, y, sigma, [tau], n)[0]


def certify_settings(model, x, y, sigma, taus, n):
    """:func:`certify` for several ``taus`` from one sampling pass
    (``attribute_settings``): the same generator, so each certificate equals
    ``certify(model, x, y, sigma, tau, n)``'s, each at ``ALPHA`` (the sweep reads each
    certificate alone). The seconds are the pass's CPU time per example, shared by its taus."""
    explainers = [SparseSmoothGrad(model, sparsity=tau) for tau in taus]
    start = time.process_time()
    answers = explainers[0].attribute_settings(
        x,
        [e.transform for e in explainers],
        alpha=ALPHA,
        target=y,
        nt_samples=n,
        nt_samples_batch_size=min(n, 256),
        stdevs=sigma,
        generator=torch.Generator().manual_seed(0),
    )
    seconds = (time.process_time() - start) / len(x)
    return [(cert, seconds) for _, cert in answers]


def summarize(cert, k) -> dict:
    curve = cert.overlap_curve(k, torch.tensor(RADII))
    radius = cert.certified_radius(k, 0.5)
    return {
        "overlap": [statistics.median(curve[:, j].tolist()) for j in range(len(RADII))],
        "radius": statistics.median(radius.tolist()),
    }


def run(name, model, x, y, sweeps) -> dict:
    """One certificate per distinct (sigma, tau, n); K is a query on the certificate. The
    tau sweep's certificates come from one sampling pass (:func:`certify_settings`; its rows'
    seconds are that pass's, shared), the others from one pass each."""
    d = x[0].numel()
    result: dict = {"d": d, "examples": len(x), "sweeps": {}}
    cache: dict = {}

    def cert_for(p):
        key = (p["sigma"], p["tau"], p["n"])
        if key not in cache:
            cache[key] = certify(model, x, y, *key)
        return cache[key]

    for param, values in sweeps.items():
        if param == "tau":  # the taus not yet certified, from one sampling pass
            missing = [v for v in values if (REF["sigma"], v, REF["n"]) not in cache]
            if missing:
                answers = certify_settings(model, x, y, REF["sigma"], missing, REF["n"])
                for v, answer in zip(missing, answers):
                    cache[REF["sigma"], v, REF["n"]] = answer
        rows = []
        for v in values:
            p = {**REF, param: v}
            cert, seconds = cert_for(p)
            row = {"value": v, "seconds_per_example": seconds, **summarize(cert, p["k"])}
            row["radius_upper_bound"] = radius_upper_bound(p["sigma"], p["n"], d, alpha=ALPHA)
            if param == "sigma":
                row["noisy_accuracy"] = noisy_accuracy(model, x_all[name], y_all[name], v)
            if param == "tau":  # the K x tau grid, from the same certificates
                row["by_k"] = {str(k): summarize(cert, k) for k in SWEEPS["k"]}
            rows.append(row)
            print(
                f"{name:9s} {param:5s}={v:<7g} overlap={[round(o, 3) for o in row['overlap']]}"
                f" radius@0.5={row['radius']:.3f} (bound {row['radius_upper_bound']:.3f})"
                f" {seconds:.3f} s/example",
                flush=True,
            )
        result["sweeps"][param] = rows
    return result


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"digits": "o-", "digits64": "s--"}
    labels = {"digits": "digits 1x8x8", "digits64": "digits 3x64x64"}

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, res in results.items():
        rows = res["sweeps"]["sigma"]
        s = [r["value"] for r in rows]
        axes[0].plot(s, [r["radius"] for r in rows], styles[name], label=labels[name])
        axes[0].plot(s, [r["radius_upper_bound"] for r in rows], ":", color="gray")
        axes[1].plot(s, [r["overlap"][1] for r in rows], styles[name], label=labels[name])
        axes[2].plot(s, [r["noisy_accuracy"] for r in rows], styles[name], label=labels[name])
    axes[0].set_ylabel("median certified radius (overlap 0.5)")
    axes[0].text(0.02, 0.92, "dotted: upper bound for any model", transform=axes[0].transAxes)
    axes[1].set_ylabel(f"median certified overlap at radius {RADII[1]}")
    axes[2].set_ylabel("accuracy on x + N(0, sigma^2)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("sigma (absolute, pixels in [0, 1])")
        ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "parameters_sigma.png", dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, res in results.items():
        for ax, param in zip(axes[:2], ("k", "tau")):
            rows = res["sweeps"][param]
            v = [r["value"] for r in rows]
            ax.plot(
                v, [r["overlap"][0] for r in rows], styles[name], label=f"{labels[name]}, rho=0"
            )
            ax.plot(
                v, [r["overlap"][1] for r in rows], styles[name], alpha=0.5,
                label=f"{labels[name]}, rho={RADII[1]}",
            )  # fmt: skip
        rows = res["sweeps"]["n"]
        axes[2].plot([r["value"] for r in rows], [r["radius"] for r in rows], styles[name],
                     label=labels[name])  # fmt: skip
    axes[0].set_xlabel("K (fraction of the features)")
    axes[1].set_xlabel("sparsity tau (fraction kept per noisy sample)")
    axes[2].set_xlabel("n (noise samples)")
    axes[2].set_xscale("log")
    axes[0].set_ylabel("median certified top-K overlap")
    axes[1].set_ylabel("median certified top-K overlap")
    axes[2].set_ylabel("median certified radius (overlap 0.5)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "parameters_k_tau_n.png", dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, res in results.items():
        rows = res["sweeps"]["n"]
        ax.plot([r["value"] for r in rows], [r["seconds_per_example"] for r in rows],
                styles[name], label=labels[name])  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (noise samples)")
    ax.set_ylabel("CPU seconds per example (1 thread)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "parameters_cost.png", dpi=90)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.8))
    for ax, (name, res) in zip(axes, results.items()):
        rows = res["sweeps"]["tau"]
        taus = [r["value"] for r in rows]
        ks = SWEEPS["k"]
        grid = [[r["by_k"][str(k)]["overlap"][1] for k in ks] for r in rows]
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="lower")
        for i in range(len(taus)):
            for j in range(len(ks)):
                ax.text(j, i, f"{grid[i][j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i][j] < 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(len(ks)), [str(k) for k in ks])
        ax.set_yticks(range(len(taus)), [str(t) for t in taus])
        ax.set_xlabel("K (fraction of the features)")
        ax.set_ylabel("sparsity tau")
        ax.set_title(f"{labels[name]}: certified overlap at radius {RADII[1]}", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8)
    fig.savefig(OUT / "parameters_k_tau_grid.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples and samples")
    parser.add_argument("--examples", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="default: docs/figures")
    parser.add_argument("--radius-zero", action="store_true", help="only the radius-0 study")
    args = parser.parse_args()
    if args.radius_zero:
        torch.set_num_threads(1)
        radius_zero()
        raise SystemExit(0)
    if args.out is not None or args.quick:  # a quick run never overwrites the committed figures
        OUT = args.out or Path("runs") / "parameter_sweep_quick"
    torch.set_num_threads(1)
    examples = args.examples or (4 if args.quick else 10)
    sweeps = SWEEPS
    if args.quick:
        sweeps = {k: v[:3] for k, v in SWEEPS.items()}
        REF["n"] = 512
    OUT.mkdir(parents=True, exist_ok=True)

    digits = default_digits_model()
    _, _, xt, yt = load_digits_split(seed=0)
    model64, xt64, yt64 = train_digits64()
    x_all = {"digits": xt, "digits64": xt64}
    y_all = {"digits": yt, "digits64": yt64}
    results = {}
    for name, model in (("digits", digits), ("digits64", model64)):
        model_sweeps = dict(sweeps)
        if name == "digits64":  # n = 16384 costs ~30 s per 3x64x64 example on one core
            model_sweeps["n"] = [n for n in sweeps["n"] if n <= 4096]
        with torch.no_grad():
            acc = (model(x_all[name]).argmax(1) == y_all[name]).float().mean().item()
        print(f"{name}: clean test accuracy {acc:.3f}", flush=True)
        x, y = pick(model, x_all[name], y_all[name], examples)
        results[name] = run(name, model, x, y, model_sweeps)
        results[name]["clean_accuracy"] = acc
    meta = {"alpha": ALPHA, "reference": REF, "radii": RADII, "torch": torch.__version__}
    (OUT / "parameters.json").write_text(json.dumps({"meta": meta, **results}, indent=1))
    plot(results)
    print(f"wrote {OUT}/parameters_*.png and parameters.json")
