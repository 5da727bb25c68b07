"""The ``train`` run: a model trained with one robust-attribution loss, resumable."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from captum_certified.cli._checks import check_count, check_examples, check_model_on_data
from captum_certified.cli._config import ConfigError
from captum_certified.cli._run_folder import (
    check_fingerprint,
    claim,
    locked,
    read_text,
    resolve_out,
    save_torch,
    state_dict_hash,
    tensor_hash,
    write_text,
)
from captum_certified.cli._train_config import TrainConfig


def build_loss(config: TrainConfig, generator: torch.Generator) -> Any:
    """The loss named by ``config.loss`` with the run's settings. The default weights are
    the ones that cost 0.03 test accuracy in the digits study (docs/train_comparison.rst)."""
    from captum_certified import train

    weight = None if config.weight < 0 else config.weight
    pgd: dict[str, Any] = dict(
        radius=config.radius,
        step_num=config.step_num,
        step_size=config.step_size,
        n_steps=config.n_steps,
        approx_factor=config.approx_factor,
        reduction=config.reduction,
        generator=generator,
    )
    if config.loss == "natural":
        return train.AttributionalLoss()
    if config.loss == "ig_norm":
        return train.IGNormLoss(weight=2.5 if weight is None else weight, **pgd)
    if config.loss == "ig_sum_norm":
        return train.IGSumNormLoss(weight=1.5 if weight is None else weight, **pgd)
    if config.loss in ("sarkar", "sarkar_adv"):
        objective = "ar" if config.loss == "sarkar" else "adv_ar"
        return train.SarkarLoss(
            weight=(2.1 if objective == "ar" else 1.6) if weight is None else weight,
            objective=objective,
            **pgd,
        )
    if config.loss == "ssr":
        return train.SSRLoss(mixing=config.mixing, weight=0.5 if weight is None else weight)
    k = int(config.k) if config.k >= 1 else float(config.k)
    return train.ARTLoss(
        radius=config.radius,
        step_size=config.step_size,
        step_num=config.step_num,
        k=k,
        weight=33.0 if weight is None else weight,
        generator=generator,
    )


def new_model(spec: str, seed: int) -> nn.Module:
    """An untrained model: the digits CNN (initialised from ``seed``) or a factory's module."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec == "digits":
            from captum_certified.cli._digits import DigitsCNN

            return DigitsCNN()
        from captum_certified.cli._sources import load_model

        return load_model(spec).train()


def train_split(spec: str, seed: int, image_size: int = 0) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_val, y_val)``: the digits split, or 80/20 of a tensors file or an
    image folder (resized to ``image_size`` when given)."""
    if spec == "digits":
        from captum_certified.cli._digits import load_digits_split

        return load_digits_split(seed=0)
    from captum_certified.cli._sources import load_data

    x, y = load_data(spec, image_size, seed=seed)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(x))
    return x[perm[:cut]], y[perm[:cut]], x[perm[cut:]], y[perm[cut:]]


def check_train_fit(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig
) -> None:
    """The checks of ``certify`` for a training run: ``--model`` takes the examples of ``--data``
    (channels, image size), its classes cover the labels, ART's ``--k`` fits the features."""
    d, shape = check_examples(x)
    if config.loss == "art":
        k = int(config.k) if config.k >= 1 else float(config.k)
        check_count(k, d, "--k", shape)
    check_model_on_data(
        model, x, y, torch.device("cpu"), resizable=config.data.startswith("imagefolder:")
    )


def run_train(config: TrainConfig, *, progress: bool = True, echo=print) -> list[dict]:
    """Train (or resume) the run in ``config.out``; writes ``model.pt``, ``history.json``.

    ``config.out`` must be a new or empty folder or a ``train`` run folder; the run holds its
    lock while it trains."""
    config.validate()
    out = resolve_out(config.out)
    world = _world_size()
    if config.batch_size % world:
        raise ConfigError(
            f"--batch-size {config.batch_size} must be divisible by the {world} processes "
            "(it is the global batch; each process takes an equal share)"
        )
    # everything that depends on the model and the data is checked before `out` exists
    model = new_model(config.model, config.seed)
    split = train_split(config.data, config.seed, config.image_size)
    check_train_fit(model, split[0], split[1], config)
    if world > 1 and int(os.environ.get("RANK", "0")) != 0:
        return _train_in(out, config, model, split, progress=progress, echo=echo)
    claim(out, "train")
    with locked(out):
        return _train_in(out, config, model, split, progress=progress, echo=echo)


def _train_in(
    out: Path,
    config: TrainConfig,
    model: nn.Module,
    split: tuple[torch.Tensor, ...],
    *,
    progress: bool,
    echo,
) -> list[dict]:
    """Train ``model`` on ``split`` in the claimed run folder ``out`` (rank 0 holds its lock)."""
    from captum_certified.train import AttributionalTrainer

    rank0 = int(os.environ.get("RANK", "0")) == 0
    computed = (out / "last.pt").exists()
    config_file = out / "train_config.json"
    if rank0 and computed and config_file.exists():
        previous = json.loads(read_text(config_file))
        if previous != asdict(config):
            changed = sorted(k for k, v in asdict(config).items() if previous.get(k) != v)
            raise ConfigError(
                f"{out} holds a run with a different configuration (differs in {changed}); "
                "rerun with the same arguments to resume, or choose another --out"
            )
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    world, rank, created = _distributed()
    try:
        x_train, y_train, x_val, y_val = split
        if rank == 0:
            # nothing trained yet: a corrected command may reuse the folder
            fingerprint = {
                "data": tensor_hash(x_train, y_train, x_val, y_val),
                "initial model": state_dict_hash(model),
            }
            check_fingerprint(out, fingerprint, computed=computed, what="a checkpoint")
            write_text(config_file, json.dumps(asdict(config), indent=2) + "\n")
        dataset = TensorDataset(x_train, y_train)
        # One shuffled order shared by every process count: rank r takes positions r::world,
        # so 2 processes with half batches see exactly the batches of 1 process.
        sampler: DistributedSampler[Any] = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=True, seed=config.seed
        )
        loader = DataLoader(dataset, batch_size=config.batch_size // world, sampler=sampler)
        val = [(x_val, y_val)]
        loss_fn = build_loss(config, torch.Generator().manual_seed(config.seed + 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        trained: nn.Module = model
        if world > 1:  # gradients averaged over processes: the mean over the global batch
            trained = nn.parallel.DistributedDataParallel(model)
        trainer = AttributionalTrainer(
            trained,
            loss_fn,
            optimizer,
            loader,
            val,
            checkpoint_dir=out,
            progress=progress and rank == 0,
        )
        try:
            resumed = trainer.resume()
        except ValueError as err:
            raise ConfigError(f"{out}: {err}") from None
        if resumed and rank == 0:
            echo(f"resuming after epoch {trainer.epoch}")
        started = time.perf_counter()
        if not progress and rank == 0:  # no bar: one line per epoch, so a long run is not mute
            for epoch in range(trainer.epoch + 1, config.epochs + 1):
                record = trainer.fit(epoch)[-1]
                print(
                    f"epoch {epoch}/{config.epochs}: loss {record['loss']:.4g}, val accuracy "
                    f"{record.get('accuracy', float('nan')):.3f}, {record['seconds']:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
        history = trainer.fit(config.epochs)
        if rank != 0:
            return history
        save_torch(model.state_dict(), out / "model.pt")
        write_text(out / "history.json", json.dumps(history, indent=2) + "\n")
        meta = {
            "loss": repr(loss_fn),
            "torch": torch.__version__,
            "command": sys.argv,
            "seconds_this_session": time.perf_counter() - started,
        }
        write_text(out / "meta.json", json.dumps(meta, indent=2) + "\n")
        last = history[-1]
        per_epoch = sum(h["seconds"] for h in history) / len(history)
        echo(
            f"{config.loss}: {len(history)} epochs, val accuracy {last.get('accuracy', 0):.3f}, "
            f"{per_epoch:.2f} s/epoch; model: {out / 'model.pt'}"
        )
        return history
    finally:
        torch.set_num_threads(threads)
        if created:
            torch.distributed.destroy_process_group()


def _world_size() -> int:
    """Processes of this run: torchrun's ``WORLD_SIZE`` (1 when not under torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _distributed() -> tuple[int, int, bool]:
    """``(world_size, rank, created)``: under torchrun (``WORLD_SIZE`` > 1) join the gloo
    process group, creating it if the caller has not."""
    world = _world_size()
    if world <= 1:
        return 1, 0, False
    dist = torch.distributed
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo")
    return dist.get_world_size(), dist.get_rank(), created


def load_trained(run: Path) -> tuple[nn.Module, TrainConfig]:
    """The model and config of a finished ``train`` run."""
    config_file, weights = run / "train_config.json", run / "model.pt"
    if not config_file.exists() or not weights.exists():
        raise ConfigError(f"{run} is not a finished train run (no train_config.json / model.pt)")
    config = TrainConfig.from_dict(json.loads(read_text(config_file)))
    model = new_model(config.model, config.seed)
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval(), config
