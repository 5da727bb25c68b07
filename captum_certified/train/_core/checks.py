"""Argument checks and model-state hygiene shared by the training losses."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from numbers import Real

import torch
from torch import Tensor, nn

from captum_certified._utils.surrogate import softplus_surrogate
from captum_certified._utils.validation import (
    check_choice,
    check_int,
    check_positive,
    check_positive_int,
)

REDUCTIONS = ("sum", "mean")
OBJECTIVES = ("ar", "adv_ar")


def check_reduction(reduction: str) -> str:
    return check_choice(reduction, REDUCTIONS, "reduction")


def check_objective(objective: str) -> str:
    return check_choice(objective, OBJECTIVES, "objective")


def check_box(lower: float, upper: float) -> tuple[float, float]:
    for name, v in (("lower_bound", lower), ("upper_bound", upper)):
        if isinstance(v, bool) or not isinstance(v, Real):
            raise TypeError(f"`{name}` must be a float, got {type(v).__name__}")
    if not float(lower) < float(upper):
        raise ValueError(f"`lower_bound` ({lower}) must be < `upper_bound` ({upper})")
    return float(lower), float(upper)


def check_steps(n_steps: int, approx_factor: int) -> tuple[int, int]:
    """IG path steps ``m`` and the inner maximisation's subsampling factor: ``m % f == 0``
    and ``m / f >= 2`` (the integrated gradients need at least two path points)."""
    n_steps = check_int(n_steps, "n_steps", 2)
    approx_factor = check_positive_int(approx_factor, "approx_factor")
    if n_steps % approx_factor:
        raise ValueError(
            f"`n_steps` ({n_steps}) must be a multiple of `approx_factor` ({approx_factor})"
        )
    if n_steps // approx_factor < 2:
        raise ValueError(
            f"`n_steps / approx_factor` ({n_steps} / {approx_factor}) must be >= 2: the inner "
            "maximisation's integrated gradients need at least two path points"
        )
    return n_steps, approx_factor


def check_generator(generator: torch.Generator | None) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"`generator` must be a torch.Generator or None, got {type(generator).__name__}"
        )
    return generator


def check_call(model: nn.Module, x: Tensor, y: Tensor) -> None:
    """Validate ``loss_fn(model, x, y)`` arguments (labels are range-checked by
    :func:`check_labels` once the number of classes is known)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    if not any(True for _ in model.parameters()):
        raise ValueError("`model` has no parameters: there is nothing to train")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("`x` must be a floating-point Tensor with the batch in dim 0")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"`x` must have a batch dimension and features, got {tuple(x.shape)}")
    if not isinstance(y, Tensor) or y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError("`y` must be an integer Tensor of class labels")
    if y.shape != (x.shape[0],):
        raise ValueError(f"`y` must have shape ({x.shape[0]},), got {tuple(y.shape)}")


def check_labels(y: Tensor, num_classes: int) -> None:
    if num_classes < 2:
        raise ValueError(f"the model must output >= 2 classes per example, got {num_classes}")
    if bool((y < 0).any()) or bool((y >= num_classes).any()):
        raise ValueError(f"`y` holds labels outside 0..{num_classes - 1}: {y.tolist()}")


@contextlib.contextmanager
def frozen_eval(model: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients for an inner maximisation; every module's
    train flag and every parameter's ``requires_grad`` are restored afterwards."""
    with restored_state(model):
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        yield


@contextlib.contextmanager
def restored_state(model: nn.Module) -> Iterator[None]:
    """Restore every module's train flag and every parameter's ``requires_grad`` on exit."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in flags:
            p.requires_grad_(flag)


class SurrogateForward:
    r"""``model`` evaluated with its ReLUs replaced by ``Softplus(beta)``, with the *live*
    parameters and buffers of ``model`` (no copy of the weights per call).

    The structure (:func:`~captum_certified.robust.softplus_surrogate`) is built once per
    model and reused through ``torch.func.functional_call``, so a training step that changed
    the weights is seen by the next call. With ``beta=None`` it is ``model`` itself.
    """

    def __init__(self, beta: float | None) -> None:
        self.beta = None if beta is None else check_positive(beta, "softplus_beta")
        self._twin: nn.Module | None = None
        self._of: weakref.ref | None = None

    def __call__(self, model: nn.Module) -> Callable[[Tensor], Tensor]:
        if self.beta is None:
            return model
        if self._of is None or self._of() is not model:
            self._twin = softplus_surrogate(model, self.beta)
            self._of = weakref.ref(model)
        twin = self._twin
        assert twin is not None
        state = {**dict(model.named_parameters()), **dict(model.named_buffers())}

        def forward(x: Tensor) -> Tensor:
            twin.train(model.training)
            return torch.func.functional_call(twin, state, (x,))

        return forward
