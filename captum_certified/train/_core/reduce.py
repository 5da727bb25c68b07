"""Batch reduction of per-example loss terms, and the regularizers built on it."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn

from captum_certified.train._core.checks import check_reduction, check_steps


def reduce(values: Tensor, reduction: str) -> Tensor:
    """``values.sum()`` or ``values.mean()`` of a ``(bsz,)`` tensor."""
    return values.sum() if reduction == "sum" else values.mean()


class ReducedRegularizer(ABC):
    """A regularizer ``(model, x, x_adv, y) -> scalar``: a per-example term, reduced over the
    batch by ``reduction`` (``"sum"`` or ``"mean"``). Subclasses define :meth:`per_example`."""

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = check_reduction(reduction)

    @abstractmethod
    def per_example(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        """The ``(bsz,)`` term, with a graph to the parameters."""

    def __call__(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        return reduce(self.per_example(model, x, x_adv, y), self.reduction)

    def _options(self) -> str:
        return f"reduction={self.reduction!r}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._options()})"


class PathRegularizer(ReducedRegularizer):
    """A :class:`ReducedRegularizer` computed from integrated gradients over ``n_steps``
    path points."""

    def __init__(self, n_steps: int = 50, reduction: str = "sum") -> None:
        super().__init__(reduction)
        self.n_steps, _ = check_steps(n_steps, 1)

    def _options(self) -> str:
        return f"n_steps={self.n_steps}, {super()._options()}"
