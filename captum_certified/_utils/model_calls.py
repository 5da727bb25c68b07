"""Calling a model the way the attacks and the differentiable attributions do: Captum's
``target`` and ``additional_forward_args`` forms, and outputs as ``(bsz, classes)``."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import Any

import torch
from torch import Tensor

Tensors = tuple[Tensor, ...]


def format_target(target: Any, batch: int, device: torch.device) -> Tensor | None:
    """A Captum target for 2-D outputs as a ``(batch,)`` int64 tensor (None stays None).

    Accepts an int, a 0-d or 1-element tensor (shared by all examples), a list of ints or a
    1-D tensor with one entry per example.
    """
    if target is None:
        return None
    if isinstance(target, bool):
        raise TypeError("`target` must be an int, a list of ints or an integer tensor, got bool")
    if isinstance(target, Integral):
        return torch.full((batch,), int(target), dtype=torch.long, device=device)
    if isinstance(target, list):
        if len(target) != batch or not all(
            isinstance(t, Integral) and not isinstance(t, bool) for t in target
        ):
            raise ValueError(
                f"`target` list must hold {batch} ints (one per example), got {target!r}"
            )
        return torch.tensor(target, dtype=torch.long, device=device)
    if isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex():
            raise TypeError(f"`target` tensor must hold integers, got dtype {target.dtype}")
        if target.numel() == 1:
            return torch.full((batch,), int(target.item()), dtype=torch.long, device=device)
        if target.dim() != 1 or target.shape[0] != batch:
            raise ValueError(
                f"`target` tensor must have shape ({batch},) or one element, got "
                f"{tuple(target.shape)}"
            )
        return target.to(device=device, dtype=torch.long)
    raise TypeError(
        "`target` must be an int, a list of ints or an integer tensor (tuple targets for "
        f"outputs with more than two dimensions are not supported), got {type(target).__name__}"
    )


def format_args(additional_forward_args: Any) -> tuple:
    if additional_forward_args is None:
        return ()
    if isinstance(additional_forward_args, tuple):
        return additional_forward_args
    return (additional_forward_args,)


def model_outputs(model: Callable[..., Tensor], inputs: Tensors, args: tuple) -> Tensor:
    """``model(*inputs, *args)`` as a ``(bsz, classes)`` tensor (1-D outputs get one column)."""
    out = model(*inputs, *args)
    if not isinstance(out, Tensor):
        raise TypeError(f"the model must return a Tensor, got {type(out).__name__}")
    if out.dim() == 1:
        out = out.unsqueeze(1)
    if out.dim() != 2 or out.shape[0] != inputs[0].shape[0]:
        raise ValueError(
            "attribution attacks need model outputs of shape (batch, classes), got "
            f"{tuple(out.shape)} for a batch of {inputs[0].shape[0]}"
        )
    return out


def label_and_target(
    model: Callable[..., Tensor], inputs: Tensors, args: tuple, target: Any
) -> tuple[Tensor, Tensor]:
    """The model's predicted class per example, and the class to explain: ``target``
    formatted, or a copy of the prediction where ``target`` is None."""
    with torch.no_grad():
        label = model_outputs(model, inputs, args).argmax(dim=1)
    tgt = format_target(target, inputs[0].shape[0], inputs[0].device)
    return label, label.clone() if tgt is None else tgt
