"""Ghorbani et al.'s attribution attacks: projected sign steps on an attribution objective."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils import geometry
from captum_certified._utils.validation import check_positive
from captum_certified.robust._core.base import (
    AttributionAttack,
)
from captum_certified.robust._core.options import AttackOptions
from captum_certified.robust._core.report import AttackReport

Tensors = tuple[Tensor, ...]

#: Label-constraint policies of :class:`AttributionPGD` (docs/robust.rst, "Label policies").
LABEL_POLICIES = ("reject_keep_best", "reject_keep_last", "backtrack")


class AttributionPGD(AttributionAttack):
    r"""Projected-gradient attack on an attribution map (Ghorbani et al., AAAI 2019).

    Finds ``x_adv`` in the ball ``||x_adv - x|| <= radius`` (and the box ``[lower_bound,
    upper_bound]``) whose attribution map differs as much as possible from the clean map while
    the original model's prediction stays the clean prediction::

        x_(t+1) = clip_box( x_0 + clip_ball( x_t - step_size * sign(grad L(x_t)) - x_0 ) )

    ``L`` is one of the objectives (losses to minimize) on the preprocessed map ``s`` (channel
    reduction and normalization as in Ghorbani et al.: ``s = sum_c |a_c|``, rescaled to mean 1):

    - ``"topk"``: ``sum_{i in T_k(s(x_0))} s_i(x)``, the mass left on the clean top-k;
    - ``"mass_center"``: ``-||C(s(x)) - round(C(s(x_0)))||^2``, move the centre of mass;
    - ``"targeted"``: ``-sum_i s_i(x) r_i``, pull attribution into a region ``r``
      (``target_region`` of :meth:`perturb`);
    - ``"random"``: random sign directions (a baseline).

    The gradient of ``L`` is taken through a differentiable attribution path
    (``create_graph=True``) on ``surrogate`` (or on ``forward_func`` if none is given); label
    checks, the selection metric and the report always use the original ``forward_func``.

    **Label policies** (which iterates are admissible, which is returned):

    - ``"reject_keep_best"``: every iterate is taken, but one whose prediction differs from
      the clean prediction is not *accepted*; the accepted iterate with the strongest
      ``selection_metric`` (default: the lowest top-k intersection with the clean map) is
      returned (Ghorbani et al., Chen et al., ART).
    - ``"reject_keep_last"``: as above, but the last accepted iterate is returned (SSR).
    - ``"backtrack"``: a step that changes the prediction is halved, up to ``max_halvings``
      times, until it does not; if none keeps it, the walk stays put. Every iterate keeps the
      label; the strongest is returned (Levine et al.'s rule).

    The random start (``random_start=True``, and every restart after the first) is searched:
    up to ``search_iterations`` uniform draws in the ball until one keeps the label (a start
    that keeps the label counts as an iterate). Over ``num_restarts`` runs, each example keeps
    the strongest admissible result. Examples with no admissible iterate are returned
    unchanged and flagged in the report.

    Args:
        forward_func (Callable): The model; returns ``(bsz, classes)`` scores.
        explainer (str or Callable, optional): ``"saliency"``, ``"input_x_gradient"``,
                    ``"integrated_gradients"``, ``"smoothgrad"``, ``"sparse_smoothgrad"``, or a
                    callable ``(model, inputs, target) -> attributions`` that keeps the graph
                    (see :func:`differentiable_attribution`). Default: "saliency"
        lower_bound (float, optional): Smallest input value. Default: ``-inf``
        upper_bound (float, optional): Largest input value. Default: ``inf``
        options (AttackOptions, optional): Objective, ``k``, selection metric, surrogate,
                    map conventions, search limits (see :class:`AttackOptions`).
                    Default: ``AttributionPGD.default_options`` (Ghorbani et al.'s:
                    ``k=0.1``, ``reduce_channels="sum_abs"``, ``normalize="sum_to_hw"``)
        label_policy (str, optional): See above. Default: "reject_keep_best"
        **changes: Any field of :class:`AttackOptions` (e.g. ``k=100``,
                    ``softplus_beta=10.0``), overriding ``options``.

    Attributes:
        last_report (AttackReport): The report of the last :meth:`perturb` call.

    Examples::

        >>> attack = AttributionPGD(model, "saliency", lower_bound=0, upper_bound=1,
        ...                         objective="topk", k=100, softplus_beta=10.0)
        >>> x_adv = attack.perturb(x, radius=8 / 255, step_size=0.5 / 255, step_num=30,
        ...                        target=y)
        >>> attack.last_report.success      # (bsz,) bool: found a label-keeping iterate
        tensor([True, True, True, True])
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        explainer: str | Callable[..., Any] = "saliency",
        lower_bound: float = float("-inf"),
        upper_bound: float = float("inf"),
        options: AttackOptions | None = None,
        *,
        label_policy: str = "reject_keep_best",
        **changes: Any,
    ) -> None:
        super().__init__(forward_func, explainer, lower_bound, upper_bound, options, changes)
        if label_policy not in LABEL_POLICIES:
            raise ValueError(
                f"`label_policy` must be one of {LABEL_POLICIES}, got {label_policy!r}"
            )
        self.label_policy = label_policy

    @overload
    def perturb(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        radius: float | Tensor,
        step_size: float,
        step_num: int,
        target: Any = ...,
        additional_forward_args: Any = ...,
        random_start: bool = ...,
        norm: str = ...,
        mask: Tensor | tuple[Tensor, ...] | None = ...,
        *,
        num_restarts: int = ...,
        target_region: Tensor | tuple[Tensor, ...] | None = ...,
        generator: torch.Generator | None = ...,
        return_report: Literal[False] = False,
    ) -> Tensor | tuple[Tensor, ...]: ...

    @overload
    def perturb(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        radius: float | Tensor,
        step_size: float,
        step_num: int,
        target: Any = ...,
        additional_forward_args: Any = ...,
        random_start: bool = ...,
        norm: str = ...,
        mask: Tensor | tuple[Tensor, ...] | None = ...,
        *,
        num_restarts: int = ...,
        target_region: Tensor | tuple[Tensor, ...] | None = ...,
        generator: torch.Generator | None = ...,
        return_report: Literal[True],
    ) -> tuple[Any, AttackReport]: ...

    @log_usage()
    def perturb(  # type: ignore[misc]
        self,
        inputs: Tensor | tuple[Tensor, ...],
        radius: float | Tensor,
        step_size: float,
        step_num: int,
        target: Any = None,
        additional_forward_args: Any = None,
        random_start: bool = False,
        norm: str = "Linf",
        mask: Tensor | tuple[Tensor, ...] | None = None,
        *,
        num_restarts: int = 1,
        target_region: Tensor | tuple[Tensor, ...] | None = None,
        generator: torch.Generator | None = None,
        return_report: bool = False,
    ) -> Any:
        r"""Attack the attribution map of each example.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Clean inputs (batch in dim 0), inside the
                        box. Tuple in, tuple out; the tensors of a tuple are one perturbation
                        (the l2 norm is taken over all of them together).
            radius (float or Tensor): Ball radius, a float or one per example ``(bsz,)``.
            step_size (float): Step length: ``step_size * sign(grad)`` for ``"Linf"``,
                        ``step_size * grad / ||grad||_2`` for ``"L2"``.
            step_num (int): Number of steps per run.
            target (int, list or Tensor, optional): Class whose attribution is attacked
                        (Captum's target forms for 2-D outputs). None: the clean prediction.
                        The label kept is always the clean prediction. Default: None
            additional_forward_args (Any, optional): Extra model arguments. Default: None
            random_start (bool, optional): Start the first run from a random point of the
                        ball. Default: False
            norm (str, optional): ``"Linf"`` or ``"L2"``. Default: "Linf"
            mask (Tensor or tuple[Tensor, ...], optional): Captum's perturbation mask: 0/1
                        (or weights) broadcastable to each input; only masked elements move.
                        Default: None
            num_restarts (int, optional): Number of runs; runs after the first start at a
                        random point. Default: 1
            target_region (Tensor or tuple[Tensor, ...], optional): The region ``r`` of the
                        ``"targeted"`` objective, in map shape (after channel reduction),
                        with or without the batch dimension. Default: None
            generator (torch.Generator, optional): Source of all randomness (random starts,
                        random directions, guide noise); with it the global RNG is left as
                        found. None uses the global RNG. Default: None
            return_report (bool, optional): Also return the :class:`AttackReport`.
                        Default: False

        Returns:
            **perturbed inputs** (*Tensor* or *tuple[Tensor, ...]*), same shape and
            tuple-ness as ``inputs``; with ``return_report=True``, ``(perturbed, report)``.
            The report's ``extra`` holds ``"accepted_steps"``: ``(bsz,)`` number of accepted
            iterates over all runs.
        """
        norm = geometry.check_norm(norm)
        step_size = check_positive(step_size, "step_size")
        return self.attack_with_restarts(
            inputs,
            radius,
            target,
            additional_forward_args,
            mask,
            target_region,
            generator,
            return_report,
            norm=norm,
            step_num=step_num,
            step_size=lambda _r: lambda _t: step_size,
            num_restarts=num_restarts,
            random_start=random_start,
            start="ball",
            restarts_start_random=True,
            policy=self.label_policy,
            score=self.metric_strength,
        )
