"""Checks of what depends on the model and the data, run before a run folder is created."""

from __future__ import annotations

import torch
from torch import nn

from captum_certified.cli._config import ConfigError, RunConfig


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def check_count(value: int | float, d: int, option: str, shape: tuple[int, ...]) -> int:
    if isinstance(value, int):
        if value > d:
            raise ConfigError(
                f"{option} {value} is more than the {d} features of an input of shape {shape}; "
                f"give a count in 1..{d}, a fraction such as 0.2 or a percentage such as 20%"
            )
        return value
    count = int(value * d + 1e-9)
    if count < 1:
        raise ConfigError(
            f"{option} {value:g} selects no feature out of the {d} of an input of shape {shape}"
        )
    return count


def resolve_device(name: str) -> torch.device:
    """``--device``: ``cpu``, ``cuda`` (must be present) or ``auto`` (cuda when present)."""
    available = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda" if available else "cpu")
    if name == "cuda" and not available:
        raise ConfigError("--device cuda: no CUDA device is available (torch.cuda.is_available())")
    return torch.device(name)


def check_fit(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: RunConfig, device: torch.device
) -> int:
    """Check that ``model`` accepts ``x``, that its classes cover the labels and that ``--k``
    and ``--sparsity`` fit the number of features; returns the number of features ``d``.

    Every failure is a :class:`ConfigError` naming the option and the shapes.
    """
    d, shape = check_examples(x)
    if config.start >= len(x):
        raise ConfigError(f"--start {config.start} is past the {len(x)} examples of --data")
    if config.method != "uniform":
        kept: dict[int, object] = {}
        for sparsity in config.sparsities:
            count = check_count(sparsity, d, "--sparsity", shape)
            if count in kept:
                raise ConfigError(
                    f"--sparsity {kept[count]} and {sparsity} both keep {count} of the {d} "
                    f"features of an input of shape {shape}; give each sparsity once"
                )
            kept[count] = sparsity
        check_count(config.k, d, "--k", shape)
    check_model_on_data(
        model,
        x,
        y,
        device,
        labels=config.target == "label",
        resizable=config.data.startswith("imagefolder:"),
        hint=" (use --target predicted to explain the model's own prediction)",
    )
    return d


def check_examples(x: torch.Tensor) -> tuple[int, tuple[int, ...]]:
    """``(d, shape)`` of the examples of ``--data``: features per example and their shape."""
    if x.dim() < 2 or len(x) == 0:
        raise ConfigError(
            f"--data must hold a batch of examples, got a tensor of shape {tuple(x.shape)}"
        )
    return int(x[0].numel()), tuple(x.shape[1:])


def check_model_on_data(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    device: torch.device,
    *,
    labels: bool = True,
    resizable: bool = False,
    hint: str = "",
) -> int:
    """Check that ``model`` takes the examples ``x`` (first ``Conv2d``'s channels, then one
    forward pass on one example) and returns ``(batch, classes)`` scores covering the labels
    ``y`` (when ``labels``); returns the number of classes. ``resizable``: the data are image
    files, so an image-size mismatch suggests ``--image-size``.

    Every failure is a :class:`ConfigError` naming ``--model``/``--data`` and the shapes.
    """
    _, shape = check_examples(x)
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first_conv is not None and x.dim() == 4 and first_conv.in_channels != x.shape[1]:
        raise ConfigError(
            f"--model's first Conv2d expects {first_conv.in_channels} input channels but --data "
            f"has {x.shape[1]} (examples of shape {shape})"
        )
    probe = x[:1].to(device)
    training = model.training
    try:
        model.eval()  # one example through batch norm in training mode would fail (and update it)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = model(probe)
    except Exception as err:  # noqa: BLE001 - any model failure becomes one line
        size = ""
        if resizable and x.dim() == 4:
            size = "; if the model expects another image size, resize with --image-size N"
        raise ConfigError(
            f"--model does not accept --data examples of shape {shape} (batch {tuple(probe.shape)})"
            f": {_first_line(err)}{size}"
        ) from None
    finally:
        model.train(training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"--model must return (batch, classes) scores; on a batch of shape "
            f"{tuple(probe.shape)} it returned {got}"
        )
    if not bool(torch.isfinite(out).all()):
        raise ConfigError(
            f"--model returns NaN or infinite scores on the first --data example "
            f"({out.flatten()[:4].tolist()}...); its predictions would be meaningless"
        )
    classes = int(out.shape[1])
    if labels and len(y):
        top = int(y.max())
        if top >= classes or int(y.min()) < 0:
            raise ConfigError(
                f"--data has labels {int(y.min())}..{top} but --model outputs {classes} classes"
                + hint
            )
    return classes
