"""Machinery shared by the attribution attacks: argument checks, label checks, maps, hygiene."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar

import torch
from captum.robust import Perturbation
from torch import Tensor, nn

from captum_certified._utils import geometry
from captum_certified._utils.model_calls import format_args, label_and_target, model_outputs
from captum_certified._utils.surrogate import softplus_surrogate
from captum_certified._utils.validation import (
    check_broadcasts,
    check_int,
    check_radius,
    format_inputs,
    resolve_count,
    rng_guard,
)
from captum_certified.attr import DifferentiableExplainer, ExplainerRun
from captum_certified.robust._core.objectives import (
    Objective,
    attack_maps,
    flatten_maps,
)
from captum_certified.robust._core.options import AttackOptions
from captum_certified.robust._core.report import AttackReport
from captum_certified.robust._core.selection import (
    MapMetric,
    resolve_metric,
)

Tensors = tuple[Tensor, ...]

#: Softplus sharpness of the surrogate chosen automatically for ReLU networks (the smallest
#: value of Dombrowski et al.'s schedule, the one the README examples use).
AUTO_SOFTPLUS_BETA = 10.0


@dataclass
class Problem:
    """One ``perturb`` call: its inputs, targets, guide draws and the model it differentiates.

    Built by :meth:`AttributionAttack._setup` for each call and dropped afterwards: nothing of a
    call is kept on the attack but its :attr:`~AttributionAttack.last_report`.
    """

    is_tuple: bool
    x0: Tensors
    args: tuple
    target: Tensor
    label: Tensor
    masks: tuple
    run: ExplainerRun
    clean_maps: Tensors
    k: int
    objective: Objective
    generator: torch.Generator | None
    metric: MapMetric
    #: the model differentiated for attack directions in this call (the automatic surrogate
    #: replaces it when the map has no input gradient)
    gradient_model: Callable[..., Tensor]
    surrogate_is_auto: bool = False

    @property
    def batch(self) -> int:
        return self.x0[0].shape[0]


class AttributionAttack(Perturbation):
    r"""Base class of the attribution attacks (a :class:`captum.robust.Perturbation`).

    Holds the original model (label checks, reported metrics), the explainer, the pixel box
    and the :class:`AttackOptions` (map conventions, objective, surrogate); subclasses
    implement ``perturb``. Each subclass declares its paper's settings as
    ``default_options``; the constructor takes an :class:`AttackOptions` (default: those) and
    keyword overrides of any of its fields.
    """

    #: The options an attack starts from (its paper's settings).
    default_options: ClassVar[AttackOptions] = AttackOptions()
    #: Options an attack does not use: a value other than the field's default is refused.
    unused_options: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        explainer: str | Callable[..., Any],
        lower_bound: float,
        upper_bound: float,
        options: AttackOptions | None,
        changes: dict[str, Any],
    ) -> None:
        super().__init__()
        if options is None:
            options = self.default_options
        elif not isinstance(options, AttackOptions):
            raise TypeError(f"`options` must be an AttackOptions, got {type(options).__name__}")
        options = options.replace(**changes)
        name = type(self).__name__
        for field in self.unused_options:
            if getattr(options, field) != getattr(AttackOptions, field):
                raise ValueError(f"`{field}` is not used by {name}; leave it at its default")
        if not callable(forward_func):
            raise TypeError(f"`forward_func` must be callable, got {type(forward_func).__name__}")
        for arg, value in (("lower_bound", lower_bound), ("upper_bound", upper_bound)):
            if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value):
                raise TypeError(f"`{arg}` must be a float, got {value!r}")
        if lower_bound > upper_bound:
            raise ValueError(
                f"`lower_bound` ({lower_bound}) must not exceed `upper_bound` ({upper_bound})"
            )
        surrogate = options.surrogate
        if options.softplus_beta is not None:
            if not isinstance(forward_func, nn.Module):
                raise TypeError("`softplus_beta` needs `forward_func` to be a torch.nn.Module")
            surrogate = softplus_surrogate(forward_func, options.softplus_beta)
        self.options = options
        self.forward_func = forward_func
        self.surrogate = surrogate
        self.explainer = DifferentiableExplainer(
            explainer, None if options.explainer_kwargs is None else dict(options.explainer_kwargs)
        )
        self.lower_bound = float(lower_bound)
        self.upper_bound = float(upper_bound)
        self.objective = options.objective
        self.last_report: Any = None
        self._report_only_k = False

    @property
    def k(self) -> int | float:
        return self.options.k

    @property
    def reduce_channels(self) -> str | None:
        return self.options.reduce_channels

    @property
    def normalize(self) -> str | None:
        return self.options.normalize

    # -- models ----------------------------------------------------------------------------

    @property
    def gradient_model(self) -> Callable[..., Tensor]:
        """The model differentiated for attack directions (the configured surrogate if any;
        a call may switch to the automatic surrogate, see :class:`Problem`)."""
        return self.surrogate if self.surrogate is not None else self.forward_func

    def bound(self, x: Tensors) -> Tensors:
        return geometry.clamp_box(x, self.lower_bound, self.upper_bound)

    # -- setup -----------------------------------------------------------------------------

    def _format_inputs(self, inputs: Any) -> tuple[Tensors, bool]:
        xs, is_tuple = format_inputs(inputs)
        for i, x in enumerate(xs):
            if not x.is_floating_point():
                raise TypeError(f"`inputs`[{i}] must be floating point, got {x.dtype}")
            if x.dim() < 2:
                raise ValueError(f"`inputs`[{i}] must have a batch dimension and features")
            if not torch.isfinite(x).all():
                raise ValueError(f"`inputs`[{i}] contains NaN or infinite values")
            if (x < self.lower_bound).any() or (x > self.upper_bound).any():
                raise ValueError(
                    f"`inputs`[{i}] lies outside [lower_bound, upper_bound] = "
                    f"[{self.lower_bound}, {self.upper_bound}]"
                )
        return tuple(x.detach().clone() for x in xs), is_tuple

    @staticmethod
    def _format_masks(mask: Any, xs: Tensors) -> tuple:
        if mask is None:
            return tuple(torch.ones((), dtype=x.dtype, device=x.device) for x in xs)
        masks = mask if isinstance(mask, tuple) else (mask,)
        if len(masks) != len(xs):
            raise ValueError(f"`mask` has {len(masks)} entries for {len(xs)} input tensors")
        out = []
        for i, (m, x) in enumerate(zip(masks, xs)):
            if not isinstance(m, Tensor):
                raise TypeError(f"`mask`[{i}] must be a torch.Tensor, got {type(m).__name__}")
            check_broadcasts(m, x, f"`mask`[{i}]")
            out.append(m.detach().to(dtype=x.dtype, device=x.device))
        return tuple(out)

    def _radius(self, radius: Any, batch: int, name: str = "radius") -> Tensor:
        r = check_radius(radius, name)
        if r.dim() == 0:
            r = r.expand(batch)
        elif r.shape != (batch,):
            raise ValueError(f"`{name}` must be a scalar or of shape ({batch},)")
        if not torch.isfinite(r).all():
            raise ValueError(f"`{name}` must be finite")
        return r.clone()

    def _setup(
        self,
        inputs: Any,
        target: Any,
        additional_forward_args: Any,
        mask: Any,
        generator: torch.Generator | None,
        target_region: Any = None,
    ) -> Problem:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"`generator` must be a torch.Generator, got {type(generator).__name__}"
            )
        x0, is_tuple = self._format_inputs(inputs)
        masks = self._format_masks(mask, x0)
        args = format_args(additional_forward_args)
        label, tgt = label_and_target(self.forward_func, x0, args, target)
        run = self.explainer.start(x0, generator)
        clean_maps = self.maps(
            self.explainer.evaluate(self.forward_func, x0, tgt, args, is_tuple, run)
        )
        d = int(flatten_maps(clean_maps).shape[1])
        if self._report_only_k and isinstance(self.k, float):
            k = max(1, min(d, int(self.k * d + 1e-9)))  # k only feeds the reported metric
        else:
            k = resolve_count(self.k, d, "k")
        region = None
        if self.objective == "targeted":
            region = self._format_region(target_region, clean_maps)
        elif target_region is not None:
            raise ValueError("`target_region` is only used with objective='targeted'")
        objective = Objective(self.objective, clean_maps, k, region)
        metric = resolve_metric(
            self.options.selection_metric,
            k=k,
            reduce_channels=None,
            normalize=None,
            higher_is_stronger=self.options.higher_is_stronger,
        )
        return Problem(
            is_tuple,
            x0,
            args,
            tgt,
            label,
            masks,
            run,
            clean_maps,
            k,
            objective,
            generator,
            metric,
            self.gradient_model,
        )

    @staticmethod
    def _format_region(region: Any, clean_maps: Tensors) -> Tensor:
        if region is None:
            raise ValueError("objective='targeted' needs a `target_region`")
        regions = region if isinstance(region, tuple) else (region,)
        if len(regions) != len(clean_maps):
            raise ValueError(
                f"`target_region` has {len(regions)} entries for {len(clean_maps)} maps"
            )
        out = []
        for i, (r, m) in enumerate(zip(regions, clean_maps)):
            if not isinstance(r, Tensor):
                raise TypeError(f"`target_region`[{i}] must be a Tensor, got {type(r).__name__}")
            r = r.detach().to(dtype=m.dtype, device=m.device)
            if r.shape == m.shape[1:]:
                r = r.unsqueeze(0)
            try:
                r = r.expand_as(m)
            except RuntimeError:
                raise ValueError(
                    f"`target_region`[{i}] of shape {tuple(r.shape)} does not match the map "
                    f"shape {tuple(m.shape)} (after channel reduction)"
                ) from None
            out.append(r.reshape(m.shape[0], -1))
        return torch.cat(out, dim=1)

    # -- evaluation (original model) ---------------------------------------------------------

    def maps(self, attributions: Tensors) -> Tensors:
        return attack_maps(attributions, self.reduce_channels, self.normalize)

    def keeps_label(self, x: Tensors, p: Problem) -> Tensor:
        with torch.no_grad():
            return model_outputs(self.forward_func, x, p.args).argmax(dim=1) == p.label

    def eval_maps(self, x: Tensors, p: Problem) -> Tensors:
        attrs = self.explainer.evaluate(self.forward_func, x, p.target, p.args, p.is_tuple, p.run)
        return self.maps(attrs)

    def _fmt(self, maps: Tensors) -> Any:
        return maps if len(maps) > 1 else maps[0]

    def metric_value(self, maps: Tensors, p: Problem) -> Tensor:
        return p.metric(self._fmt(p.clean_maps), self._fmt(maps)).to(torch.float64)

    def objective_value(self, maps: Tensors, p: Problem) -> Tensor:
        if not p.objective.needs_gradient:
            return torch.full((p.batch,), math.nan, dtype=torch.float64)
        return p.objective(maps).detach().to(torch.float64)

    # -- attack direction (surrogate) ---------------------------------------------------------

    def loss_gradient(self, x: Tensors, p: Problem) -> tuple[Tensor, Tensors]:
        """Objective (surrogate) and its gradient w.r.t. the inputs; random objective: a
        random direction."""
        if not p.objective.needs_gradient:
            loss = torch.full((p.batch,), math.nan, dtype=torch.float64)
            return loss, geometry.random_direction(x, p.masks, p.generator)
        xs = tuple(t.detach().requires_grad_() for t in x)
        loss, grads = self.explainer.loss_gradient(
            p.gradient_model,
            xs,
            p.target,
            p.args,
            p.is_tuple,
            p.run,
            lambda attrs: p.objective(self.maps(attrs)),
        )
        return loss, tuple(g.detach() for g in grads)

    # -- the walk shared by the attacks --------------------------------------------------------

    def metric_strength(self, x: Tensors, p: Problem) -> Tensor:
        """Selection metric of ``x`` (original model), oriented so lower = stronger."""
        return p.metric.strength(self.metric_value(self.eval_maps(x, p), p))

    def objective_strength(self, x: Tensors, p: Problem) -> Tensor:
        """The objective evaluated on the original model's map (lower = stronger)."""
        return self.objective_value(self.eval_maps(x, p), p)

    def take_step(
        self, x: Tensors, direction: Tensors, size: Tensor, p: Problem, r: Tensor, norm: str
    ) -> Tensors:
        """``x - size * direction``, projected onto the ball and clamped to the box."""
        moved = geometry.step(x, direction, -size, p.masks)
        return self.bound(geometry.project(p.x0, moved, r, norm))

    def search_start(
        self, p: Problem, r: Tensor, norm: str, on_sphere: bool
    ) -> tuple[Tensors, Tensor]:
        """Random starts (in the ball or on its sphere), redrawn up to ``search_iterations``
        times until the label is kept; rows with no such draw stay at the clean input."""
        x, ok = p.x0, torch.zeros(p.batch, dtype=torch.bool, device=r.device)
        for _ in range(self.options.search_iterations):
            cand = self.bound(
                geometry.random_start(p.x0, r, norm, p.masks, p.generator, on_sphere=on_sphere)
            )
            good = self.keeps_label(cand, p) & ~ok
            x = select_rows(good, cand, x)
            ok |= good
            if bool(ok.all()):
                break
        return x, ok

    def walk(
        self,
        p: Problem,
        r: Tensor,
        norm: str,
        *,
        step_num: int,
        step_size: Callable[[int], float | Tensor],
        policy: str,
        start: str,
        score: Callable[[Tensors, Problem], Tensor],
    ) -> tuple[Tensors, Tensor, Tensor, Tensor]:
        """One run: ``step_num`` steps against the objective gradient under a label policy.

        Returns the selected iterate per example, its score (lower = stronger; inf where none
        was admissible), whether an admissible iterate was found, and the number of accepted
        iterates.
        """
        dev = r.device
        track_best = policy != "reject_keep_last"
        best = p.x0
        best_score = torch.full((p.batch,), math.inf, dtype=torch.float64, device=dev)
        found = torch.zeros(p.batch, dtype=torch.bool, device=dev)
        n_acc = torch.zeros(p.batch, dtype=torch.long, device=dev)

        def consider(x: Tensors, accepted: Tensor) -> None:
            nonlocal best, best_score, found, n_acc
            if track_best:
                value = score(x, p).to(dev)
                upd = accepted & (value < best_score)
                best_score = torch.where(upd, value, best_score)
            else:
                upd = accepted
            best = select_rows(upd, x, best)
            found = found | accepted
            n_acc = n_acc + accepted.long()

        x = p.x0
        if start != "clean":
            x, ok = self.search_start(p, r, norm, on_sphere=start == "sphere")
            consider(x, ok)
        for t in range(step_num):
            _, grads = self.loss_gradient(x, p)
            if t == 0 and p.objective.needs_gradient:
                if self._all_zero(grads) and self._adopt_auto_surrogate(p):
                    _, grads = self.loss_gradient(x, p)
                self.warn_if_flat(grads)
            direction = geometry.normalized(grads, norm)
            s = step_size(t)
            if isinstance(s, Tensor):
                size = s.to(device=dev, dtype=torch.float64).expand(p.batch).clone()
            else:
                size = torch.full((p.batch,), float(s), dtype=torch.float64, device=dev)
            if policy == "backtrack":
                cand = self.take_step(x, direction, size, p, r, norm)
                ok = self.keeps_label(cand, p)
                for _ in range(self.options.max_halvings):
                    if bool(ok.all()):
                        break
                    size = torch.where(ok, size, size / 2)
                    cand = select_rows(ok, cand, self.take_step(x, direction, size, p, r, norm))
                    ok = self.keeps_label(cand, p)
                x = select_rows(ok, cand, x)
                accepted = ok
            else:
                x = self.take_step(x, direction, size, p, r, norm)
                accepted = self.keeps_label(x, p)
            consider(x, accepted)
        if not track_best:
            best_score = torch.where(found, score(best, p).to(dev), best_score)
        return best, best_score, found, n_acc

    def make_report(
        self,
        final: Tensors,
        success: Tensor,
        restart: Tensor,
        p: Problem,
        policy: str,
        extra: dict,
        objective: Tensor | None = None,
    ) -> AttackReport:
        """The report of ``final`` (original model); ``objective`` defaults to the attack
        objective on the final maps."""
        maps = self.eval_maps(final, p)
        if objective is None:
            objective = self.objective_value(maps, p)
        return AttackReport(
            success=success.cpu(),
            label=p.label.cpu(),
            label_kept=self.keeps_label(final, p).cpu(),
            metric=self.metric_value(maps, p).cpu(),
            metric_name=p.metric.name,
            higher_is_stronger=p.metric.higher_is_stronger,
            objective=objective.cpu(),
            restart=restart,
            policy=policy,
            extra={
                **extra,
                "auto_surrogate": p.surrogate_is_auto,
                "gradient_model": p.gradient_model,
            },
        )

    def finish(self, final: Tensors, p: Problem, report: AttackReport, return_report: bool) -> Any:
        """Record ``report`` as :attr:`last_report`; the detached result in the inputs'
        structure (and the report with ``return_report``)."""
        self.last_report = report
        out = tuple(t.detach() for t in final)
        result = out if p.is_tuple else out[0]
        return (result, report) if return_report else result

    def attack_with_restarts(
        self,
        inputs: Any,
        radius: Any,
        target: Any,
        additional_forward_args: Any,
        mask: Any,
        target_region: Any,
        generator: torch.Generator | None,
        return_report: bool,
        *,
        norm: str,
        step_num: int,
        step_size: Callable[[Tensor], Callable[[int], float | Tensor]],
        num_restarts: int,
        random_start: bool,
        start: str,
        restarts_start_random: bool,
        policy: str,
        score: Callable[[Tensors, Problem], Tensor],
    ) -> Any:
        """The ``perturb`` of the walking attacks: checks, setup, ``num_restarts`` walks (the
        first from the clean input unless ``random_start``; later ones from a random
        ``start`` point if ``restarts_start_random``), the strongest admissible result per
        example, the report. ``step_size(radius)`` gives the step schedule ``t -> size``."""
        step_num = check_int(step_num, "step_num", 0)
        num_restarts = check_int(num_restarts, "num_restarts", 1)
        if not isinstance(random_start, bool):
            raise TypeError(f"`random_start` must be a bool, got {type(random_start).__name__}")
        with self.rng_guard(generator, inputs), torch.no_grad():
            p = self._setup(inputs, target, additional_forward_args, mask, generator, target_region)
            r = self._radius(radius, p.batch).to(p.x0[0].device)
            schedule = step_size(r)

            def one_run(run: int) -> tuple:
                random = random_start or (restarts_start_random and run > 0)
                return self.walk(
                    p,
                    r,
                    norm,
                    step_num=step_num,
                    step_size=schedule,
                    policy=policy,
                    start=start if random else "clean",
                    score=score,
                )

            final, success, restart, accepted = self.run_restarts(p, num_restarts, one_run)
            report = self.make_report(
                final, success, restart, p, policy, {"accepted_steps": accepted}
            )
        return self.finish(final, p, report, return_report)

    def run_restarts(
        self, p: Problem, num_restarts: int, one_run: Callable[[int], tuple]
    ) -> tuple[Tensors, Tensor, Tensor, Tensor]:
        """Keep, per example, the strongest admissible result over ``num_restarts`` runs."""
        dev = p.x0[0].device
        final = p.x0
        final_score = torch.full((p.batch,), math.inf, dtype=torch.float64, device=dev)
        success = torch.zeros(p.batch, dtype=torch.bool, device=dev)
        restart = torch.full((p.batch,), -1, dtype=torch.long)
        accepted = torch.zeros(p.batch, dtype=torch.long)
        for run in range(num_restarts):
            best, score, found, n_acc = one_run(run)
            accepted += n_acc.cpu()
            upd = found & (~success | (score < final_score))
            final = select_rows(upd, best, final)
            final_score = torch.where(upd, score, final_score)
            restart[upd.cpu()] = run
            success = success | found
        return final, success, restart, accepted

    @staticmethod
    def _all_zero(grads: Tensors) -> bool:
        return all(bool((g == 0).all()) for g in grads)

    def _adopt_auto_surrogate(self, p: Problem) -> bool:
        """With ``auto_surrogate`` and no surrogate given: when the map has no input gradient
        and the model has ReLU/ReLU6 modules, differentiate ``softplus_surrogate(model,
        AUTO_SOFTPLUS_BETA)`` for the rest of this ``perturb`` call (label checks and scores
        stay on the original model). Returns whether a surrogate was adopted."""
        model = self.forward_func
        if (
            not self.options.auto_surrogate
            or self.surrogate is not None
            or not isinstance(model, nn.Module)
        ):
            return False
        if not any(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in model.modules()):
            return False
        p.gradient_model = softplus_surrogate(model, AUTO_SOFTPLUS_BETA)
        p.surrogate_is_auto = True
        return True

    @staticmethod
    def warn_if_flat(grads: Tensors) -> None:
        if all(bool((g == 0).all()) for g in grads):
            warnings.warn(
                "the attack direction is zero for every example: the attribution map has no "
                "input gradient (ReLU networks have zero second derivatives); pass "
                "`softplus_beta=` or `surrogate=softplus_surrogate(model, beta)`",
                stacklevel=3,
            )

    @staticmethod
    def rng_guard(generator: torch.Generator | None, x: Any) -> contextlib.AbstractContextManager:
        """With a generator, the global RNG is restored afterwards even if the model draws
        from it (dropout in train mode)."""
        return rng_guard(generator, x)


def select_rows(mask: Tensor, new: Tensors, old: Tensors) -> Tensors:
    """Rows of ``new`` where ``mask`` is True, else rows of ``old``."""
    return tuple(
        torch.where(mask.reshape((-1,) + (1,) * (a.dim() - 1)), a, b) for a, b in zip(new, old)
    )
