"""Dombrowski et al.'s targeted explanation manipulation."""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real
from typing import Any, Literal, overload

import torch
from captum.log import log_usage
from torch import Tensor, nn

from captum_certified._utils import geometry
from captum_certified._utils.model_calls import model_outputs
from captum_certified._utils.surrogate import set_softplus_beta, softplus_surrogate
from captum_certified._utils.validation import check_int, check_positive
from captum_certified.robust._core.base import (
    AttributionAttack,
    Problem,
    select_rows,
)
from captum_certified.robust._core.objectives import flatten_maps
from captum_certified.robust._core.options import AttackOptions
from captum_certified.robust._core.report import AttackReport

Tensors = tuple[Tensor, ...]

#: Label policies of :class:`ExplanationManipulation`.
MANIPULATION_POLICIES = ("soft", "reject_keep_best", "reject_keep_last")


class ExplanationManipulation(AttributionAttack):
    r"""Targeted manipulation of an explanation (Dombrowski et al., NeurIPS 2019).

    Moves ``x_adv`` so that its map ``h(x_adv)`` approaches a given target map while the
    model's output barely changes, by minimizing with Adam::

        map_weight * MSE(h(x_adv), h_target) + output_weight * MSE(softmax f(x_adv), softmax f(x))

    with ``(map_weight, output_weight) = (1e11, 1e6)``. ``h`` explains the clean predicted
    class (unless ``target`` is given) and is normalized as in the paper: ``h = sum_c |a_c| /
    sum |a|`` (``reduce_channels="sum_abs"``, ``normalize="sum_to_one"``). During the
    attack ``f`` is a softplus copy of the model whose ``beta`` grows geometrically from
    ``beta_growth[0]`` to ``beta_growth[1]`` over the steps (``beta_i = b0 * (b1 / b0) **
    (i / step_num)``); the reference ``softmax f(x)`` and every reported number use the
    original model. After each Adam step the iterate is clamped to the box, and projected onto
    the ball if a ``radius`` is given (the paper has no ball).

    **Label policies.** ``"soft"`` (the paper's): only the output penalty; the last iterate is
    returned and ``last_report.label_kept`` says whether the prediction survived.
    ``"reject_keep_best"``: the iterate keeping the clean prediction with the smallest map MSE
    (original model) is returned; ``"reject_keep_last"``: the last one keeping it. Under the
    reject policies, examples without such an iterate are returned unchanged and flagged.

    Args:
        forward_func (Callable): The model; returns ``(bsz, classes)`` scores.
        explainer (str or Callable, optional): As in :class:`AttributionPGD`.
                    Default: "saliency"
        lower_bound (float, optional): Smallest input value. Default: ``-inf``
        upper_bound (float, optional): Largest input value. Default: ``inf``
        options (AttackOptions, optional): See :class:`AttackOptions`: ``k`` and
                    ``selection_metric`` fill ``last_report.metric`` (clean vs returned map);
                    ``surrogate``/``softplus_beta`` need ``beta_growth=None``; ``objective``,
                    ``max_halvings``, ``search_iterations`` and ``auto_surrogate`` are not used
                    (a value other than the default is refused).
                    Default: ``ExplanationManipulation.default_options`` (the paper's maps:
                    ``reduce_channels="sum_abs"``, ``normalize="sum_to_one"``; ``k=0.1``)
        map_weight (float, optional): Weight of the map term. Default: 1e11
        output_weight (float, optional): Weight of the output term. Default: 1e6
        beta_growth (tuple[float, float], optional): Softplus ``beta`` at the first and the
                    last step (needs an ``nn.Module`` model with ``nn.ReLU`` units; see
                    :func:`softplus_surrogate`). None: use ``surrogate`` /
                    ``softplus_beta`` / the model itself. Default: (10.0, 100.0)
        label_policy (str, optional): ``"soft"``, ``"reject_keep_best"`` or
                    ``"reject_keep_last"``. Default: "soft"
        **changes: Any field of :class:`AttackOptions`, overriding ``options``.

    Attributes:
        last_report (AttackReport): The report of the last :meth:`perturb` call; its
                    ``objective`` is the map MSE to the target (original model) and
                    ``extra["output_mse"]`` the MSE of the softmax outputs.

    Examples::

        >>> from captum_certified.attr import differentiable_attribution
        >>> attack = ExplanationManipulation(model, lower_bound=0, upper_bound=1)
        >>> h_target = differentiable_attribution(model, x_other, target=y_other,
        ...                                       create_graph=False)
        >>> x_adv = attack.perturb(x, step_size=1e-3, step_num=100, target_map=h_target)
    """

    default_options = AttackOptions(normalize="sum_to_one")
    unused_options = ("objective", "max_halvings", "search_iterations", "auto_surrogate")

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        explainer: str | Callable[..., Any] = "saliency",
        lower_bound: float = float("-inf"),
        upper_bound: float = float("inf"),
        options: AttackOptions | None = None,
        *,
        map_weight: float = 1e11,
        output_weight: float = 1e6,
        beta_growth: tuple[float, float] | None = (10.0, 100.0),
        label_policy: str = "soft",
        **changes: Any,
    ) -> None:
        super().__init__(forward_func, explainer, lower_bound, upper_bound, options, changes)
        if beta_growth is not None and (
            self.options.surrogate is not None or self.options.softplus_beta is not None
        ):
            raise ValueError(
                "`beta_growth` builds its own surrogate: pass `beta_growth=None` to use "
                "`surrogate` or `softplus_beta`"
            )
        self.objective = "random"  # no walk objective: the map MSE is minimized by Adam
        self._report_only_k = True
        self.map_weight = check_positive(map_weight, "map_weight", allow_zero=True)
        self.output_weight = check_positive(output_weight, "output_weight", allow_zero=True)
        if label_policy not in MANIPULATION_POLICIES:
            raise ValueError(
                f"`label_policy` must be one of {MANIPULATION_POLICIES}, got {label_policy!r}"
            )
        self.label_policy = label_policy
        self.beta_growth: tuple[float, float] | None = None
        if beta_growth is not None:
            if (
                not isinstance(beta_growth, tuple)
                or len(beta_growth) != 2
                or not all(isinstance(b, Real) and not isinstance(b, bool) for b in beta_growth)
            ):
                raise TypeError(f"`beta_growth` must be a (start, end) tuple, got {beta_growth!r}")
            b0 = check_positive(beta_growth[0], "beta_growth")
            b1 = check_positive(beta_growth[1], "beta_growth")
            if not isinstance(forward_func, nn.Module):
                raise TypeError("`beta_growth` needs `forward_func` to be a torch.nn.Module")
            self.beta_growth = (b0, b1)
            self.surrogate = softplus_surrogate(forward_func, b0)

    def beta_at(self, step: int, step_num: int) -> float:
        """``beta`` used at ``step`` (geometric growth), or NaN without growth."""
        if self.beta_growth is None:
            return math.nan
        b0, b1 = self.beta_growth
        return b0 * (b1 / b0) ** (step / max(step_num, 1))

    @overload
    def perturb(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        radius: float | Tensor | None = ...,
        step_size: float = ...,
        step_num: int = ...,
        target: Any = ...,
        additional_forward_args: Any = ...,
        mask: Tensor | tuple[Tensor, ...] | None = ...,
        *,
        target_map: Tensor | tuple[Tensor, ...],
        norm: str = ...,
        generator: torch.Generator | None = ...,
        return_report: Literal[False] = False,
    ) -> Tensor | tuple[Tensor, ...]: ...

    @overload
    def perturb(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        radius: float | Tensor | None = ...,
        step_size: float = ...,
        step_num: int = ...,
        target: Any = ...,
        additional_forward_args: Any = ...,
        mask: Tensor | tuple[Tensor, ...] | None = ...,
        *,
        target_map: Tensor | tuple[Tensor, ...],
        norm: str = ...,
        generator: torch.Generator | None = ...,
        return_report: Literal[True],
    ) -> tuple[Any, AttackReport]: ...

    @log_usage()
    def perturb(  # type: ignore[misc]
        self,
        inputs: Tensor | tuple[Tensor, ...],
        radius: float | Tensor | None = None,
        step_size: float = 2e-4,
        step_num: int = 1500,
        target: Any = None,
        additional_forward_args: Any = None,
        mask: Tensor | tuple[Tensor, ...] | None = None,
        *,
        target_map: Tensor | tuple[Tensor, ...],
        norm: str = "Linf",
        generator: torch.Generator | None = None,
        return_report: bool = False,
    ) -> Any:
        r"""Manipulate each example's map toward ``target_map``.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Clean inputs, inside the box.
            radius (float or Tensor, optional): Ball radius; None: box only (the paper).
                        Default: None
            step_size (float, optional): Adam learning rate, in input units (the paper's
                        2e-4 is for ImageNet-normalized inputs). Default: 2e-4
            step_num (int, optional): Adam steps. Default: 1500
            target (int, list or Tensor, optional): Class explained; None: the clean
                        prediction. Default: None
            additional_forward_args (Any, optional): Extra model arguments. Default: None
            mask (Tensor or tuple[Tensor, ...], optional): Perturbation mask (gradients
                        are multiplied by it). Default: None
            target_map (Tensor or tuple[Tensor, ...]): Target attributions with the
                        structure of ``inputs`` (batch of 1 or ``bsz``), e.g. another
                        image's map; preprocessed with the same conventions.
            norm (str, optional): Ball norm if ``radius`` is given: ``"Linf"`` or ``"L2"``.
                        Default: "Linf"
            generator (torch.Generator, optional): Noise of smoothed explainers.
                        Default: None
            return_report (bool, optional): Also return the :class:`AttackReport`.
                        Default: False

        Returns:
            **perturbed inputs** (*Tensor* or *tuple[Tensor, ...]*), and the report if
            ``return_report=True``.
        """
        step_size = check_positive(step_size, "step_size")
        step_num = check_int(step_num, "step_num", 0)
        norm = geometry.check_norm(norm)
        with self.rng_guard(generator, inputs), torch.no_grad():
            p = self._setup(inputs, target, additional_forward_args, mask, generator)
            r = None if radius is None else self._radius(radius, p.batch).to(p.x0[0].device)
            h_target = self._target_maps(target_map, p)
            probs0 = torch.softmax(model_outputs(self.forward_func, p.x0, p.args), dim=1)
            final, success, mse, out_mse = self._optimize(
                p, r, norm, step_size, step_num, h_target, probs0
            )
            report = self.make_report(
                final,
                success,
                torch.where(success.cpu(), 0, -1),
                p,
                self.label_policy,
                {"output_mse": out_mse.cpu()},
                objective=mse,
            )
        return self.finish(final, p, report, return_report)

    def _target_maps(self, target_map: Any, p: Problem) -> Tensor:
        items = target_map if isinstance(target_map, tuple) else (target_map,)
        if isinstance(target_map, tuple) != p.is_tuple or len(items) != len(p.x0):
            raise ValueError("`target_map` must have the structure of `inputs`")
        out = []
        for i, (t, x) in enumerate(zip(items, p.x0)):
            if not isinstance(t, Tensor):
                raise TypeError(f"`target_map`[{i}] must be a Tensor, got {type(t).__name__}")
            if t.shape[1:] != x.shape[1:] or t.shape[0] not in (1, x.shape[0]):
                raise ValueError(
                    f"`target_map`[{i}] has shape {tuple(t.shape)}, expected "
                    f"{tuple(x.shape)} (or a batch of 1)"
                )
            out.append(t.detach().to(dtype=x.dtype, device=x.device).expand_as(x))
        return flatten_maps(self.maps(tuple(out)))

    def _map_mse(self, attrs: Tensors, h_target: Tensor) -> Tensor:
        """Per-example MSE of the preprocessed map to the target map."""
        return (flatten_maps(self.maps(attrs)) - h_target).pow(2).mean(dim=1)

    @staticmethod
    def _output_mse(x: Tensors, p: Problem, model: Callable[..., Tensor], probs0: Tensor) -> Tensor:
        """Per-example MSE of the softmax outputs to the clean ones."""
        return (torch.softmax(model_outputs(model, x, p.args), dim=1) - probs0).pow(2).mean(dim=1)

    def _losses(
        self, x: Tensors, p: Problem, model: Callable[..., Tensor], h_target: Tensor, probs0: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Per-example map MSE and output MSE, without a graph."""
        attrs = self.explainer.evaluate(model, x, p.target, p.args, p.is_tuple, p.run)
        return self._map_mse(attrs, h_target), self._output_mse(x, p, model, probs0)

    def _loss_gradient(
        self, x: Tensors, p: Problem, model: Callable[..., Tensor], h_target: Tensor, probs0: Tensor
    ) -> Tensors:
        """Gradient of ``map_weight * map MSE + output_weight * output MSE`` (summed over the
        batch) w.r.t. the leaves ``x``. The map term goes through the explainer's chunked
        loss gradient (smoothed explainers: memory bounded by ``nt_samples_batch_size``, not
        by ``n_guide``)."""
        _, map_grads = self.explainer.loss_gradient(
            model,
            x,
            p.target,
            p.args,
            p.is_tuple,
            p.run,
            lambda attrs: self.map_weight * self._map_mse(attrs, h_target),
        )
        with torch.enable_grad():
            out_loss = self.output_weight * self._output_mse(x, p, model, probs0).sum()
            out_grads = torch.autograd.grad(out_loss, x, allow_unused=True)
        return tuple(gm if go is None else gm + go for gm, go in zip(map_grads, out_grads))

    def _optimize(
        self,
        p: Problem,
        r: Tensor | None,
        norm: str,
        step_size: float,
        step_num: int,
        h_target: Tensor,
        probs0: Tensor,
    ) -> tuple[Tensors, Tensor, Tensor, Tensor]:
        dev = p.x0[0].device
        x = tuple(t.clone().requires_grad_() for t in p.x0)
        opt = torch.optim.Adam(list(x), lr=step_size)
        model = self.gradient_model
        soft = self.label_policy == "soft"
        best = p.x0
        best_mse = torch.full((p.batch,), math.inf, dtype=torch.float64, device=dev)
        found = torch.zeros(p.batch, dtype=torch.bool, device=dev)
        for i in range(step_num):
            if self.beta_growth is not None:
                set_softplus_beta(model, self.beta_at(i, step_num))  # type: ignore[arg-type]
            grads = self._loss_gradient(x, p, model, h_target, probs0)
            for t, g, m in zip(x, grads, p.masks):
                t.grad = g * m
            opt.step()
            with torch.no_grad():
                cur = geometry.project(p.x0, tuple(t.detach() for t in x), r, norm)
                cur = self.bound(cur)
                for t, c in zip(x, cur):
                    t.copy_(c)
                if not soft:
                    ok = self.keeps_label(cur, p)
                    if self.label_policy == "reject_keep_best":
                        mse = self._losses(cur, p, self.forward_func, h_target, probs0)[0]
                        upd = ok & (mse.to(torch.float64) < best_mse)
                        best_mse = torch.where(upd, mse.to(torch.float64), best_mse)
                    else:
                        upd = ok
                    best = select_rows(upd, cur, best)
                    found |= ok
        if self.beta_growth is not None:
            set_softplus_beta(model, self.beta_growth[0])  # type: ignore[arg-type]
        x_final = tuple(t.detach() for t in x)
        if soft:
            best, found = x_final, torch.ones(p.batch, dtype=torch.bool, device=dev)
        map_mse, out_mse = self._losses(best, p, self.forward_func, h_target, probs0)
        return best, found, map_mse.detach().to(torch.float64), out_mse.detach().to(torch.float64)
