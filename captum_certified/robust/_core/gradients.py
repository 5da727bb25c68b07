"""A differentiable attribution path: gradient maps with ``create_graph=True``.

Captum's gradient methods call ``torch.autograd.grad`` without ``create_graph`` (Captum issue
#361), so their maps cannot be differentiated with respect to the input. The functions here
compute the same maps as Captum's ``Saliency``, ``InputXGradient`` and
``IntegratedGradients`` (same targets, same quadrature for IG), keeping the graph when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch import Tensor

from captum_certified._utils.validation import shapes_broadcast

Tensors = tuple[Tensor, ...]

IG_METHODS = (
    "gausslegendre",
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
)


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


def _selected(out: Tensor, target: Tensor | None) -> Tensor:
    if target is None:
        if out.shape[1] != 1:
            raise ValueError(
                f"`target` is required for models with {out.shape[1]} outputs per example"
            )
        return out[:, 0]
    if (target < 0).any() or (target >= out.shape[1]).any():
        raise ValueError(f"`target` out of range for {out.shape[1]} classes: {target.tolist()}")
    return out.gather(1, target.reshape(-1, 1)).squeeze(1)


def _points(inputs: Tensors) -> Tensors:
    # Inputs that already carry a graph (the attack's iterate) are used as they are, so the
    # returned gradient stays a function of them; others get a fresh leaf.
    return tuple(x if x.requires_grad else x.detach().requires_grad_() for x in inputs)


def input_gradients(
    model: Callable[..., Tensor],
    inputs: Tensors,
    target: Tensor | None,
    args: tuple = (),
    *,
    create_graph: bool = True,
) -> Tensors:
    r"""``d model(inputs)[target] / d inputs`` per example (the sum over examples is used, so
    each row gets its own gradient), with the graph kept if ``create_graph``."""
    with torch.enable_grad():
        points = _points(inputs)
        total = _selected(model_outputs(model, points, args), target).sum()
        grads = torch.autograd.grad(total, points, create_graph=create_graph, allow_unused=True)
    return tuple(torch.zeros_like(p) if g is None else g for g, p in zip(grads, points))


def saliency(
    model: Callable[..., Tensor],
    inputs: Tensors,
    target: Tensor | None,
    args: tuple = (),
    *,
    create_graph: bool = True,
    abs: bool = True,
) -> Tensors:
    """Captum's ``Saliency``: ``|grad|`` (or the signed gradient with ``abs=False``)."""
    grads = input_gradients(model, inputs, target, args, create_graph=create_graph)
    return tuple(g.abs() for g in grads) if abs else grads


def input_x_gradient(
    model: Callable[..., Tensor],
    inputs: Tensors,
    target: Tensor | None,
    args: tuple = (),
    *,
    create_graph: bool = True,
) -> Tensors:
    """Captum's ``InputXGradient``: ``x * grad``."""
    grads = input_gradients(model, inputs, target, args, create_graph=create_graph)
    return tuple(x * g for x, g in zip(inputs, grads))


def quadrature(method: str, n_steps: int) -> tuple[list[float], list[float]]:
    """Path positions ``alphas`` and weights of Captum's IG approximation methods."""
    if method not in IG_METHODS:
        raise ValueError(f"`method` must be one of {IG_METHODS}, got {method!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, Integral):
        raise TypeError(f"`n_steps` must be an int, got {type(n_steps).__name__}")
    if n_steps < (1 if method == "gausslegendre" else 2):
        raise ValueError(f"`n_steps` must be >= 2 (>= 1 for gausslegendre), got {n_steps}")
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return (0.5 * (1 + nodes)).tolist(), (0.5 * weights).tolist()
    n = n_steps
    w = [1.0 / n] * n
    kind = method.split("_")[1]
    if kind == "trapezoid":
        w[0] /= 2
        w[-1] /= 2
        return torch.linspace(0, 1, n).tolist(), w
    if kind == "left":
        return torch.linspace(0, 1 - 1 / n, n).tolist(), w
    if kind == "middle":
        return torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n).tolist(), w
    return torch.linspace(1 / n, 1, n).tolist(), w


def format_baselines(baselines: Any, inputs: Tensors) -> Tensors:
    """IG baselines as one tensor per input (None = zeros; scalars broadcast)."""
    if baselines is None:
        return tuple(torch.zeros_like(x[:1]) for x in inputs)
    items = baselines if isinstance(baselines, tuple) else (baselines,)
    if len(items) != len(inputs):
        raise ValueError(f"`baselines` has {len(items)} entries for {len(inputs)} input tensors")
    out = []
    for b, x in zip(items, inputs):
        if isinstance(b, (int, float)) and not isinstance(b, bool):
            out.append(torch.full_like(x[:1], float(b)))
        elif isinstance(b, Tensor):
            b = b.to(dtype=x.dtype, device=x.device)
            if b.shape == x.shape[1:]:
                b = b.unsqueeze(0)
            if not shapes_broadcast(tuple(b.shape), tuple(x.shape)):
                raise ValueError(
                    f"`baselines` shape {tuple(b.shape)} does not match input shape "
                    f"{tuple(x.shape)}"
                )
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
    alphas, weights = quadrature(method, n_steps)
    base = format_baselines(baselines, inputs)
    n, batch = len(alphas), inputs[0].shape[0]
    with torch.enable_grad():
        diffs = tuple(x - b for x, b in zip(inputs, base))
        paths = tuple(
            torch.cat([(b + a * d).expand_as(d) for a in alphas], dim=0)
            for b, d in zip(base, diffs)
        )
        if not create_graph or not any(x.requires_grad for x in inputs):
            paths = tuple(p.detach() for p in paths)
        step_args = tuple(
            torch.cat([a] * n, dim=0) if isinstance(a, Tensor) and a.dim() > 0 else a for a in args
        )
        tgt = None if target is None else target.repeat(n)
        grads = input_gradients(model, paths, tgt, step_args, create_graph=create_graph)
        w = torch.tensor(weights, dtype=inputs[0].dtype, device=inputs[0].device)
        out = []
        for g, d in zip(grads, diffs):
            g = g.reshape((n, batch) + tuple(g.shape[1:]))
            total = (g * w.reshape((n,) + (1,) * (g.dim() - 1))).sum(dim=0)
            out.append(total * d)
    return tuple(out)
