"""The ``attack`` run: empirical top-K overlap under Levine et al.'s l2 attack, next to the
certified overlap of a finished ``certify`` run."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from captum_certified.attr import SparseSmoothGrad
from captum_certified.cli._checks import resolve_device
from captum_certified.cli._config import ConfigError, RunConfig
from captum_certified.cli._report import plot_attack
from captum_certified.cli._results import (
    ATTACK_COLUMNS,
    append_example,
    clean_part_file,
    format_rows,
    parse_rows,
)
from captum_certified.cli._run_folder import (
    check_fingerprint,
    check_not_link,
    claim,
    locked,
    read_text,
    state_dict_hash,
    tensor_hash,
    write_text,
)
from captum_certified.cli._sources import check_model_named, load_data, load_model
from captum_certified.metrics import topk_intersection
from captum_certified.robust import AttributionL2Attack

#: Noisy copies per forward/backward pass, over all rows of a batch: the attack's chunks are
#: sized by this (not by the run's ``--nt-samples-batch-size``) because on a CPU a pass over a
#: few hundred images is about twice as fast per image as one over thousands (cache-bound).
IMAGES_PER_PASS = 256


def attack_cost(
    n_radii: int, step_num: int, num_restarts: int, n_guide: int, eval_samples: int
) -> int:
    """Noisy-sample gradient evaluations per example (a double backward counts 3, a plain
    gradient 2 forward+backward units): the guide and the scoring map at every step, plus
    the final re-estimates of the clean and the attacked maps (from the same noise)."""
    per_step = 3 * n_guide + 2 * n_guide
    return n_radii * num_restarts * step_num * per_step + 2 * (n_radii + 1) * eval_samples


def run_attack(
    run: Path,
    *,
    n_examples: int = 10,
    step_num: int = 10,
    num_restarts: int = 1,
    n_guide: int = 16,
    eval_samples: int = 512,
    box: tuple[float, float] | None = None,
    softplus_beta: float = 10.0,
    model: list[str] | None = None,
    progress: bool = True,
    echo=print,
) -> dict:
    """Attack the first ``n_examples`` examples of a certify run at each positive radius.

    For every radius the attack (on a Softplus(``softplus_beta``) copy of the model, whose
    second derivatives do not vanish, through a Monte-Carlo guide of
    ``n_guide`` samples) tries to move the smoothed map's top-K; the attacked and the clean
    maps are then re-estimated with ``eval_samples`` fresh samples and their top-K overlap is
    recorded next to the certified one. Empirical overlaps are Monte-Carlo point estimates
    (clean and attacked maps from the same noise, so an unmoved input reads 1): the
    certificate speaks about expected maps, so a small shortfall can be sampling error.

    All radii of an example are attacked in one batch (one row per radius, each with its own
    ball, noise draws and label checks: the same attack as one call per radius, with the
    per-call overhead paid once), on the run's recorded ``threads`` and ``device``.

    A ``module:callable`` model recorded in the run is imported only when ``model`` names it
    too. The attack's options, the data and the model weights are recorded; a rerun with
    other ones is refused while attack rows exist (delete ``parts/attack-0.tsv`` to start
    over).
    """
    config_file = run / "config.toml"
    results_file = run / "results.tsv"
    if not config_file.exists() or not results_file.exists():
        raise ConfigError(f"{run} is not a finished certify run (no config.toml / results.tsv)")
    claim(run, "certify", option="RUN")  # a run folder of this tool, never created here
    config = RunConfig.load(config_file).validate()
    check_model_named(config.model, model, f"{run}/config.toml")
    if config.method != "sparse_smoothgrad":
        raise ConfigError("attack supports runs of --method sparse_smoothgrad (l2) for now")
    if len(config.sparsities) > 1:
        raise ConfigError(
            f"attack supports runs of one --sparsity for now; {run} certified "
            f"{len(config.sparsities)} ({', '.join(map(str, config.sparsities))})"
        )
    for name, value in (
        ("--n-examples", n_examples),
        ("--step-num", step_num),
        ("--num-restarts", num_restarts),
        ("--guide-samples", n_guide),
        ("--eval-samples", eval_samples),
    ):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1")
    certified = {}
    for row in parse_rows(read_text(results_file)):
        certified[(row["index"], row["radius"])] = row["certified"]
    if isinstance(config.radii, str):  # a finished run records its grid as a list
        raise ConfigError("the run's config.toml records no radius list; re-run certify")
    radii = [float(r) for r in config.radii if r > 0]
    if not radii:
        raise ConfigError("the run has no positive radius to attack")
    indices = sorted({i for i, _ in certified})[:n_examples]
    if len(indices) < n_examples:
        print(
            f"captum-certified: warning: --n-examples {n_examples} asked, but the run holds "
            f"{len(indices)} certified examples; attacking {len(indices)}",
            file=sys.stderr,
        )
    device = resolve_device(config.device)
    net = load_model(config.model, seed=config.seed).to(device)
    x_all, y_all = load_data(config.data, config.image_size, seed=config.seed)
    sparsity, k = config.sparsities[0], config.k  # one (checked above)
    lower, upper = box if box is not None else (float("-inf"), float("inf"))
    fingerprint = {
        "data": tensor_hash(x_all, y_all),
        "model": state_dict_hash(net),
        "step_num": step_num,
        "num_restarts": num_restarts,
        "guide_samples": n_guide,
        "eval_samples": eval_samples,
        "box": None if box is None else [float(b) for b in box],
        "softplus_beta": float(softplus_beta),
    }
    recorded = run / "fingerprint.json"
    if recorded.exists():
        try:
            certified_with = json.loads(read_text(recorded))
        except ValueError:
            certified_with = {}
        changed = [key for key in ("data", "model") if certified_with.get(key) != fingerprint[key]]
        if changed:
            sources = {"data": config.data, "model": config.model}
            named = ", ".join(f"{c} {sources[c]}" for c in changed)
            raise ConfigError(
                f"the {' and '.join(changed)} of {run} changed since it was certified "
                f"({named}); the attack would not match the certificates"
            )
    with locked(run):
        return _attack_run(
            run, config, net, x_all, y_all, certified, radii, indices, fingerprint,
            device=device, k=k, sparsity=sparsity, lower=lower, upper=upper,
            step_num=step_num, num_restarts=num_restarts, n_guide=n_guide,
            eval_samples=eval_samples, softplus_beta=softplus_beta, progress=progress,
            echo=echo,
        )  # fmt: skip


def _attack_run(
    run: Path,
    config: RunConfig,
    model: torch.nn.Module,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    certified: dict,
    radii: list[float],
    indices: list[int],
    fingerprint: dict,
    *,
    device: torch.device,
    k: int | float,
    sparsity: int | float,
    lower: float,
    upper: float,
    step_num: int,
    num_restarts: int,
    n_guide: int,
    eval_samples: int,
    softplus_beta: float,
    progress: bool,
    echo,
) -> dict:
    """The attack in the locked run folder: resume checks, the loop, the summary."""
    part = run / "parts" / "attack-0.tsv"
    check_not_link(part.parent)
    part.parent.mkdir(exist_ok=True)
    done = clean_part_file(part, len(radii), ATTACK_COLUMNS)
    check_fingerprint(
        run,
        fingerprint,
        computed=bool(done),
        what="attack rows (parts/attack-0.tsv; delete it to attack anew)",
        name="attack_fingerprint.json",
    )
    todo = [i for i in indices if i not in done]
    cost = attack_cost(len(radii), step_num, num_restarts, n_guide, eval_samples)
    if todo:
        print(
            f"attack: {len(todo)} examples x {len(radii)} radii, {num_restarts} restarts x "
            f"{step_num} steps, guide {n_guide} samples: ~{cost:,} sample gradients per example",
            file=sys.stderr,
        )
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        _attack_examples(
            todo,
            part,
            model,
            x_all,
            y_all,
            config,
            certified,
            radii,
            device=device,
            k=k,
            sparsity=sparsity,
            lower=lower,
            upper=upper,
            step_num=step_num,
            num_restarts=num_restarts,
            n_guide=n_guide,
            eval_samples=eval_samples,
            softplus_beta=softplus_beta,
            progress=progress,
        )
    finally:
        torch.set_num_threads(threads)
    rows = [r for r in parse_rows(read_text(part), ATTACK_COLUMNS) if r["index"] in indices]
    write_text(
        run / "attack.tsv",
        "\t".join(ATTACK_COLUMNS)
        + "\n"
        + format_rows(sorted(rows, key=lambda r: (r["index"], r["radius"])), ATTACK_COLUMNS),
    )
    summary = summarize_attack(run / "attack.tsv")
    write_text(run / "attack_summary.json", json.dumps(summary, indent=2) + "\n")
    echo(format_attack_summary(summary))
    plot = plot_attack(summary, run / "attack.png", config)
    if plot:
        echo(f"plot: {plot}")
    return summary


def _attack_examples(
    todo: list[int],
    part: Path,
    model: torch.nn.Module,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    config: RunConfig,
    certified: dict,
    radii: list[float],
    *,
    device: torch.device,
    k: int | float,
    sparsity: int | float,
    lower: float,
    upper: float,
    step_num: int,
    num_restarts: int,
    n_guide: int,
    eval_samples: int,
    softplus_beta: float,
    progress: bool,
) -> None:
    iterator: Any = todo
    if progress:
        from tqdm import tqdm

        iterator = tqdm(todo, desc="attack", unit="example", file=sys.stderr)
    ssg = SparseSmoothGrad(model, sparsity=sparsity)
    attack = AttributionL2Attack(
        model,
        explainer="sparse_smoothgrad",
        k=k,
        lower_bound=lower,
        upper_bound=upper,
        explainer_kwargs={
            "stdevs": config.scale,
            "sparsity": sparsity,
            "n_guide": n_guide,
            "nt_samples_batch_size": max(1, IMAGES_PER_PASS // len(radii)),
        },
        softplus_beta=softplus_beta,
    )
    n_radii = len(radii)
    radius = torch.tensor(radii, dtype=torch.float64, device=device)
    for index in iterator:
        started = time.perf_counter()
        x = x_all[index : index + 1].to(device)
        label = int(y_all[index])
        with torch.no_grad():
            predicted = int(model(x).argmax(1).item())
        target = label if config.target == "label" else predicted
        seed = config.seed * 1_000_003 + index
        rows_x = x.expand(n_radii, *x.shape[1:]).clone()
        targets = torch.full((n_radii,), target, dtype=torch.long, device=device)
        x_adv, report = attack.perturb(
            rows_x,
            radius=radius,
            step_num=step_num,
            target=targets,
            num_restarts=num_restarts,
            generator=torch.Generator().manual_seed(seed),
            return_report=True,
        )
        # The clean map and every attacked map from the same noise draws (common random
        # numbers, independent of the attack's own noise; one row per call, so each call
        # replays the same draws): the Monte-Carlo error cancels in their overlap, which is
        # exactly 1 for an unmoved input. Independent draws would read as a loss of overlap
        # (0.95 instead of 1 with 512 samples on a 3x32x32 CNN).
        eval_seed = seed + 7919
        clean_map = _estimate(ssg, x, target, config, eval_samples, eval_seed, IMAGES_PER_PASS)
        attacked_maps = torch.cat(
            [
                _estimate(ssg, row, target, config, eval_samples, eval_seed, IMAGES_PER_PASS)
                for row in x_adv.split(1)
            ]
        )
        empirical = topk_intersection(clean_map.expand_as(attacked_maps), attacked_maps, k=k)
        norms = (x_adv - rows_x).flatten(1).norm(dim=1)
        seconds = time.perf_counter() - started
        rows = [
            {
                "index": index,
                "label": label,
                "radius": r,
                "certified": certified.get((index, r), float("nan")),
                "empirical": float(empirical[j].item()),
                "attack_norm": float(norms[j].item()),
                "label_kept": int(bool(report.label_kept[j])),
                "seconds": seconds,
            }
            for j, r in enumerate(radii)
        ]
        append_example(part, rows, ATTACK_COLUMNS)


def _estimate(
    ssg: SparseSmoothGrad,
    inputs: torch.Tensor,
    target: int | torch.Tensor,
    config: RunConfig,
    n: int,
    seed: int,
    chunk: int,
) -> torch.Tensor:
    """The smoothed map re-estimated with ``n`` fresh samples from a seeded generator,
    ``chunk`` noisy copies of each row per pass."""
    return ssg.attribute(
        inputs,
        target=target,
        nt_samples=n,
        nt_samples_batch_size=chunk,
        stdevs=config.scale,
        generator=torch.Generator().manual_seed(seed),
    )


def summarize_attack(path: Path) -> dict:
    rows = parse_rows(path.read_text(), ATTACK_COLUMNS)
    radii = sorted({r["radius"] for r in rows})
    by = {r: [row for row in rows if row["radius"] == r] for r in radii}
    return {
        "n_examples": len({r["index"] for r in rows}),
        "radii": radii,
        "certified": [statistics.fmean(x["certified"] for x in by[r]) for r in radii],
        "empirical": [statistics.fmean(x["empirical"] for x in by[r]) for r in radii],
        "below_certified": [sum(x["empirical"] < x["certified"] for x in by[r]) for r in radii],
        "label_kept": sum(r["label_kept"] for r in rows) / len(rows),
    }


def format_attack_summary(summary: dict) -> str:
    lines = [
        f"attacked examples: {summary['n_examples']}   label kept: {summary['label_kept']:.0%}",
        "top-K overlap under the l2 attack (mean over examples):",
        f"  {'radius':>8}  {'certified':>9}  {'attacked':>8}  {'attacked<certified':>18}",
    ]
    for r, c, e, b in zip(
        summary["radii"], summary["certified"], summary["empirical"], summary["below_certified"]
    ):
        lines.append(f"  {r:8.3f}  {c:9.3f}  {e:8.3f}  {b:18d}")
    lines.append(
        "(attacked values are Monte-Carlo estimates of the smoothed maps; the certificate bounds "
        "the expected maps, so it must sit below them up to sampling error)"
    )
    return "\n".join(lines)
