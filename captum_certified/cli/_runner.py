"""The ``certify`` run: resumable, sharded over torchrun processes, results merged."""

from __future__ import annotations

import json
import platform
import sys
import time
from contextlib import ExitStack
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
from captum_certified.cli._results import (
    any_rows,
    append_example,
    clean_part_file,
    merge_parts,
    read_parts,
    results_columns,
)
from captum_certified.cli._run_folder import (
    MARKER,
    check_fingerprint,
    check_not_link,
    claim,
    locked,
    read_text,
    resolve_out,
    save_torch,
    state_dict_hash,
    tensor_hash,
    write_text,
)
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


def _prepare_out(out: Path, config: RunConfig, ctx: DistributedContext, fingerprint: dict) -> None:
    """Record the config and the fingerprint of the data and the model (or check that they
    match the run being resumed) and the run's metadata. Rank 0, holding the folder's lock."""
    config_file = out / "config.toml"
    check_not_link(out / "parts")
    (out / "parts").mkdir(exist_ok=True)
    columns = results_columns(len(config.sparsities))
    computed = bool(read_parts(out, rows_per_example(config), columns)) or any_rows(out)
    if computed and config_file.exists():
        previous = RunConfig.load(config_file)
        if previous.to_dict() != config.to_dict():
            changed = sorted(
                k for k, v in config.to_dict().items() if previous.to_dict().get(k) != v
            )
            raise ConfigError(
                f"{out} holds a run with a different configuration (differs in {changed}); "
                "rerun with the same arguments to resume, or choose another --out"
            )
    # nothing computed yet: a corrected command may reuse the folder with another config
    check_fingerprint(out, fingerprint, computed=computed, what="results")
    text = config.dump_toml()
    if not config_file.exists() or read_text(config_file) != text:
        if config_file.exists() and RunConfig.load(config_file).to_dict() == config.to_dict():
            pass  # the same configuration (maybe with the user's comments): kept as it is
        else:
            write_text(config_file, text)
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    started = now
    if (out / "meta.json").exists():
        try:
            started = json.loads(read_text(out / "meta.json")).get("started", now)
        except ValueError:
            pass
    meta = {
        "versions": _versions(),
        "seed": config.seed,
        "world_size": ctx.world_size,
        "command": sys.argv,
        "started": started,
        "last_started": now,
    }
    write_text(out / "meta.json", json.dumps(meta, indent=2) + "\n")


def rows_per_example(config: RunConfig) -> int:
    """Rows of one example in ``results.tsv``: one per radius and sparsity."""
    return len(config.radii) * len(config.sparsities)


def run_fingerprint(data: str, model: str, config: RunConfig) -> dict:
    """What the results depend on besides ``config.toml``: the data and the model's weights,
    and for several sparsities their list (so that a changed list is refused even without
    ``config.toml``; a run of one sparsity records what it always did)."""
    fingerprint: dict = {"data": data, "model": model}
    if len(config.sparsities) > 1:
        fingerprint["sparsity"] = config.sparsities
    return fingerprint


def _open_run(
    out: Path, config: RunConfig, ctx: DistributedContext, fingerprint: dict, stack: ExitStack
) -> None:
    """Claim and lock the run folder on every rank (rank 0 first) and prepare it; an error
    on any rank stops every rank."""
    error: ConfigError | None = None
    if ctx.rank == 0:
        try:
            claim(out, "certify")
            stack.enter_context(locked(out, 0))
            _prepare_out(out, config, ctx, fingerprint)
        except ConfigError as err:
            error = err
    ctx.barrier()
    if ctx.rank != 0:
        try:
            if not (out / MARKER).is_file():
                raise ConfigError(f"{out} could not be prepared (see rank 0)")
            stack.enter_context(locked(out, ctx.rank))
        except ConfigError as err:
            error = err
    if ctx.any(error is not None):
        stack.close()
        raise error or ConfigError(f"{out} could not be prepared (see rank 0)")


def run_certify(config: RunConfig, *, progress: bool = True, echo=print) -> dict | None:
    """Certify ``config.n_examples`` examples; returns the summary on rank 0."""
    config.validate()
    out = resolve_out(config.out)
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
        fingerprint = run_fingerprint(tensor_hash(x_all, y_all), state_dict_hash(model), config)
        with ExitStack() as stack:
            _open_run(out, config, ctx, fingerprint, stack)
            return _certify_examples(
                out, config, ctx, model, x_all, y_all, stop, device, num_features, progress, echo
            )
    finally:
        torch.set_num_threads(threads)
        ctx.close()


def _certify_examples(
    out: Path,
    config: RunConfig,
    ctx: DistributedContext,
    model: torch.nn.Module,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    stop: int,
    device: torch.device,
    num_features: int,
    progress: bool,
    echo,
) -> dict | None:
    """The certify loop of one rank in a claimed, locked run folder."""
    n_rows = rows_per_example(config)
    columns = results_columns(len(config.sparsities))
    part = out / "parts" / f"part-{ctx.rank}.tsv"
    clean_part_file(part, n_rows, columns)
    ctx.barrier()
    done = set(read_parts(out, n_rows, columns))
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
        settings = result.get("settings", [result])
        if index - config.start < MAP_EXAMPLES and x.is_floating_point():
            maps_dir = out / "maps"
            check_not_link(maps_dir)
            maps_dir.mkdir(exist_ok=True)
            saved = {
                "index": index,
                "label": label,
                "input": x[0].detach().cpu().clone(),
                "map": settings[0]["map"][0].detach().cpu().clone(),
                "k_count": settings[0]["k_count"],
            }
            if "settings" in result:  # each sparsity's map, for the heatmap figure
                saved["maps"] = torch.stack([s["map"][0].detach().cpu() for s in settings])
                saved["sparsity"] = [s["sparsity"] for s in settings]
            # clones: a view would store the whole data set's storage
            save_torch(saved, maps_dir / f"example-{index}.pt")
        rows = [
            {
                "index": index,
                "label": label,
                "predicted": result["predicted"],
                "correct": int(result["predicted"] == label),
                "sparsity": setting.get("sparsity"),
                "alpha": setting.get("alpha"),
                "radius": radius,
                "metric": setting["metric"],
                "certified": value,
                "certified_count": count,
                "k_count": setting["k_count"],
                "radius_at_level": setting["radius_at_level"],
                "seconds": seconds,
            }
            for setting in settings
            for radius, value, count in zip(
                config.radii, setting["certified"], setting["certified_count"]
            )
        ]
        append_example(part, rows, columns)
    ctx.barrier()
    if ctx.rank != 0:
        return None
    results = merge_parts(out, n_rows, columns)
    summary = summarize(results, level=config.level, norm=config.norm)
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot = plot_summary(summary, out / "certified_vs_radius.png", config)
    plot_maps(out / "maps", out / "maps.png", config)
    echo(format_summary(summary))
    echo(f"results: {results}" + (f"   plot: {plot}" if plot else ""))
    hint = low_certification_hint(summary, config, num_features)
    if hint:
        echo(hint)
    return summary
