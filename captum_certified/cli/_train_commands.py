"""The ``train`` and ``compare`` sub-commands (parsers and dispatch)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from captum_certified.cli._config import (
    ConfigError,
    apply_arguments,
    check_positive_options,
    check_source_specs,
    option,
    read_config_file,
)
from captum_certified.cli._run_folder import resolve_out
from captum_certified.cli._train_config import LOSSES, TrainConfig


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``train`` and ``compare``."""
    defaults = TrainConfig()
    train = sub.add_parser(
        "train",
        help="train a model with a robust-attribution loss (default: the digits CNN)",
        description="Trains the digits CNN (or --model/--data) with --loss; rerun the same "
        "command to resume after an interruption. Writes model.pt and history.json to --out.",
    )
    train.add_argument("--config", help="TOML, YAML or JSON file with any of the options below")
    train.add_argument("--loss", choices=LOSSES, help=f"default: {defaults.loss}")
    train.add_argument("--out", help="output folder (default: runs/<loss>)")
    train.add_argument("--model", help="'digits' or 'package.module:factory' (untrained)")
    train.add_argument(
        "--data",
        help="'digits', 'tensors:PATH' (torch.save of (x, y)) or 'imagefolder:DIR' (one "
        "sub-folder per class); 80/20 train/validation",
    )
    train.add_argument("--image-size", type=int, help="resize imagefolder images (0: keep)")
    for name, kind, text in (
        ("epochs", int, "epochs"),
        ("batch-size", int, "batch size"),
        ("lr", float, "Adam learning rate"),
        ("seed", int, "seed of the initialisation, data order and attack starts"),
        ("radius", float, "l_inf radius of the inner maximisation"),
        ("step-num", int, "inner PGD steps"),
        ("step-size", float, "inner PGD step"),
        ("n-steps", int, "IG path points"),
        ("approx-factor", int, "path subsampling of the inner PGD"),
        ("weight", float, "regularizer weight (lambda, beta, s)"),
        ("k", float, "ART: top-k features of the alignment attack (fraction or count)"),
        ("mixing", float, "SSR: share of the curvature term (the paper's alpha)"),
        ("threads", int, "torch threads (0: torch's default)"),
    ):
        attr = name.replace("-", "_")
        default = getattr(defaults, attr)
        shown = "the loss's own" if name == "weight" else default
        train.add_argument(f"--{name}", type=kind, help=f"{text} (default: {shown})")
    train.add_argument(
        "--reduction", choices=["sum", "mean"], help="batch reduction (default: mean)"
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    compare = sub.add_parser(
        "compare",
        help="put several train runs side by side: accuracy, attacked top-k, certified overlap",
        description="For each finished train run: clean accuracy, top-k intersection and "
        "Kendall's tau of IG maps under Ghorbani et al.'s top-k attack (l_inf), and the "
        "certified top-K overlap of SparseSmoothGrad at each --radii. Writes compare.tsv, "
        "compare.json and compare.png to --out.",
    )
    compare.add_argument("runs", nargs="+", help="output folders of train runs")
    compare.add_argument("--out", default="runs/compare", help="default: runs/compare")
    compare.add_argument("--n-examples", type=int, default=100, help="default: 100")
    compare.add_argument("--radius", type=float, default=0.3, help="attack radius (0.3)")
    compare.add_argument("--step-num", type=int, default=20, help="attack steps (20)")
    compare.add_argument("--step-size", type=float, default=0.03, help="attack step (0.03)")
    compare.add_argument("--num-restarts", type=int, default=1, help="attack restarts (1)")
    compare.add_argument("--n-steps", type=int, default=16, help="IG path points (16)")
    compare.add_argument("--k", type=float, default=0.125, help="evaluation top-k (8 of 64)")
    compare.add_argument(
        "--radii", type=float, nargs="+", default=[0.1, 0.2], help="certified l2 radii"
    )
    compare.add_argument("--nt-samples", type=int, default=1024, help="certificate samples")
    compare.add_argument(
        "--noise-scale",
        type=float,
        default=0.5,
        help="sigma of the certificate's Gaussian noise, as certify --noise-scale (0.5)",
    )
    compare.add_argument("--seed", type=int, default=0, help="default: 0")
    compare.add_argument(
        "--model",
        action="append",
        help="a run's 'module:callable' model, named to confirm that it may be imported and "
        "run (repeat for several; a run folder alone never makes the tool run code)",
    )
    compare.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> bool:
    """Run ``train`` or ``compare`` if that is the command; returns whether it was."""
    if args.command == "train":
        data = read_config_file(args.config) if args.config else {}
        config = TrainConfig.from_dict(data)
        apply_arguments(config, args)
        if args.out is None and "out" not in data:
            config.out = f"runs/{config.loss}"
        config.validate()  # before the torch import: a typo is told at once
        check_source_specs(config.model, config.data)

        from captum_certified.cli._train import run_train

        run_train(config, progress=not args.no_progress)
        return True
    if args.command == "compare":
        check_compare_arguments(args)  # before the torch import: a typo is told at once

        from captum_certified.cli._compare import run_compare

        run_compare(
            [Path(r) for r in args.runs],
            resolve_out(args.out),
            n_examples=args.n_examples,
            radius=args.radius,
            step_num=args.step_num,
            step_size=args.step_size,
            num_restarts=args.num_restarts,
            n_steps=args.n_steps,
            k=args.k,
            radii=args.radii,
            nt_samples=args.nt_samples,
            noise_scale=args.noise_scale,
            seed=args.seed,
            model=args.model,
            progress=not args.no_progress,
        )
        return True
    return False


def check_compare_arguments(args: argparse.Namespace) -> None:
    """``compare``'s option values and run folders, checked without torch."""
    for name in ("n_examples", "step_num", "num_restarts", "nt_samples"):
        if getattr(args, name) < 1:
            raise ConfigError(f"{option(name)} must be >= 1, got {getattr(args, name)}")
    if args.n_steps < 2:
        raise ConfigError(f"--n-steps must be >= 2, got {args.n_steps}")
    check_positive_options(args, ("radius", "step_size", "noise_scale", "k"))
    if args.k != int(args.k) and args.k > 1:
        raise ConfigError(f"--k {args.k:g}: a count is a whole number, a fraction is in (0, 1)")
    if any(not math.isfinite(r) or r < 0 for r in args.radii):
        raise ConfigError("--radii must be finite radii >= 0")
    for run in args.runs:
        folder = Path(run)
        if not (folder / "train_config.json").is_file() or not (folder / "model.pt").is_file():
            raise ConfigError(
                f"{run} is not a finished train run (no train_config.json / model.pt): run "
                f"`captum-certified train --out {run}` first"
            )
