"""Certify a dataset across processes: sharded by rank, resumable, identical to one process."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.distributed import DistributedContext, example_generator

#: One file per finished example under ``out_dir``.
EXAMPLES_DIR = "examples"
RUN_FILE = "run.json"


def certify_dataset(
    method: Any,
    data: Sequence[tuple[Tensor, Any]],
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    summarize: Callable[[Any], Any] | None = None,
    return_certificate: bool = True,
    **attribute_kwargs: Any,
) -> list[Any] | None:
    r"""``method.attribute`` on every example of ``data``, sharded over torch.distributed ranks.

    Each process calls this function with the same arguments. Example ``i`` goes to rank
    ``i % world_size`` and draws its noise from its own generator, seeded with
    ``seed * 1000003 + i`` (the same rule as the command line's ``certify``), so the results
    do not depend on the number of processes, on which process ran an example, or on
    resumption: they are bit-identical to one process on the same kind of device. Every
    finished example is written to ``out_dir/examples/<i>.pt`` at once (atomically); a call
    that finds a file skips that example, so an interrupted run resumes where it stopped.

    The process group is the one already initialized (any backend), else the one ``torchrun``
    describes in the environment (joined with gloo and left again at the end), else none
    (one process).

    Args:
        method (Attribution): A certified method (``SparseSmoothGrad``, a
                    :class:`~captum_certified.attr.CertifiedWrapper`, ...) or any object whose
                    ``attribute(inputs, target=..., generator=..., **kwargs)`` returns the
                    result to keep.
        data (Sequence): Indexable, with ``len``: item ``i`` is ``(x, target)`` with ``x`` one
                    example without the batch dimension (a ``TensorDataset`` of inputs and
                    labels works; ``target`` may be None).
        out_dir (str or PathLike): Folder of the run (created; shared by all ranks).
        seed (int, optional): Run seed. Default: 0
        device (torch.device or str, optional): Where examples and generators live; None:
                    the device of each example as ``data`` gives it. Seeded results are
                    identical on the same kind of device. Default: None
        summarize (Callable, optional): Maps the result of ``attribute`` to what is stored
                    (e.g. a few certified radii instead of a 224x224 map); it runs on the
                    rank that computed the example. None stores the result as returned (moved
                    to the CPU). Default: None
        return_certificate (bool, optional): Passed to ``attribute``. Default: True
        **attribute_kwargs: Other arguments of ``attribute`` (``nt_samples``, ``stdevs``, ...).
                    A run folder holding another configuration is refused.

    Returns:
        On rank 0 (or a single process), the stored result of every example, in order; None
        on the other ranks.

    Examples::

        >>> from captum_certified.attr import SparseSmoothGrad
        >>> data = torch.utils.data.TensorDataset(x, y)
        >>> ssg = SparseSmoothGrad(model, sparsity=0.1)
        >>> results = certify_dataset(ssg, data, "run", nt_samples=16, stdevs=0.25,
        ...                           summarize=lambda r: r[1].topk_overlap(0.1, 0.05))
        >>> torch.cat(results).shape
        torch.Size([4])
    """
    if not hasattr(method, "attribute"):
        raise TypeError(f"`method` must have an attribute() method, got {type(method).__name__}")
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise TypeError(f"`data` must be indexable with a length, got {type(data).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int, got {seed!r}")
    if summarize is not None and not callable(summarize):
        raise TypeError(f"`summarize` must be callable, got {type(summarize).__name__}")
    if "generator" in attribute_kwargs or "target" in attribute_kwargs:
        raise ValueError(
            "`generator` and `target` are set per example by certify_dataset (the target from "
            "`data`, the generator from `seed` and the example's index)"
        )
    out = Path(out_dir)
    examples = out / EXAMPLES_DIR
    config = {
        "method": type(method).__name__,
        "examples": len(data),
        "seed": seed,
        "return_certificate": return_certificate,
        "attribute_kwargs": {k: _stable_repr(v) for k, v in sorted(attribute_kwargs.items())},
    }
    ctx = DistributedContext.from_env()
    try:
        error: Exception | None = None
        if ctx.rank == 0:
            try:
                _prepare(out, examples, config)
            except ValueError as err:
                error = err
        ctx.barrier()
        if error is not None:
            raise error
        if (out / RUN_FILE).exists() and json.loads((out / RUN_FILE).read_text()) != config:
            raise ValueError(f"`out_dir` {out} holds another run (see rank 0)")
        todo = ctx.shard([i for i in range(len(data)) if not _path(examples, i).exists()])
        for index in todo:
            x, target = data[index]
            x = x.unsqueeze(0)
            dev = torch.device(device) if device is not None else x.device
            x = x.to(dev)
            if isinstance(target, Tensor):
                target = target.reshape(1).to(dev)
            result = method.attribute(
                x,
                target=target,
                generator=example_generator(seed, index, dev),
                return_certificate=return_certificate,
                **attribute_kwargs,
            )
            stored = summarize(result) if summarize is not None else result
            _save(_to_cpu(stored), _path(examples, index))
        ctx.barrier()
        if ctx.rank != 0:
            return None
        return [
            torch.load(_path(examples, i), weights_only=False, map_location="cpu")
            for i in range(len(data))
        ]
    finally:
        ctx.close()


def _prepare(out: Path, examples: Path, config: dict[str, Any]) -> None:
    examples.mkdir(parents=True, exist_ok=True)
    run = out / RUN_FILE
    if run.exists():
        previous = json.loads(run.read_text())
        if previous != config:
            changed = sorted(k for k in config if previous.get(k) != config[k])
            raise ValueError(
                f"`out_dir` {out} holds a run with another configuration (differs in "
                f"{changed}); pass the same arguments to resume, or another `out_dir`"
            )
    else:
        run.write_text(json.dumps(config, indent=2) + "\n")


def _stable_repr(value: Any) -> str:
    """``repr`` without memory addresses (they differ between processes and resumptions)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _path(examples: Path, index: int) -> Path:
    return examples / f"{index}.pt"


def _save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, tuple):
        return tuple(_to_cpu(o) for o in obj)
    if isinstance(obj, list):
        return [_to_cpu(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    return obj
