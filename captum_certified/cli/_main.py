"""``captum-certified``: certify a dataset, write results, summarize and plot them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from captum_certified.cli import _train_commands
from captum_certified.cli._config import (
    BOUND_CHOICES,
    DEVICES,
    METHODS,
    NORMS,
    TARGETS,
    ConfigError,
    RunConfig,
    apply_arguments,
    check_source_specs,
)

#: What one default ``attack`` costs, for ``--help`` (benchmarks/bench_attack_cost.py).
ATTACK_COST = (
    "Cost per example: R x restarts x steps x guide-samples double-backward passes (the "
    "guide) plus as many plain gradients (scoring the iterates) plus (R + 1) x eval-samples "
    "plain gradients (the clean and attacked maps, from the same noise), where R is the "
    "number of positive radii of the run (10 with --radii auto) and each pass is one noisy "
    "copy through the model; the time of a pass grows with the model and the input size. "
    "With the defaults and 10 radii: about 1 s of one CPU core per example on the embedded "
    "8x8 digits CNN and under 10 s on a 3x32x32 CNN of 25k parameters "
    "(benchmarks/bench_attack_cost.py). A progress bar shows the time left."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="captum-certified",
        description="Certified-robust attributions: certify a dataset (certify), attack its "
        "maps next to the certificate (attack), summarize and plot a run (report), train models "
        "with robust-attribution losses (train) and put trained models side by side (compare).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    defaults = RunConfig()

    certify = sub.add_parser(
        "certify",
        help="certify attributions of a dataset (default: the embedded digits CNN)",
        description="With no arguments: a small CNN trained on scikit-learn's digits (cached "
        "after the first run), SparseSmoothGrad, a grid of l2 radii. Rerun the same command to "
        "resume an interrupted run; run under torchrun to shard examples over processes.",
    )
    certify.add_argument("--config", help="TOML, YAML or JSON file with any of the options below")
    certify.add_argument("--method", choices=METHODS, help=f"default: {defaults.method}")
    certify.add_argument(
        "--noise", help="gaussian (sparse_smoothgrad, renyi), laplace (renyi), l2_ball (uniform)"
    )
    certify.add_argument("--norm", choices=NORMS, help="perturbation norm (renyi: l1, l2, linf)")
    certify.add_argument(
        "--level", type=float, help="overlap (or cosine, uniform) for the radius column"
    )
    certify.add_argument(
        "--model",
        help="'digits' or 'module:factory', a callable returning a torch.nn.Module (or, for "
        "text, (module, tokenizer)); the module is imported as `python -m` would, from the "
        "current folder first (default: digits)",
    )
    certify.add_argument(
        "--data",
        help="'digits', 'tensors:PATH' (torch.save of (x, y)), 'imagefolder:DIR' or "
        "'text:FILE' (one example per line, optionally LABEL<TAB>text; token ids from the "
        "factory's tokenizer, noise at the model's embedding)",
    )
    certify.add_argument("--out", help=f"output folder (default: {defaults.out})")
    certify.add_argument("--n-examples", type=int, help=f"default: {defaults.n_examples}")
    certify.add_argument("--start", type=int, help="index of the first example (default: 0)")
    certify.add_argument(
        "--nt-samples", type=int, help=f"noise samples (default: {defaults.nt_samples})"
    )
    certify.add_argument("--nt-samples-batch-size", type=int, help="samples per forward/backward")
    certify.add_argument(
        "--noise-scale",
        type=float,
        help="the noise's native scale: sigma (gaussian), b (laplace), ball radius (uniform); "
        f"default: {defaults.noise_scale}",
    )
    certify.add_argument(
        "--sparsity",
        nargs="+",
        metavar="TAU",
        help="top-tau kept per sample: a count (50), a fraction (0.2) or a percentage (20%%); "
        f"default: {defaults.sparsity}. Several values (0.05 0.1 0.2, or 0.05,0.1,0.2) are "
        "answered from one sampling pass (sparse_smoothgrad, renyi), each certificate at "
        "alpha/m for m values, so that all m hold together with probability >= 1 - alpha "
        "(union bound); results.tsv then gets the columns sparsity and alpha",
    )
    certify.add_argument(
        "-k",
        "--k",
        help="top-K certified: a count (5), a fraction (0.2) or a percentage (20%%); 1.0 is "
        f"refused as ambiguous (write 1 or 100%%); default: {defaults.k}",
    )
    certify.add_argument("--alpha", type=float, help="failure probability (default: 0.05)")
    certify.add_argument(
        "--bound",
        choices=list(BOUND_CHOICES),
        help="confidence band (default: auto, the method's default); betting is valid at every "
        "sample size, so on binary maps it is wider than clopper_pearson",
    )
    certify.add_argument(
        "--certificate",
        choices=["topk", "feature"],
        help="topk: certified top-K overlap (default); feature: per-pixel important / "
        "unimportant / abstain (Anani et al.), with a heatmap per example",
    )
    certify.add_argument("--target", choices=TARGETS, help="class explained (default: label)")
    certify.add_argument("--seed", type=int, help="base seed; example i uses seed*1000003 + i")
    certify.add_argument(
        "--radii",
        nargs="+",
        help="radii to certify, or 'auto' (default): 11 radii from 0 to the noise scale "
        "(sigma; 3b for laplace; R/sqrt(d) for uniform), divided by the norm ratio to the "
        "noise's own norm",
    )
    certify.add_argument(
        "--device",
        choices=DEVICES,
        help="cpu (default), cuda (must be present) or auto (cuda when present)",
    )
    certify.add_argument("--image-size", type=int, help="resize imagefolder images (0: keep)")
    certify.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads per process (0: torch's default; default: 1, fastest for "
        "small models on shared machines; recorded because it can change float rounding)",
    )
    certify.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    attack = sub.add_parser(
        "attack",
        help="empirical top-K overlap under an l2 attribution attack, next to the certificate",
        description="Attacks the smoothed maps of a finished `certify` run (sparse_smoothgrad) "
        "at each positive radius with Levine et al.'s l2 attack (all radii of an example in one "
        "batch, on the run's --threads and --device) and writes attack.tsv and attack.png. "
        + ATTACK_COST,
    )
    attack.add_argument("run", help="output folder of a certify run")
    attack.add_argument("--n-examples", type=int, default=10, help="default: 10")
    attack.add_argument("--step-num", type=int, default=10, help="attack steps (default: 10)")
    attack.add_argument("--num-restarts", type=int, default=1, help="random restarts (default: 1)")
    attack.add_argument(
        "--guide-samples", type=int, default=16, help="guide noise samples (default: 16)"
    )
    attack.add_argument(
        "--eval-samples",
        type=int,
        default=512,
        help="samples re-estimating the clean and attacked maps, from the same noise so that "
        "sampling error cancels in their overlap (default: 512)",
    )
    attack.add_argument(
        "--box",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="valid input range the attacked input is clamped to (default: none, unbounded)",
    )
    attack.add_argument(
        "--softplus-beta", type=float, default=10.0, help="surrogate Softplus beta (default: 10)"
    )
    attack.add_argument(
        "--model",
        action="append",
        help="the run's 'module:callable' model, named to confirm that it may be imported and "
        "run (a run folder is data: its config alone never makes the tool run code)",
    )
    attack.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    report = sub.add_parser(
        "report",
        help="summarize a results folder and plot it",
        description="Prints the summary of a certify run (and of its attack, if any) and "
        "(re)draws certified_vs_radius.png, maps.png and attack.png in the run folder.",
    )
    report.add_argument("run", help="output folder of a certify run")
    _train_commands.add_parsers(sub)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    return parser  # pragma: no cover - every command is a sub-command


def _check_certify_run(run: Path) -> None:
    """``attack``/``report``: ``run`` must be a finished certify run (checked without torch)."""
    if not (run / "config.toml").is_file() or not (run / "results.tsv").is_file():
        raise ConfigError(
            f"{run} is not a finished certify run (no config.toml / results.tsv): run "
            f"`captum-certified certify --out {run}` first"
        )


def _version() -> str:
    from captum_certified import __version__

    return __version__


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    config = RunConfig.load(args.config) if args.config else RunConfig()
    apply_arguments(config, args)
    if args.sparsity is not None:
        values = [v.strip() for text in args.sparsity for v in text.split(",")]
        if not all(values):
            raise ConfigError(
                f"--sparsity has an empty value in {' '.join(args.sparsity)!r}; give values "
                "such as 0.05 0.1 0.2 or 0.05,0.1,0.2"
            )
        config.sparsity = values[0] if len(values) == 1 else values
    if args.radii is not None:
        if args.radii == ["auto"]:
            config.radii = "auto"
        else:
            try:
                config.radii = [float(r) for r in args.radii]
            except ValueError:
                raise ConfigError(
                    f"--radii must be 'auto' or numbers, got {' '.join(args.radii)}"
                ) from None
    config.validate()
    return config


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # told with the sub-command's usage, which lists its options
        _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if _train_commands.run(args):
            pass
        elif args.command == "certify":
            config = _config_from_args(args)
            check_source_specs(config.model, config.data)  # before the torch import

            from captum_certified.cli._runner import run_certify

            run_certify(config, progress=not args.no_progress)
        elif args.command == "attack":
            _check_certify_run(Path(args.run))
            from captum_certified.cli._attack import run_attack

            run_attack(
                Path(args.run),
                n_examples=args.n_examples,
                step_num=args.step_num,
                num_restarts=args.num_restarts,
                n_guide=args.guide_samples,
                eval_samples=args.eval_samples,
                box=tuple(args.box) if args.box else None,
                softplus_beta=args.softplus_beta,
                model=args.model,
                progress=not args.no_progress,
            )
        elif args.command == "report":
            from captum_certified.cli._report import (
                format_summary,
                plot_attack,
                plot_maps,
                plot_summary,
                summarize,
            )

            run = Path(args.run)
            results = run / "results.tsv"
            _check_certify_run(run)
            recorded = (
                RunConfig.load(run / "config.toml")
                if (run / "config.toml").exists()
                else RunConfig()
            )
            summary = summarize(results, level=recorded.level, norm=recorded.norm)
            if not isinstance(recorded.radii, str):
                from captum_certified.cli._results import incomplete_results

                lacking = incomplete_results(run, len(recorded.radii) * len(recorded.sparsities))
                if lacking:
                    shown = ", ".join(map(str, lacking[:10])) + (
                        ", ..." if len(lacking) > 10 else ""
                    )
                    print(
                        f"captum-certified: warning: {results} lacks rows of {len(lacking)} "
                        f"example(s) ({shown}); rerun `certify` with the same arguments to "
                        "rebuild it from parts/",
                        file=sys.stderr,
                    )
            print(format_summary(summary))
            plot = plot_summary(summary, run / "certified_vs_radius.png", recorded)
            if plot:
                print(f"plot: {plot}")
            maps = plot_maps(run / "maps", run / "maps.png", recorded)
            if maps:
                print(f"heatmaps: {maps}")
            if (run / "attack.tsv").exists():
                from captum_certified.cli._attack import format_attack_summary, summarize_attack

                attack_summary = summarize_attack(run / "attack.tsv")
                print(format_attack_summary(attack_summary))
                attack_plot = plot_attack(attack_summary, run / "attack.png", recorded)
                if attack_plot:
                    print(f"plot: {attack_plot}")
    except ConfigError as err:
        print(f"captum-certified: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `captum-certified report RUN | head`: the reader left; not an error of ours
        _silence_stdout()
        return 0
    except OSError as err:  # a full disk, a read-only folder: one line, no traceback
        from captum_certified.cli._run_folder import os_error_message

        print(f"captum-certified: error: {os_error_message(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\ncaptum-certified: interrupted; finished examples are saved, rerun the same "
            "command to resume",
            file=sys.stderr,
        )
        return 130
    return 0


def _silence_stdout() -> None:
    """Point stdout at devnull so that the interpreter's final flush does not raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def console_main() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        code = 0
    sys.exit(code)
