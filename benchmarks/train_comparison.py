"""The robust-attribution losses compared at matched accuracy (issue 28).

For each task and seed a natural model is trained (``pre_epochs`` of Adam on the
cross-entropy); every loss then fine-tunes a copy of it for ``ft_epochs`` of plain SGD
(``ft_lr``) at a sweep of weights (``weight = 0`` is the natural model fine-tuned
with the cross-entropy alone, the same for every loss). The sweep grows geometrically
(x``factor``) from each loss's first weight until the seed-mean test accuracy has dropped
by 0.05 or ``max_points`` weights were tried; then the last interval is bisected once at
its geometric midpoint.
The accuracy cost ``natural - accuracy`` is then matched to 0.01, 0.03 and 0.05 by linear
interpolation in the weight between the two swept weights that bracket it on the seed-mean
cost; each seed's robustness is interpolated at that weight, and the table gives the mean and
the standard error over the seeds.

Robustness, on the first ``n_eval`` test examples: the top-k intersection (k = 1/8 of the
features) and Kendall's tau between clean and attacked IG maps under Ghorbani et al.'s top-k
attack (:func:`captum_certified.train.attribution_robustness_eval`: l_inf ``eval_radius``,
``eval_steps`` steps, Softplus(10) twin) and the certified top-k overlap of SparseSmoothGrad
(sparsity 0.2, Gaussian noise ``noise_scale``, ``nt_samples`` draws) at l2 radius
``cert_radius``, as in ``captum-certified compare``.

Tasks: ``digits`` (scikit-learn's 8x8 digits, 1400 train / 397 test, the DigitsCNN of the
command line) and ``photos`` (3x32x32 crops of scikit-learn's two bundled photographs, each
photo's left and right half a class: 4 classes; train crops from the upper 70 % of the rows,
test crops from the lower 30 %).

    python benchmarks/train_comparison.py                       # digits + photos, full size
    python benchmarks/train_comparison.py --tasks digits --out runs/cmp
    python benchmarks/train_comparison.py --size tiny --out /tmp/cmp   # the docs build's run

It writes ``<task>.json`` (every trained point), ``<task>.tsv``, ``table.txt`` and
``train_comparison.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOSSES = ("ssr", "ig_norm", "ig_sum_norm", "art", "sarkar", "sarkar_adv")
TARGETS = (0.01, 0.03, 0.05)
MAX_PLOTTED_COST = 0.15
METRICS = ("topk", "kendall", "certified")


@dataclass
class Size:
    seeds: int = 3
    n_train: int = 1400
    pre_epochs: int = 10
    ft_epochs: int = 1
    batch_size: int = 64
    max_points: int = 5
    factor: float = 10.0
    bisect: bool = True
    n_eval: int = 64
    eval_steps: int = 10
    nt_samples: int = 256


SIZES = {
    "full": Size(),
    "tiny": Size(
        seeds=2,
        n_train=192,
        pre_epochs=4,
        max_points=1,
        bisect=False,
        n_eval=12,
        eval_steps=3,
        nt_samples=64,
    ),  # fmt: skip
}


@dataclass
class Budget:
    """The training attack budget (shared by every loss of a task) and the evaluation's."""

    radius: float
    step_size: float
    step_num: int
    n_steps: int
    approx_factor: int
    eval_radius: float
    eval_step_size: float
    cert_radius: float
    noise_scale: float
    lr: float
    ft_lr: float = 0.05


BUDGETS = {
    "digits": Budget(0.1, 0.05, 3, 8, 2, 0.1, 0.02, 0.1, 0.5, 3e-3),
    "photos": Budget(8 / 255, 4 / 255, 3, 8, 2, 8 / 255, 2 / 255, 0.05, 0.25, 3e-3, 0.005),
}

#: First weight of each loss's sweep (reduction "mean" for the Chen-family terms).
FIRST_WEIGHT = {
    "ssr": 0.3,
    "ig_norm": 0.25,
    "ig_sum_norm": 0.25,
    "art": 0.25,
    "sarkar": 0.1,
    "sarkar_adv": 0.1,
}


class PhotoCNN(nn.Module):
    """Two stride-2 3x3 conv layers and a linear head for 3x32x32 inputs, 4 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(16 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def load_task(task: str, size: Size) -> tuple[torch.Tensor, ...]:
    if task == "digits":
        from captum_certified.cli._digits import load_digits_split

        x, y, xt, yt = load_digits_split(seed=0)
        return x[: size.n_train], y[: size.n_train], xt, yt
    from sklearn.datasets import load_sample_images

    g = torch.Generator().manual_seed(0)
    n_train, n_test = max(size.n_train // 2, 64), 400  # per photo
    xs, ys, xts, yts = [], [], [], []
    for i, image in enumerate(load_sample_images().images):
        img = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1) / 255.0
        img = torch.nn.functional.avg_pool2d(img.unsqueeze(0), 2)[0]  # 213 x 320
        h, w = img.shape[1:]
        split = int(0.7 * h)
        for half in range(2):
            label = 2 * i + half
            x0, x1 = half * w // 2, (half + 1) * w // 2 - 32
            for rows, n, xl, yl in ((0, n_train // 4, xs, ys), (1, n_test // 4, xts, yts)):
                r0, r1 = (0, split - 32) if rows == 0 else (split, h - 32)
                top = torch.randint(r0, r1 + 1, (n,), generator=g)
                left = torch.randint(x0, x1 + 1, (n,), generator=g)
                for t, l_ in zip(top.tolist(), left.tolist()):
                    xl.append(img[:, t : t + 32, l_ : l_ + 32])
                    yl.append(label)
    return (torch.stack(xs), torch.tensor(ys), torch.stack(xts), torch.tensor(yts))


def new_model(task: str, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if task == "digits":
            from captum_certified.cli._digits import DigitsCNN

            return DigitsCNN()
        return PhotoCNN()


def build_loss(name: str, weight: float, b: Budget, g: torch.Generator):
    from captum_certified import train

    if weight == 0:
        return train.AttributionalLoss()
    pgd = dict(
        radius=b.radius,
        step_size=b.step_size,
        step_num=b.step_num,
        n_steps=b.n_steps,
        approx_factor=b.approx_factor,
        reduction="mean",
        generator=g,
    )
    if name == "ig_norm":
        return train.IGNormLoss(weight=weight, **pgd)
    if name == "ig_sum_norm":
        return train.IGSumNormLoss(weight=weight, **pgd)
    if name in ("sarkar", "sarkar_adv"):
        objective = "ar" if name == "sarkar" else "adv_ar"
        return train.SarkarLoss(weight=weight, objective=objective, **pgd)
    if name == "ssr":
        return train.SSRLoss(mixing=0.3, weight=weight)
    return train.ARTLoss(
        radius=b.radius, step_size=b.step_size, step_num=b.step_num, k=0.3, weight=weight,
        generator=g,
    )  # fmt: skip


def fit(
    model, loss_fn, x, y, epochs, size: Size, lr: float, seed: int, sgd: bool = False
) -> nn.Module:
    # Adam normalises the step, so above some weight the regularizer alone sets the direction
    # and the accuracy cost stops growing with the weight: the fine-tuning uses plain SGD.
    opt = (torch.optim.SGD if sgd else torch.optim.Adam)(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for idx in perm.split(size.batch_size):
            value = loss_fn(model, x[idx], y[idx])
            opt.zero_grad()
            value.backward()
            opt.step()
    return model.eval()


def evaluate(model, xt, yt, size: Size, b: Budget, seed: int) -> dict:
    from captum_certified.cli._compare import _certified_overlap
    from captum_certified.train import accuracy, attribution_robustness_eval

    xe, ye = xt[: size.n_eval], yt[: size.n_eval]
    with torch.no_grad():
        n_correct = int((model(xe).argmax(1) == ye).sum())
    if n_correct == 0:  # a collapsed model: nothing to attack or certify
        nan = math.nan
        return {"accuracy": accuracy(model, xt, yt), "topk": nan, "kendall": nan, "certified": nan}
    robust = attribution_robustness_eval(
        model, xe, ye, radius=b.eval_radius, step_size=b.eval_step_size,
        step_num=size.eval_steps, k_eval=0.125, n_steps=16,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    (cert,) = _certified_overlap(
        model, xe, ye, [b.cert_radius], 0.125, size.nt_samples, b.noise_scale, seed
    )
    return {
        "accuracy": accuracy(model, xt, yt),
        "topk": robust["topk"],
        "kendall": robust["kendall"],
        "certified": cert,
    }


def run_task(task: str, size: Size, losses, log=print) -> dict:
    torch.set_num_threads(1)
    b = BUDGETS[task]
    x, y, xt, yt = load_task(task, size)
    seeds = list(range(size.seeds))
    bases = {}
    for s in seeds:
        torch.manual_seed(s)
        bases[s] = fit(
            new_model(task, s), build_loss("natural", 0, b, None), x, y, size.pre_epochs, size,
            b.lr, 1000 + s,
        )  # fmt: skip

    def point(name: str, weight: float) -> list[dict]:
        rows = []
        for s in seeds:
            started = time.perf_counter()
            model = copy.deepcopy(bases[s]).train()
            loss_fn = build_loss(name, weight, b, torch.Generator().manual_seed(s))
            fit(model, loss_fn, x, y, size.ft_epochs, size, b.ft_lr, 2000 + s, sgd=True)
            rows.append({"seed": s, "weight": weight, **evaluate(model, xt, yt, size, b, s)})
            rows[-1]["seconds"] = time.perf_counter() - started
        return rows

    natural = point("natural", 0.0)
    nat_acc = statistics.fmean(r["accuracy"] for r in natural)
    log(f"[{task}] natural accuracy {nat_acc:.3f}")
    sweeps: dict[str, list[list[dict]]] = {}
    for name in losses:
        sweep = [natural]
        w = FIRST_WEIGHT[name]
        for _ in range(size.max_points):
            rows = point(name, w)
            sweep.append(rows)
            drop = nat_acc - statistics.fmean(r["accuracy"] for r in rows)
            secs = sum(r["seconds"] for r in rows)
            log(f"[{task}] {name:<11} weight {w:<8.4g} accuracy cost {drop:+.3f}  ({secs:.0f} s)")
            if drop >= max(TARGETS):
                break
            w *= size.factor
        reached = nat_acc - statistics.fmean(r["accuracy"] for r in sweep[-1]) >= max(TARGETS)
        if size.bisect and len(sweep) > 2 and reached:
            # one geometric bisection of the last decade, where the 0.05 crossing lies
            mid = math.sqrt(sweep[-1][0]["weight"] * sweep[-2][0]["weight"])
            rows = point(name, mid)
            drop = nat_acc - statistics.fmean(r["accuracy"] for r in rows)
            log(f"[{task}] {name:<11} weight {mid:<8.4g} accuracy cost {drop:+.3f}  (bisection)")
            sweep.insert(len(sweep) - 1, rows)
        sweeps[name] = sweep
    return {
        "task": task,
        "size": asdict(size),
        "budget": asdict(b),
        "natural_accuracy": nat_acc,
        "sweeps": sweeps,
        "matched": {name: match(sweeps[name], nat_acc) for name in losses},
    }


def match(sweep: list[list[dict]], nat_acc: float) -> dict:
    """Per target cost: the interpolated weight and each metric's mean and standard error."""
    weights = [pts[0]["weight"] for pts in sweep]
    costs = [nat_acc - statistics.fmean(r["accuracy"] for r in pts) for pts in sweep]
    out = {}
    for t in TARGETS:
        entry: dict = {"weight": math.nan}
        for i in range(len(sweep) - 1):
            lo, hi = costs[i], costs[i + 1]
            if min(lo, hi) - 1e-9 <= t <= max(lo, hi) + 1e-9 and abs(hi - lo) > 1e-12:
                frac = min(max((t - lo) / (hi - lo), 0.0), 1.0)
                entry["weight"] = weights[i] + frac * (weights[i + 1] - weights[i])
                for m in METRICS:
                    vals = [a[m] + frac * (c[m] - a[m]) for a, c in zip(sweep[i], sweep[i + 1])]
                    vals = [v for v in vals if not math.isnan(v)]
                    entry[m] = statistics.fmean(vals) if vals else math.nan
                    entry[m + "_se"] = (
                        statistics.stdev(vals) / math.sqrt(len(vals)) if len(vals) > 1 else 0.0
                    )
                break
        out[str(t)] = entry
    return out


def _mean_se(pts: list[dict], m: str) -> tuple[float, float]:
    vals = [r[m] for r in pts if not math.isnan(r[m])]
    if not vals:
        return math.nan, math.nan
    se = statistics.stdev(vals) / math.sqrt(len(vals)) if len(vals) > 1 else 0.0
    return statistics.fmean(vals), se


def point_summary(pts: list[dict], nat_acc: float) -> dict:
    """Seed mean and standard error of every metric at one swept weight, and its cost."""
    out: dict = {"weight": pts[0]["weight"]}
    out["cost"] = nat_acc - statistics.fmean(r["accuracy"] for r in pts)
    for m in METRICS:
        out[m], out[m + "_se"] = _mean_se(pts, m)
    return out


def table_rows(result: dict) -> list[list[str]]:
    """Per loss: the three matched costs, then the largest weight tried (its measured cost),
    which is what a loss that never reaches a cost of 0.05 is judged by."""

    def cell(e, m):
        if math.isnan(e.get(m, math.nan)):
            return "n/r"
        return f"{e[m]:.3f} ± {e[m + '_se']:.3f}"

    nat_acc = result["natural_accuracy"]
    first = result["sweeps"][next(iter(result["sweeps"]))][0]
    nat = point_summary(first, nat_acc)
    rows = [[result["task"], "natural", "0", "0", *[cell(nat, m) for m in METRICS]]]
    for name, per in result["matched"].items():
        for t, e in per.items():
            w = "n/r" if math.isnan(e["weight"]) else f"{e['weight']:.3g}"
            rows.append([result["task"], name, t, w, *[cell(e, m) for m in METRICS]])
        last = point_summary(result["sweeps"][name][-1], nat_acc)
        rows.append(
            [result["task"], name, f"({last['cost']:+.3f})", f"{last['weight']:.3g} (max)",
             *[cell(last, m) for m in METRICS]]
        )  # fmt: skip
    return rows


HEADER = ["task", "loss", "accuracy cost", "weight", "attacked top-k", "Kendall", "certified"]


def write_outputs(results: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = [r for res in results for r in table_rows(res)]
    for res in results:
        (out / f"{res['task']}.json").write_text(json.dumps(res, indent=1) + "\n")
        tsv = ["\t".join(HEADER)] + ["\t".join(r) for r in table_rows(res)]
        (out / f"{res['task']}.tsv").write_text("\n".join(tsv) + "\n")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(HEADER, widths)), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.append(rule)
    nat = "; ".join(f"{r['task']} natural accuracy {r['natural_accuracy']:.3f}" for r in results)
    (out / "table.txt").write_text(nat + "\n\n" + "\n".join(lines) + "\n")
    plot(results, out / "train_comparison.png")


def plot(results: list[dict], path: Path) -> None:
    """One panel per task and metric: every swept weight of a loss (seed means, standard
    errors as bars) at its measured accuracy cost, joined in weight order; weights that cost
    more than ``MAX_PLOTTED_COST`` (collapsed models) are left out of the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 3, figsize=(12, 3.4 * len(results)), squeeze=False)
    labels = {"topk": "attacked top-k", "kendall": "attacked Kendall",
              "certified": "certified SSG overlap"}  # fmt: skip
    for row, res in zip(axes, results):
        for ax, m in zip(row, METRICS):
            for name, sweep in res["sweeps"].items():
                pts = [point_summary(p, res["natural_accuracy"]) for p in sweep]
                pts = [p for p in pts if p["cost"] <= MAX_PLOTTED_COST]
                ax.errorbar(
                    [p["cost"] for p in pts], [p[m] for p in pts],
                    yerr=[p[m + "_se"] for p in pts], marker="o", ms=3, capsize=2, label=name,
                )  # fmt: skip
            for t in TARGETS:
                ax.axvline(t, color="0.8", lw=0.8, zorder=0)
            ax.set_xlabel("accuracy cost (natural - accuracy)")
            ax.set_ylabel(labels[m])
            ax.set_title(res["task"])
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument("--tasks", nargs="+", default=["digits", "photos"], choices=list(BUDGETS))
    p.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    p.add_argument("--photos-size", choices=sorted(SIZES) + ["reduced"], default="reduced",
                   help="size of the photos task (default: reduced, see the docs)")  # fmt: skip
    p.add_argument("--out", default="runs/train_comparison")
    p.add_argument("--replot", nargs="+", metavar="JSON",
                   help="redraw the table and plot from earlier <task>.json files")  # fmt: skip
    args = p.parse_args(argv)
    if args.replot:
        loaded = [json.loads(Path(f).read_text()) for f in args.replot]
        write_outputs(loaded, Path(args.out))
        print((Path(args.out) / "table.txt").read_text())
        return loaded
    results = []
    for task in args.tasks:
        size = SIZES[args.size]
        if task == "photos" and args.size == "full":
            size = REDUCED if args.photos_size == "reduced" else SIZES[args.photos_size]
        started = time.perf_counter()
        results.append(run_task(task, size, args.losses))
        print(f"[{task}] {time.perf_counter() - started:.0f} s", flush=True)
    write_outputs(results, Path(args.out))
    print((Path(args.out) / "table.txt").read_text())
    return results


#: The photos task at a reduced size (3x32x32 steps cost ~20x a digits step on CPU).
REDUCED = replace(SIZES["full"], n_train=768, pre_epochs=30, max_points=4, bisect=False,
                  n_eval=24, eval_steps=5, nt_samples=128)  # fmt: skip

if __name__ == "__main__":
    main()
