"""A differentiable attribution path: Captum's gradient maps with ``create_graph=True``.

Captum's gradient methods call ``torch.autograd.grad`` without ``create_graph`` (Captum issue
#361), so their maps cannot be differentiated with respect to the input.
:func:`attribute_with_graph` runs Captum's own ``Saliency``, ``InputXGradient`` and
``IntegratedGradients`` with the single-root gradient function the engine's sampling core uses
(:func:`~captum_certified._utils.captum_compat.graph_output_gradients`), so the maps are
Captum's and keep their graph when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real
from typing import Any

import torch
from captum.attr import GradientAttribution, IntegratedGradients
from torch import Tensor

from captum_certified._utils import expansion
from captum_certified._utils.captum_compat import call_attribute, compute_gradients
from captum_certified._utils.model_calls import model_outputs
from captum_certified._utils.validation import check_broadcasts, check_int

Tensors = tuple[Tensor, ...]

IG_METHODS = (
    "gausslegendre",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
)


def _checked_model(model: Callable[..., Tensor], target: Tensor | None) -> Callable[..., Tensor]:
    """``model`` with its outputs as ``(bsz, classes)`` and ``target`` checked against them."""

    def forward(*args: Any) -> Tensor:
        out = model_outputs(model, args, ())
        if target is None and out.shape[1] != 1:
            raise ValueError(
                f"`target` is required for models with {out.shape[1]} outputs per example"
            )
        if target is not None and ((target < 0).any() or (target >= out.shape[1]).any()):
            raise ValueError(f"`target` out of range for {out.shape[1]} classes: {target.tolist()}")
        return out

    return forward


def _points(inputs: Tensors) -> Tensors:
    # Inputs that already carry a graph (the attack's iterate) are used as they are, so the
    # returned gradient stays a function of them; others get a fresh leaf.
    return tuple(x if x.requires_grad else x.detach().requires_grad_() for x in inputs)


def attribute_with_graph(
    captum_method: type[GradientAttribution],
    model: Callable[..., Tensor],
    inputs: Tensors,
    target: Tensor | None,
    args: tuple = (),
    *,
    create_graph: bool = True,
    **kwargs: Any,
) -> Tensors:
    r"""Captum's gradient ``captum_method`` (``Saliency``, ``InputXGradient``,
    ``IntegratedGradients``, ...) on ``model``, keeping the graph if ``create_graph``.

    Captum's own code computes the map; only its ``gradient_func`` is replaced by the
    single-root gradient the engine uses (``graph_output_gradients`` with a graph,
    ``summed_output_gradients`` without), so the values are Captum's and, with
    ``create_graph``, differentiable with respect to ``inputs`` and the model's parameters.
    The caller's tensors are not modified (inputs without a graph become fresh leaves).
    """
    instance = captum_method(_checked_model(model, target))
    if getattr(instance, "gradient_func", None) is not compute_gradients:
        raise TypeError(
            f"{captum_method.__name__} does not compute gradients with `gradient_func`; it "
            "cannot keep a graph"
        )
    points = _points(inputs if create_graph else tuple(x.detach() for x in inputs))
    call_kwargs = {"target": target, "additional_forward_args": args if args else None, **kwargs}
    with torch.enable_grad():
        out = call_attribute(instance, points, call_kwargs, graph=create_graph)
    return tuple(out) if create_graph else tuple(o.detach() for o in out)


def check_ig_options(method: str, n_steps: int) -> None:
    """The IG quadrature ``method`` (one of :data:`IG_METHODS`) and its ``n_steps``."""
    if method not in IG_METHODS:
        raise ValueError(f"`method` must be one of {IG_METHODS}, got {method!r}")
    check_int(n_steps, "n_steps", 1 if method == "gausslegendre" else 2)


def format_baselines(baselines: Any, inputs: Tensors) -> Tensors:
    """IG baselines as one tensor per input (None = zeros; scalars broadcast)."""
    out = []
    for b, x in zip(expansion.format_baselines(baselines, inputs), inputs):
        if isinstance(b, Real) and not isinstance(b, bool):
            out.append(torch.full_like(x[:1], float(b)))
        elif isinstance(b, Tensor):
            b = b.to(dtype=x.dtype, device=x.device)
            if b.shape == x.shape[1:]:
                b = b.unsqueeze(0)
            check_broadcasts(b, x, "`baselines`")
            out.append(b)
        else:
            raise TypeError(
                f"`baselines` entries must be numbers or tensors, got {type(b).__name__}"
            )
    return tuple(out)


def integrated_gradients(
    model: Callable[..., Tensor],
    inputs: Tensors,
    target: Tensor | None,
    args: tuple = (),
    *,
    create_graph: bool = True,
    baselines: Any = None,
    n_steps: int = 50,
    method: str = "gausslegendre",
) -> Tensors:
    r"""Captum's ``IntegratedGradients`` (``multiply_by_inputs=True``), differentiable.

    ``(x - b) * sum_j w_j * grad f(b + alpha_j (x - b))`` with Captum's ``alphas`` and
    weights for ``method``. With ``create_graph`` the result is differentiated through every
    path point, i.e. the attack direction contains ``sum_j w_j alpha_j Hessian(...)`` terms.
    """
    check_ig_options(method, n_steps)
    base = format_baselines(baselines, inputs)
    return attribute_with_graph(
        IntegratedGradients,
        model,
        inputs,
        target,
        args,
        create_graph=create_graph,
        baselines=base,
        n_steps=n_steps,
        method=method,
    )
