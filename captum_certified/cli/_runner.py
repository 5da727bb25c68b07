"""The ``certify`` run: resumable, sharded over torchrun processes, results merged."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

from captum_certified.cli._checks import check_fit, resolve_device
from captum_certified.cli._config import ConfigError, RunConfig
from captum_certified.cli._distributed import DistributedContext
from captum_certified.cli._methods import certify_example
from captum_certified.cli._report import (
    format_summary,
    low_certification_hint,
    plot_maps,
    plot_summary,
    summarize,
)
from captum_certified.cli._results import append_example, clean_part_file, merge_parts, read_parts
from captum_certified.cli._sources import load_data, load_model_and_tokenizer

#: Examples whose maps are kept (``maps.pt``) for the heatmap figure of ``report``.
MAP_EXAMPLES = 3


def _versions() -> dict[str, str]:
    import captum
    import numpy
    import scipy

    import captum_certified

    return {
        "captum_certified": captum_certified.__version__,
        "torch": torch.__version__,
        "captum": captum.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


def _prepare_out(out: Path, config: RunConfig, ctx: DistributedContext) -> None:
    """Record the config (or check it matches a run being resumed) and the run's metadata."""
    config_file = out / "config.toml"
    if ctx.rank == 0:
        (out / "parts").mkdir(parents=True, exist_ok=True)
        if config_file.exists() and not read_parts(out, len(RunConfig.load(config_file).radii)):
            config_file.unlink()  # nothing was certified under the old configuration
        if config_file.exists():
            previous = RunConfig.load(config_file)
            if previous.to_dict() != config.to_dict():
                changed = sorted(
                    k for k, v in config.to_dict().items() if previous.to_dict().get(k) != v
                )
                raise ConfigError(
                    f"{out} holds a run with a different configuration (differs in {changed}); "
                    "rerun with the same arguments to resume, or choose another --out"
                )
        else:
            config_file.write_text(config.dump_toml())
        meta = {
            "versions": _versions(),
            "seed": config.seed,
            "world_size": ctx.world_size,
            "command": sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def run_certify(config: RunConfig, *, progress: bool = True, echo=print) -> dict | None:
    """Certify ``config.n_examples`` examples; returns the summary on rank 0."""
    config.validate()
    out = Path(config.out)
    device = resolve_device(config.device)
    ctx = DistributedContext.from_env()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        # everything that depends on the model and the data is checked before `out` exists
        model, tokenizer = load_model_and_tokenizer(config.model, seed=config.seed)
        model = model.to(device)
        x_all, y_all = load_data(
            config.data, config.image_size, seed=config.seed, tokenizer=tokenizer
        )
        if not x_all.is_floating_point() and bool((y_all < 0).any()):
            # unlabelled text lines: the model's own prediction is the label
            with torch.no_grad():
                predicted = model(x_all.to(device)).argmax(dim=1).cpu()
            y_all = torch.where(y_all < 0, predicted, y_all)
        num_features = check_fit(model, x_all, y_all, config, device)
        config = config.resolved(num_features)
        stop = min(config.start + config.n_examples, len(x_all))
        if stop - config.start < config.n_examples and ctx.rank == 0:
            print(
                f"captum-certified: warning: --n-examples {config.n_examples} asked, but --data "
                f"holds {len(x_all) - config.start} examples from --start {config.start}; "
                f"running {stop - config.start}",
                file=sys.stderr,
            )
        error: Exception | None = None
        try:
            _prepare_out(out, config, ctx)
        except ConfigError as err:
            error = err
        ctx.barrier()
        if error is not None:
            raise error
        if not (out / "config.toml").exists():
            raise ConfigError(f"{out} could not be prepared (see rank 0)")
        n_radii = len(config.radii)
        part = out / "parts" / f"part-{ctx.rank}.tsv"
        clean_part_file(part, n_radii)
        ctx.barrier()
        done = set(read_parts(out, n_radii))
        todo = [
            i for i in range(config.start, stop) if i not in done and i % ctx.world_size == ctx.rank
        ]
        if ctx.rank == 0 and done:
            echo(f"resuming: {len(done)} examples already done")
        iterator = todo
        if progress and ctx.rank == 0:
            from tqdm import tqdm

            iterator = tqdm(todo, desc="certify", unit="example", file=sys.stderr)
        for index in iterator:
            started = time.perf_counter()
            x, label = x_all[index : index + 1].to(device), int(y_all[index])
            result = certify_example(model, x, label, config, index)
            seconds = time.perf_counter() - started
            if index - config.start < MAP_EXAMPLES and x.is_floating_point():
                maps_dir = out / "maps"
                maps_dir.mkdir(exist_ok=True)
                torch.save(
                    {
                        "index": index,
                        "label": label,
                        "input": x[0].cpu(),
                        "map": result["map"][0].cpu(),
                        "k_count": result["k_count"],
                    },
                    maps_dir / f"example-{index}.pt",
                )
            rows = [
                {
                    "index": index,
                    "label": label,
                    "predicted": result["predicted"],
                    "correct": int(result["predicted"] == label),
                    "radius": radius,
                    "metric": result["metric"],
                    "certified": value,
                    "certified_count": count,
                    "k_count": result["k_count"],
                    "radius_at_level": result["radius_at_level"],
                    "seconds": seconds,
                }
                for radius, value, count in zip(
                    config.radii, result["certified"], result["certified_count"]
                )
            ]
            append_example(part, rows)
        ctx.barrier()
        if ctx.rank != 0:
            return None
        results = merge_parts(out, n_radii)
        summary = summarize(results, level=config.level, norm=config.norm)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        plot = plot_summary(summary, out / "certified_vs_radius.png", config)
        plot_maps(out / "maps", out / "maps.png", config)
        echo(format_summary(summary))
        echo(f"results: {results}" + (f"   plot: {plot}" if plot else ""))
        hint = low_certification_hint(summary, config, num_features)
        if hint:
            echo(hint)
        return summary
    finally:
        torch.set_num_threads(threads)
        ctx.close()
