"""Levine et al.'s l2 attribution attack with random starts on the sphere and backtracking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.validation import check_positive
from captum_certified.robust._core.base import AttributionAttack
from captum_certified.robust._core.options import AttackOptions
from captum_certified.robust._core.report import AttackReport

Tensors = tuple[Tensor, ...]


class AttributionL2Attack(AttributionAttack):
    r"""l2 attack on the top-K of an attribution map (Levine, Singla, Feizi, arXiv 1905.12105).

    Minimizes the objective on the attacked map inside ``||x_adv - x||_2 <= radius`` (the norm
    is taken over all features of all input tensors together, the norm of the certificates of
    :class:`~captum_certified.attr.SparseSmoothGrad`), keeping the original model's
    prediction. Levine et al.'s default objective is ``sum_{i in T_K(s(x_0))} s_i(x)`` on
    element maps ``s = |a| / sum |a|`` (``reduce_channels="abs"``, ``normalize="sum_to_one"``).
    Each of ``num_restarts`` runs:

    1. (``random_start=True``) draws up to ``search_iterations`` points uniformly on the
       sphere of radius ``radius`` until one keeps the label (none: the run starts at the
       clean input);
    2. takes ``step_num`` normalized-gradient steps ``x <- x - eta_i * g / ||g||_2`` with
       ``eta_i = step_size / (i + 1)`` (the step starts at ``step_size``, default ``radius``,
       and shrinks by ``(i + 1) / (i + 2)`` each iteration), ``g`` the objective's gradient on
       the surrogate;
    3. projects onto the l2 ball and clamps to the box;
    4. halves ``eta_i``, up to ``max_halvings`` times, until the original model keeps the
       label (otherwise the iterate stays), and keeps the iterate with the lowest objective
       evaluated on the original model.

    With ``explainer="sparse_smoothgrad"`` the direction comes from the guide (mean of
    ``|g| / sum |g|`` over ``n_guide`` noisy copies on the surrogate, ``create_graph=True``)
    and iterates are scored on the original model's Sparsified SmoothGrad estimate (mean of
    the binary top-``sparsity`` maps over ``n_eval`` fixed noise draws): the quantity the
    certificate speaks about.

    Args:
        forward_func (Callable): The model; returns ``(bsz, classes)`` scores.
        explainer (str or Callable, optional): As in :class:`AttributionPGD`.
                    Default: "saliency"
        lower_bound (float, optional): Smallest input value. Default: ``-inf``
        upper_bound (float, optional): Largest input value. Default: ``inf``
        options (AttackOptions, optional): See :class:`AttackOptions`; ``objective`` must be
                    ``"topk"``, ``"mass_center"`` or ``"targeted"`` (iterates are chosen by it)
                    and ``selection_metric`` is only reported.
                    Default: ``AttributionL2Attack.default_options`` (Levine et al.'s CIFAR
                    setting: ``k=0.25``, ``reduce_channels="abs"``, ``normalize="sum_to_one"``)
        **changes: Any field of :class:`AttackOptions`, overriding ``options``.

    Attributes:
        last_report (AttackReport): The report of the last :meth:`perturb` call.

    Examples::

        >>> attack = AttributionL2Attack(model, "sparse_smoothgrad", lower_bound=0,
        ...                              upper_bound=1, k=0.2, softplus_beta=10.0,
        ...                              explainer_kwargs={"n_guide": 64, "stdevs": 0.25})
        >>> x_adv, report = attack.perturb(x, radius=0.5, target=y, num_restarts=1,
        ...                                return_report=True,
        ...                                generator=torch.Generator().manual_seed(0))
    """

    default_options = AttackOptions(k=0.25, reduce_channels="abs", normalize="sum_to_one")

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        explainer: str | Callable[..., Any] = "saliency",
        lower_bound: float = float("-inf"),
        upper_bound: float = float("inf"),
        options: AttackOptions | None = None,
        **changes: Any,
    ) -> None:
        super().__init__(forward_func, explainer, lower_bound, upper_bound, options, changes)
        if self.objective == "random":
            raise ValueError(
                "`objective` must be 'topk', 'mass_center' or 'targeted' for the l2 attack "
                "(it keeps the best objective value), got 'random'"
            )

    @overload
    def perturb(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        radius: float | Tensor,
        step_size: float | None = ...,
        step_num: int = ...,
        target: Any = ...,
        additional_forward_args: Any = ...,
        random_start: bool = ...,
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
        step_size: float | None = ...,
        step_num: int = ...,
        target: Any = ...,
        additional_forward_args: Any = ...,
        random_start: bool = ...,
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
        step_size: float | None = None,
        step_num: int = 20,
        target: Any = None,
        additional_forward_args: Any = None,
        random_start: bool = True,
        mask: Tensor | tuple[Tensor, ...] | None = None,
        *,
        num_restarts: int = 5,
        target_region: Tensor | tuple[Tensor, ...] | None = None,
        generator: torch.Generator | None = None,
        return_report: bool = False,
    ) -> Any:
        r"""Attack the attribution map of each example within an l2 ball.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Clean inputs, inside the box.
            radius (float or Tensor): l2 radius ``rho``, a float or one per example.
            step_size (float, optional): First step length ``eta_0``; None uses ``radius``
                        (Levine et al.'s ``rho / ||grad||`` times the gradient). Default: None
            step_num (int, optional): Steps per run. Default: 20
            target (int, list or Tensor, optional): Class whose attribution is attacked;
                        None: the clean prediction (the label kept). Default: None
            additional_forward_args (Any, optional): Extra model arguments. Default: None
            random_start (bool, optional): Start each run on the sphere (step 1 above).
                        Default: True
            mask (Tensor or tuple[Tensor, ...], optional): Perturbation mask. Default: None
            num_restarts (int, optional): Runs; the best objective over runs is kept.
                        Default: 5
            target_region (Tensor or tuple[Tensor, ...], optional): Region of the
                        ``"targeted"`` objective. Default: None
            generator (torch.Generator, optional): Source of all randomness. Default: None
            return_report (bool, optional): Also return the :class:`AttackReport` (its
                        ``objective`` is the selection criterion; ``extra["accepted_steps"]``
                        counts accepted iterates). Default: False

        Returns:
            **perturbed inputs** (*Tensor* or *tuple[Tensor, ...]*), and the report if
            ``return_report=True``.
        """
        if step_size is not None:
            step_size = check_positive(step_size, "step_size")

        def schedule(r: Tensor) -> Callable[[int], Tensor]:
            first = r if step_size is None else torch.full_like(r, step_size)
            return lambda t: first / (t + 1)

        return self.attack_with_restarts(
            inputs,
            radius,
            target,
            additional_forward_args,
            mask,
            target_region,
            generator,
            return_report,
            norm="L2",
            step_num=step_num,
            step_size=schedule,
            num_restarts=num_restarts,
            random_start=random_start,
            start="sphere",
            restarts_start_random=False,
            policy="backtrack",
            score=self.objective_strength,
        )
