"""The few private Captum helpers we rely on, imported in one place (tested against Captum)."""

from __future__ import annotations

from typing import Any

import torch
from captum._utils.common import _run_forward
from captum._utils.gradient import compute_gradients
from torch import Tensor

__all__ = [
    "call_attribute",
    "compute_gradients",
    "graph_output_gradients",
    "summed_output_gradients",
]


def summed_output_gradients(
    forward_fn: Any,
    inputs: Tensor | tuple[Tensor, ...],
    target_ind: Any = None,
    additional_forward_args: Any = None,
    create_graph: bool = False,
) -> tuple[Tensor, ...]:
    """Captum's ``compute_gradients`` with one backward root instead of one per example.

    Captum differentiates ``torch.unbind(outputs)``, i.e. every selected output with a unit
    gradient, which builds one gradient tensor per noisy sample. Differentiating their sum is
    the same computation in a single root (its backward expands a scalar one), and measurably
    cheaper when a chunk holds hundreds of noisy samples of a small model. (An explicit
    ``grad_outputs`` would make torch import sympy on first use.)
    """
    with torch.autograd.set_grad_enabled(True):
        outputs = _run_forward(forward_fn, inputs, target_ind, additional_forward_args)
        if outputs[0].numel() != 1:
            raise AssertionError(
                "Target not provided when necessary, cannot take gradient with respect to "
                "multiple outputs."
            )
        inputs_t = inputs if isinstance(inputs, tuple) else (inputs,)
        return torch.autograd.grad(outputs.sum(), inputs_t, create_graph=create_graph)


def graph_output_gradients(
    forward_fn: Any,
    inputs: Tensor | tuple[Tensor, ...],
    target_ind: Any = None,
    additional_forward_args: Any = None,
) -> tuple[Tensor, ...]:
    """:func:`summed_output_gradients` with ``create_graph=True``: gradients that can be
    differentiated again (Captum's own gradient methods drop the graph, Captum issue #361)."""
    return summed_output_gradients(
        forward_fn, inputs, target_ind, additional_forward_args, create_graph=True
    )


def call_attribute(method: Any, inputs: Any, kwargs: dict[str, Any], graph: bool = False) -> Any:
    """``method.attribute(inputs, **kwargs)`` as the engine and the attacks run it.

    A Captum gradient method (``gradient_func`` is Captum's ``compute_gradients``:
    ``Saliency``, ``InputXGradient``, ``IntegratedGradients``, ...) gets, for the duration of
    the call only, the identical single-root gradient :func:`summed_output_gradients`, or
    :func:`graph_output_gradients` when ``graph`` (a differentiable map). ``graph`` with any
    other method is a ``TypeError``. The undecorated ``attribute`` is called, as Captum's
    ``NoiseTunnel`` does, so usage is logged once per user call.
    """
    swap = getattr(method, "gradient_func", None) is compute_gradients
    if graph and not swap:
        raise TypeError(
            "`create_graph=True` needs a Captum gradient method that computes gradients "
            f"with `gradient_func` (Saliency, InputXGradient, ...), got {type(method).__name__}"
        )
    if swap:
        method.gradient_func = graph_output_gradients if graph else summed_output_gradients
    try:
        # methods without @log_usage() have no __wrapped__ and are called directly
        unwrapped = getattr(type(method).attribute, "__wrapped__", None)
        if unwrapped is not None:
            return unwrapped(method, inputs, **kwargs)
        return method.attribute(inputs, **kwargs)
    finally:
        if swap:
            method.gradient_func = compute_gradients
