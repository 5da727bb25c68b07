"""A small training loop for attributional losses: progress bar, evaluation hook, checkpoints
that resume after a kill, and DistributedDataParallel under ``torchrun``."""

from __future__ import annotations

import io
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from captum_certified._utils.validation import check_positive_int

CHECKPOINT = "last.pt"
#: Prefix and suffix of a checkpoint's temporary file (a killed write leaves one; removed).
_TEMP_PREFIX, _TEMP_SUFFIX = ".last.pt.", ".partial"


def _generators(obj: Any, depth: int = 0) -> list[torch.Generator]:
    """Every ``torch.Generator`` reachable through attributes of a loss (its attack, its
    regularizers), in a deterministic order, so a checkpoint can restore their states."""
    found: list[torch.Generator] = []
    if depth > 3 or obj is None:
        return found
    if isinstance(obj, torch.Generator):
        return [obj]
    items: Iterable[Any]
    if isinstance(obj, (list, tuple)):
        items = obj
    elif hasattr(obj, "__dict__"):
        items = [v for k, v in sorted(vars(obj).items()) if not k.startswith("_twin")]
    else:
        return found
    for item in items:
        if isinstance(item, Tensor):
            continue
        for g in _generators(item, depth + 1):
            if all(g is not h for h in found):
                found.append(g)
    return found


class AttributionalTrainer:
    r"""Train ``model`` with ``loss_fn(model, x, y)`` (any callable returning a scalar, e.g.
    :class:`SarkarLoss`); the losses also work in a hand-written loop.

    Each epoch: the model is put in train mode, every batch of ``train_loader`` (pairs
    ``(x, y)``) takes one optimizer step; then ``eval_fn(model, val_loader)`` (default:
    accuracy) runs with the model in eval mode, its values are added to ``history``, and a
    checkpoint (model, optimizer, scheduler, history, RNG states of the global generator, the
    loader's generator and the loss's generators) is written atomically to
    ``checkpoint_dir/last.pt``. :meth:`fit` resumes from that file when it exists, so a killed
    run continues from its last finished epoch with the same data order and noise.

    Under ``torchrun`` wrap ``model`` in ``torch.nn.parallel.DistributedDataParallel`` and
    give each process its shard (``DistributedSampler``); only rank 0 writes checkpoints and
    shows the progress bar.

    Args:
        model (torch.nn.Module): The model (or a DDP wrapper).
        loss_fn (Callable): ``(model, x, y) -> scalar``.
        optimizer (torch.optim.Optimizer): The optimizer.
        train_loader (Iterable): Batches ``(x, y)``.
        val_loader (Iterable, optional): Batches for the evaluation hook. Default: None
        eval_fn (Callable, optional): ``(model, val_loader) -> dict[str, float]``.
                    Default: accuracy on ``val_loader``
        scheduler (optional): A learning-rate scheduler stepped once per epoch. Default: None
        checkpoint_dir (str or Path, optional): Where ``last.pt`` lives. Default: None
        progress (bool, optional): Show a tqdm progress bar. Default: True
        device (torch.device or str, optional): Where batches are moved. Default: None

    Attributes:
        history (list[dict]): Per epoch: ``epoch``, ``loss``, ``seconds`` and the eval values.
        epoch (int): Finished epochs.

    Examples::

        >>> from captum_certified.train import SarkarLoss
        >>> loss_fn = SarkarLoss(radius=0.3, weight=0.1, step_num=10, step_size=0.05)
        >>> trainer = AttributionalTrainer(model, loss_fn, optimizer, train_loader,
        ...                                val_loader, checkpoint_dir="runs/sarkar")
        >>> history = trainer.fit(epochs=5)
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor],
        optimizer: torch.optim.Optimizer,
        train_loader: Iterable,
        val_loader: Iterable | None = None,
        *,
        eval_fn: Callable[[nn.Module, Iterable], dict[str, float]] | None = None,
        scheduler: Any = None,
        checkpoint_dir: str | os.PathLike | None = None,
        progress: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError("`loss_fn` must be a callable (model, x, y) -> scalar")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.train_loader, self.val_loader = train_loader, val_loader
        self.eval_fn = eval_fn if eval_fn is not None else default_eval
        self.scheduler = scheduler
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.progress = progress
        self.device = device
        self.history: list[dict[str, float]] = []
        self.epoch = 0
        self.rank = (
            torch.distributed.get_rank()
            if torch.distributed.is_available() and torch.distributed.is_initialized()
            else 0
        )
        self._setup = self._describe_setup()
        self._resumed = False

    def _describe_setup(self) -> dict[str, str]:
        """What a checkpoint must match to be resumed by this trainer: the model's parameter
        names and shapes, the optimizer's type and hyperparameters (as first given, before a
        scheduler changes them), the loss's and the scheduler's types."""
        model = _unwrap(self.model)
        shapes = [(k, tuple(v.shape), str(v.dtype)) for k, v in model.state_dict().items()]
        groups = [
            {k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups
        ]
        return {
            "model": f"{type(model).__qualname__} {shapes}",
            "optimizer": f"{type(self.optimizer).__qualname__} {groups}",
            "loss": type(self.loss_fn).__qualname__,
            "scheduler": type(self.scheduler).__qualname__,
        }

    # checkpoints -------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT

    def _loader_generator(self) -> torch.Generator | None:
        for obj in (self.train_loader, getattr(self.train_loader, "sampler", None)):
            g = getattr(obj, "generator", None)
            if isinstance(g, torch.Generator):
                return g
        return None

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training where it stopped."""
        loader_g = self._loader_generator()
        return {
            "model": _unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "epoch": self.epoch,
            "history": list(self.history),
            "rng": torch.get_rng_state(),
            "loader_rng": None if loader_g is None else loader_g.get_state(),
            "loss_rng": [g.get_state() for g in _generators(self.loss_fn)],
            "setup": dict(self._setup),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; a state of a different setup (model, optimizer and
        its hyperparameters, loss, scheduler) is refused with a ``ValueError`` naming what
        differs."""
        recorded = state.get("setup")
        if not isinstance(recorded, dict):
            raise ValueError("the checkpoint records no trainer setup; it was not written here")
        changed = sorted(k for k in self._setup if recorded.get(k) != self._setup[k])
        if changed:
            details = "; ".join(
                f"{k}: {recorded.get(k)} then, {self._setup[k]} now" for k in changed
            )
            raise ValueError(
                f"the checkpoint belongs to another experiment: its {', '.join(changed)} "
                f"differ ({details}); use another `checkpoint_dir` or the same setup"
            )
        _unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        torch.set_rng_state(state["rng"])
        loader_g = self._loader_generator()
        if loader_g is not None and state.get("loader_rng") is not None:
            loader_g.set_state(state["loader_rng"])
        for g, s in zip(_generators(self.loss_fn), state.get("loss_rng", [])):
            g.set_state(s)

    def save_checkpoint(self) -> None:
        path = self.checkpoint_path
        if path is None or self.rank != 0:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(path.parent)
        if path.is_symlink():
            raise ValueError(f"{path} is a symbolic link; refusing to write through it")
        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def resume(self) -> bool:
        """Load ``checkpoint_dir/last.pt`` if it exists; returns whether it did.

        The file is read with ``torch.load(weights_only=True)``: tensors, numbers and
        strings only, never code. A checkpoint of another experiment (see
        :meth:`load_state_dict`) or one that is not a plain checkpoint raises ``ValueError``.
        A checkpoint is loaded once per trainer: :meth:`fit` does not load it again.
        """
        path = self.checkpoint_path
        if self._resumed or path is None:
            return self._resumed
        _remove_stale_temps(path.parent)
        if not path.exists():
            return False
        try:
            state = torch.load(path, weights_only=True)
        except pickle.UnpicklingError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ValueError(
                f"{path} is not a plain checkpoint (it would need code to load: {first}); "
                "it was not loaded"
            ) from None
        self.load_state_dict(state)
        self._resumed = True
        return True

    # training ----------------------------------------------------------------------------
    def fit(self, epochs: int) -> list[dict[str, float]]:
        """Train until ``epochs`` epochs are finished (resuming a checkpoint if present).

        Returns:
            list[dict]: :attr:`history`.
        """
        epochs = check_positive_int(epochs, "epochs")
        self.resume()
        while self.epoch < epochs:
            started = time.perf_counter()
            loss = self.train_epoch()
            record = {"epoch": self.epoch + 1, "loss": loss}
            record["seconds"] = time.perf_counter() - started
            if self.scheduler is not None:
                self.scheduler.step()
            record.update(self.evaluate())
            self.epoch += 1
            self.history.append(record)
            self.save_checkpoint()
        return self.history

    def train_epoch(self) -> float:
        """One pass over ``train_loader``; returns the mean batch loss."""
        self.model.train()
        sampler = getattr(self.train_loader, "sampler", None)
        set_epoch = getattr(sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.epoch)
        batches: Iterable = self.train_loader
        bar = None
        if self.progress and self.rank == 0:
            from tqdm import tqdm

            bar = tqdm(
                batches, desc=f"epoch {self.epoch + 1}", unit="batch", file=sys.stderr, leave=False
            )
            batches = bar
        total, count = 0.0, 0
        for x, y in batches:
            if self.device is not None:
                x, y = x.to(self.device), y.to(self.device)
            loss = self.loss_fn(self.model, x, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            count += 1
            if bar is not None:
                bar.set_postfix(loss=f"{float(loss.detach()):.4g}")
        if bar is not None:
            bar.close()
        return total / max(count, 1)

    def evaluate(self) -> dict[str, float]:
        """``eval_fn(model, val_loader)`` in eval mode (the mode is restored); {} without a
        validation loader."""
        if self.val_loader is None:
            return {}
        was = self.model.training
        self.model.eval()
        try:
            return dict(self.eval_fn(_unwrap(self.model), self.val_loader))
        finally:
            self.model.train(was)


def _remove_stale_temps(folder: Path) -> None:
    """Remove the temporary files of checkpoint writes that were killed."""
    for pattern in (f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}", "last.tmp*"):
        for path in folder.glob(pattern):
            if path.is_file() and not path.is_symlink():
                path.unlink()


def _unwrap(model: nn.Module) -> nn.Module:
    return (
        model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model
    )


def default_eval(model: nn.Module, loader: Iterable) -> dict[str, float]:
    """Accuracy over ``loader``."""
    hits = total = 0
    with torch.no_grad():
        for x, y in loader:
            hits += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return {"accuracy": hits / max(total, 1)}
