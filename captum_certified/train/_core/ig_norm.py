"""Chen et al.'s (RAR) building blocks: ``||IG(x, x')||_1`` of the loss, and the PGD inner
maximisation on the approximate IG."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from captum_certified._utils.validation import check_int, check_positive
from captum_certified.train._core.checks import (
    SurrogateForward,
    check_box,
    check_generator,
    check_steps,
    frozen_eval,
)
from captum_certified.train._core.inner_max import linf_pgd
from captum_certified.train._core.paths import loss_ig
from captum_certified.train._core.reduce import PathRegularizer


def ig_l1(model, x: Tensor, x_end: Tensor, y: Tensor, n_steps: int) -> Tensor:
    """``||IG_loss(x, x_end)||_1`` per example, ``(bsz,)``, with a graph."""
    return loss_ig(model, x, x_end, y, n_steps).reshape(x.shape[0], -1).abs().sum(dim=1)


class IGNormRegularizer(PathRegularizer):
    r"""``||IG(x, x')||_1``: the l1 norm of the integrated gradients of the cross-entropy
    along ``x -> x'`` (right Riemann sum over ``n_steps`` points), reduced over the batch.

    Args:
        n_steps (int, optional): Path points ``m``. Default: 50
        reduction (str, optional): ``"sum"`` (Chen et al.) or ``"mean"``. Default: "sum"

    Examples::

        >>> reg = IGNormRegularizer()
        >>> value = reg(model, x, x_adv, y)      # scalar with a graph to the parameters
    """

    def per_example(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        return ig_l1(model, x, x_adv, y, self.n_steps)


class IGNormAttack:
    r"""Chen et al.'s inner maximisation: l_inf PGD with a random start on

    ``loss_weight * CE(x') + ig_weight * ||IG_approx(x, x')||_1``,

    where ``IG_approx`` keeps every ``approx_factor``-th of the ``n_steps`` path points and
    rescales by ``approx_factor`` (a right Riemann sum with ``n_steps / approx_factor``
    points). IG-NORM uses ``(loss_weight, ig_weight) = (0, 1)``, IG-SUM-NORM ``(1, weight)``.
    The walk runs with the model in eval mode and its parameters frozen (restored after).

    Args:
        radius (float): l_inf radius, > 0.
        step_size (float): Sign-step length, > 0.
        step_num (int): Number of steps, >= 1.
        n_steps (int, optional): IG path points. Default: 50
        approx_factor (int, optional): Subsampling of the path. Default: 5
        loss_weight (float, optional): Weight of ``CE(x')``. Default: 0.0
        ig_weight (float, optional): Weight of the IG norm. Default: 1.0
        lower_bound (float, optional): Smallest input value. Default: 0.0
        upper_bound (float, optional): Largest input value. Default: 1.0
        random_start (bool, optional): Start at a uniform point of the cube. Default: True
        softplus_beta (float, optional): Differentiate a Softplus(beta) twin. Default: None
        generator (torch.Generator, optional): Random-start source. Default: None

    Examples::

        >>> attack = IGNormAttack(radius=0.3, step_size=0.01, step_num=40, lower_bound=0,
        ...                       upper_bound=1)
        >>> x_adv = attack(model, x, y)
    """

    def __init__(
        self,
        radius: float,
        step_size: float,
        step_num: int,
        n_steps: int = 50,
        approx_factor: int = 5,
        loss_weight: float = 0.0,
        ig_weight: float = 1.0,
        lower_bound: float = 0.0,
        upper_bound: float = 1.0,
        *,
        random_start: bool = True,
        softplus_beta: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.radius = check_positive(radius, "radius")
        self.step_size = check_positive(step_size, "step_size")
        self.step_num = check_int(step_num, "step_num", 1)
        self.n_steps, self.approx_factor = check_steps(n_steps, approx_factor)
        self.loss_weight = check_positive(loss_weight, "loss_weight", allow_zero=True)
        self.ig_weight = check_positive(ig_weight, "ig_weight", allow_zero=True)
        self.lower, self.upper = check_box(lower_bound, upper_bound)
        self.random_start = bool(random_start)
        self.surrogate = SurrogateForward(softplus_beta)
        self.generator = check_generator(generator)

    def objective(self, model, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        """The maximised value per example (on the approximate IG)."""
        value = self.ig_weight * ig_l1(model, x, x_adv, y, self.n_steps // self.approx_factor)
        if self.loss_weight:
            ce = F.cross_entropy(model(x_adv), y, reduction="none")
            value = value + self.loss_weight * ce
        return value

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        with frozen_eval(model):
            forward = self.surrogate(model)
            return linf_pgd(
                lambda z: self.objective(forward, x.detach(), z, y),
                x,
                self.radius,
                self.step_size,
                self.step_num,
                self.lower,
                self.upper,
                random_start=self.random_start,
                generator=self.generator,
            )
