"""Reading a layer's activation (the boundary where noise can enter a model)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

Tensors = tuple[Tensor, ...]


class _Stop(Exception):
    """Raised by the capture hook to skip the rest of the forward."""


def check_layer(layer: Any, name: str = "noise_layer") -> nn.Module:
    """``layer`` if it is one ``nn.Module``; a ``TypeError`` naming ``name`` otherwise."""
    if not isinstance(layer, nn.Module):
        raise TypeError(
            f"`{name}` must be one torch.nn.Module (e.g. model.embedding), got "
            f"{type(layer).__name__}"
        )
    return layer


def _call(forward_func: Callable[..., Any], inputs: Tensors, args: Any) -> Any:
    extra = () if args is None else (args if isinstance(args, tuple) else (args,))
    return forward_func(*inputs, *extra)


def capture_activation(
    forward_func: Callable[..., Any],
    layer: nn.Module,
    inputs: Tensors,
    additional_forward_args: Any = None,
    *,
    layer_input: bool = False,
) -> Tensor:
    """The layer's output (or, with ``layer_input``, its first input) on ``inputs``, detached.

    The forward is stopped right after the layer runs. Raises ``ValueError`` if the layer does
    not run, or produces something other than one floating-point tensor.
    """
    seen: list[Tensor] = []

    def grab(value: Any) -> None:
        if not isinstance(value, Tensor) or not value.is_floating_point():
            what = "input" if layer_input else "output"
            raise ValueError(
                f"`noise_layer`'s {what} must be one floating-point tensor to add noise to, "
                f"got {type(value).__name__}"
                + (f" of dtype {value.dtype}" if isinstance(value, Tensor) else "")
            )
        seen.append(value.detach())
        raise _Stop

    if layer_input:
        handle = layer.register_forward_pre_hook(lambda m, args: grab(args[0] if args else None))
    else:
        handle = layer.register_forward_hook(lambda m, args, out: grab(out))
    try:
        with torch.no_grad():
            _call(forward_func, inputs, additional_forward_args)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not seen:
        raise ValueError("`noise_layer` did not run in the forward of `inputs`")
    return seen[0]
