"""Argument checks that raise errors naming the offending argument."""

from __future__ import annotations

import math
import os
from contextlib import AbstractContextManager, nullcontext
from numbers import Integral, Real
from typing import Any

import torch
from torch import Tensor


def check_probability(value: float, name: str) -> float:
    """A failure probability strictly inside (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"`{name}` must be a float in (0, 1), got {type(value).__name__}")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"`{name}` must be in (0, 1), got {value}")
    return value


def check_positive(value: Any, name: str, allow_zero: bool = False) -> float:
    """A finite real number > 0 (>= 0 with ``allow_zero``), as a float."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not (ok and math.isfinite(value)):
        raise ValueError(
            f"`{name}` must be finite and {'>=' if allow_zero else '>'} 0, got {value}"
        )
    return value


def check_positive_float(value: float, name: str) -> float:
    """A finite float > 0."""
    return check_positive(value, name)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check_choice(value: Any, choices: tuple[Any, ...], name: str) -> Any:
    """One of ``choices``."""
    if isinstance(value, (list, dict, set)) or value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """A bool (not merely truthy)."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {type(value).__name__}")
    return value


def check_int(value: Any, name: str, minimum: int) -> int:
    """An int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return int(value)


def check_positive_int(value: int, name: str) -> int:
    """An int >= 1."""
    return check_int(value, name, 1)


def rng_guard(generator: torch.Generator | None, like: Any) -> AbstractContextManager:
    """With a generator, leave the global RNG exactly as found even if the model draws from
    it (dropout in train mode): such draws happen on a forked copy of its state. ``like``
    (a tensor or a tuple of them) tells which CUDA device's RNG to fork as well."""
    if generator is None:
        return nullcontext()
    first = like[0] if isinstance(like, tuple) else like
    cuda = isinstance(first, Tensor) and first.device.type == "cuda"
    return torch.random.fork_rng(devices=[first.device] if cuda else [])


def resolve_count(k: int | float, d: int, name: str = "k") -> int:
    """Turn ``k`` (an int count in 1..d, or a float fraction of ``d`` in (0, 1]) into a count.

    A fraction is rounded down (with a small tolerance, so 0.2 * 10 gives 2, not 1) and must
    select at least one feature.
    """
    if isinstance(k, bool) or not isinstance(k, Real):
        raise TypeError(
            f"`{name}` must be an int count or a float fraction, got {type(k).__name__}"
        )
    if isinstance(k, Integral):
        if not 1 <= int(k) <= d:
            raise ValueError(f"`{name}` must be in 1..{d} (number of features), got {k}")
        return int(k)
    k = float(k)
    if not (0.0 < k <= 1.0) or math.isnan(k):
        raise ValueError(f"`{name}` as a fraction must be in (0, 1], got {k}")
    count = int(math.floor(k * d + 1e-9))
    if count < 1:
        raise ValueError(f"`{name}`={k} selects no feature out of {d}")
    return count


def check_radius(radius: float | Tensor, name: str = "radius") -> Tensor:
    """A non-negative radius, scalar or tensor, returned as a float64 tensor."""
    if isinstance(radius, bool):
        raise TypeError(f"`{name}` must be a number or a tensor, got bool")
    if isinstance(radius, Real):
        radius = torch.tensor(float(radius), dtype=torch.float64)
    elif isinstance(radius, Tensor):
        radius = radius.detach().to(torch.float64)
    else:
        raise TypeError(f"`{name}` must be a number or a tensor, got {type(radius).__name__}")
    if torch.isnan(radius).any():
        raise ValueError(f"`{name}` must not be NaN")
    if (radius < 0).any():
        raise ValueError(f"`{name}` must be >= 0, got {radius.min().item()}")
    return radius


def shapes_broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether two shapes broadcast together.

    Checked in Python: ``torch.broadcast_shapes`` imports sympy on first use (+0.2 s, +30 MiB).
    """
    return all(p == q or p == 1 or q == 1 for p, q in zip(reversed(a), reversed(b)))


def check_broadcasts(t: Tensor, x: Tensor, label: str) -> None:
    """Raise ``ValueError`` (naming ``label``) unless ``t`` broadcasts to the shape of ``x``."""
    if not shapes_broadcast(tuple(t.shape), tuple(x.shape)):
        raise ValueError(
            f"{label} of shape {tuple(t.shape)} does not broadcast to the input shape "
            f"{tuple(x.shape)}"
        )


def check_finite_inputs(inputs: tuple[Tensor, ...], name: str = "inputs") -> None:
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"`{name}`[{i}] must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() == 0:
            raise ValueError(f"`{name}`[{i}] must have a batch dimension (dim 0)")
        if x.is_floating_point() and not torch.isfinite(x).all():
            raise ValueError(f"`{name}`[{i}] contains NaN or infinite values")


def format_float_inputs(inputs: Any, name: str = "inputs") -> tuple[tuple[Tensor, ...], bool]:
    """A tensor or a non-empty tuple of floating-point, finite tensors sharing dim 0 (the
    batch), as a tuple, and whether it was a tuple. Noise can only be added to such inputs."""
    is_tuple = isinstance(inputs, tuple)
    inputs_t: tuple[Tensor, ...] = inputs if is_tuple else (inputs,)
    if len(inputs_t) == 0:
        raise ValueError(f"`{name}` must not be empty")
    check_finite_inputs(inputs_t, name)
    for i, x in enumerate(inputs_t):
        if not x.is_floating_point():
            raise TypeError(
                f"`{name}`[{i}] has dtype {x.dtype}: noise can only be added to floating "
                "point inputs (embed integer ids first)"
            )
    if any(x.shape[0] != inputs_t[0].shape[0] for x in inputs_t):
        raise ValueError(f"all `{name}` tensors must have the same batch size (dim 0)")
    return inputs_t, is_tuple


def check_count_spec(k: Any, name: str) -> int | float:
    """Validate a count-or-fraction before the number of features is known."""
    if isinstance(k, bool) or not isinstance(k, Real):
        raise TypeError(
            f"`{name}` must be an int count or a float fraction, got {type(k).__name__}"
        )
    if isinstance(k, Integral):
        if k < 1:
            raise ValueError(f"`{name}` as a count must be >= 1, got {k}")
        return int(k)
    if not 0.0 < float(k) <= 1.0:
        raise ValueError(f"`{name}` as a fraction must be in (0, 1], got {k}")
    return float(k)


def check_feature_count(value: Any, name: str) -> int:
    """A number of features: a positive int (``ValueError`` naming ``name`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}")
    return int(value)


def format_inputs(inputs: Any, name: str = "inputs") -> tuple[tuple[Tensor, ...], bool]:
    """A tensor or a non-empty tuple of tensors with a common, non-empty batch dimension
    (dim 0): the tensors as a tuple, and whether ``inputs`` was a tuple."""
    is_tuple = isinstance(inputs, tuple)
    xs: tuple[Any, ...] = inputs if is_tuple else (inputs,)
    if len(xs) == 0:
        raise ValueError(f"`{name}` must not be an empty tuple")
    for i, x in enumerate(xs):
        where = f"`{name}`[{i}]" if is_tuple else f"`{name}`"
        if not isinstance(x, Tensor):
            raise TypeError(f"{where} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() == 0:
            raise ValueError(f"{where} must have a batch dimension (dim 0)")
    if any(x.shape[0] != xs[0].shape[0] for x in xs):
        raise ValueError(
            f"all `{name}` tensors must have the same batch size (dim 0), got shapes "
            f"{[tuple(x.shape) for x in xs]}"
        )
    if xs[0].shape[0] == 0:
        raise ValueError(f"`{name}` is empty (batch size 0)")
    return xs, is_tuple


def check_orders(orders: Tensor | float | list) -> Tensor:
    """Rényi orders as a 1-D float64 tensor, all finite and > 1."""
    orders = torch.as_tensor(orders, dtype=torch.float64).reshape(-1)
    if orders.numel() == 0:
        raise ValueError("`orders` must not be empty")
    if not torch.isfinite(orders).all() or (orders <= 1).any():
        raise ValueError("`orders` (Rényi orders) must be finite and > 1")
    return orders
