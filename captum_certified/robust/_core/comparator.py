"""Compare attribution attacks by how much they change attributions, not model outputs."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from captum.attr import Attribution
from captum.log import log_usage
from captum.robust import Perturbation
from torch import Tensor

from captum_certified._utils.model_calls import format_args, label_and_target, model_outputs
from captum_certified._utils.validation import check_int, format_inputs
from captum_certified.attr import DifferentiableExplainer
from captum_certified.robust._core.report import AttackReport
from captum_certified.robust._core.selection import MapMetric, resolve_metric

Tensors = tuple[Tensor, ...]


@dataclass
class _AttackInfo:
    attack: Perturbation | Callable[..., Any]
    name: str
    num_attempts: int
    attack_kwargs: dict[str, Any]
    additional_args: list[str]


@dataclass
class _Running:
    """Running sums over batches for one attack."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    worst_sums: dict[str, float] = field(default_factory=dict)
    worst_counts: dict[str, int] = field(default_factory=dict)
    pairs: int = 0
    valid_pairs: int = 0
    label_changed: int = 0
    failed: int = 0
    examples: int = 0


class AttributionAttackComparator:
    r"""Measure attribution robustness under a set of attacks (``AttackComparator``-style).

    Captum's :class:`captum.robust.AttackComparator` feeds only model *outputs* to its metric.
    Here every metric compares the *attributions* of the clean and the attacked input,
    ``metric(attr_clean, attr_attacked) -> (bsz,)``, with a per-example label policy: an
    attacked example whose prediction (``forward_func``'s argmax) differs from the clean
    prediction, or that the attack's own report flags as failed, is **excluded** from the
    metric averages and counted (``label_changed``, ``failed``).

    Per attack, :meth:`evaluate` and :meth:`summary` give, for each metric,

    - ``"mean"``: the mean over all admissible (example, attempt) pairs;
    - ``"worst"``: per example, the strongest admissible attempt (the minimum of a
      similarity such as top-k intersection, the maximum of a shift), averaged over the
      examples with at least one admissible attempt;

    and ``"success_rate"`` (admissible pairs / all pairs), ``"label_changed"``, ``"failed"``,
    ``"examples"`` and ``"attempts"``. :meth:`evaluate` also returns ``"values"``: per metric,
    a ``(num_attempts, bsz)`` tensor with NaN where excluded. Averages over no admissible
    pair are NaN.

    Args:
        forward_func (Callable): The model; returns ``(bsz, classes)`` scores.
        explainer (str, Callable or captum.attr.Attribution, optional): How attributions are
                    computed (on ``forward_func``, without a graph): a name of
                    :data:`EXPLAINERS` (smoothed ones draw their noise once per
                    :meth:`evaluate` call, shared by the clean and all attacked inputs), a
                    callable ``(model, inputs, target) -> attributions``, or a Captum
                    attribution instance (called as ``attribute(inputs, target=...,
                    additional_forward_args=...)``). Default: "saliency"
        metrics (Mapping[str, str or Callable], optional): Display name -> a name in
                    ``("topk_intersection", "kendall_tau", "spearman_rho",
                    "center_of_mass_shift", "cosine_similarity")`` (functions of
                    :mod:`captum_certified.metrics`, given ``k``, ``reduce_channels`` and
                    ``normalize``) or a callable ``(attr_clean, attr_attacked) -> (bsz,)``.
                    Default: ``{"topk": "topk_intersection"}``
        k (int or float, optional): Top-k size of ``"topk_intersection"``. Default: 0.1
        reduce_channels (str, optional): Map convention of the named metrics.
                    Default: "sum_abs"
        normalize (str, optional): Map convention of the named metrics. Default: "sum_to_hw"
        higher_is_stronger (Iterable[str], optional): Display names of callable metrics for
                    which a larger value means a stronger attack. Default: ()
        explainer_kwargs (dict, optional): Options of a named explainer. Default: None

    Examples::

        >>> from captum_certified.robust import AttributionPGD
        >>> comp = AttributionAttackComparator(
        ...     model, "saliency", k=10,
        ...     metrics={"topk": "topk_intersection", "kendall": "kendall_tau"})
        >>> comp.add_attack(AttributionPGD(model, k=10, lower_bound=0, upper_bound=1,
        ...                                softplus_beta=10.0), "pgd",
        ...                 attack_kwargs={"radius": 0.1, "step_size": 0.01, "step_num": 20},
        ...                 additional_attack_arg_names=["target"])
        >>> batch = comp.evaluate(x, target=y)
        >>> comp.summary()["pgd"]["mean"]["topk"]
        0.225
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        explainer: str | Callable[..., Any] | Attribution = "saliency",
        metrics: Mapping[str, str | Callable[[Any, Any], Tensor]] | None = None,
        *,
        k: int | float = 0.1,
        reduce_channels: str | None = "sum_abs",
        normalize: str | None = "sum_to_hw",
        higher_is_stronger: Iterable[str] = (),
        explainer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not callable(forward_func):
            raise TypeError(f"`forward_func` must be callable, got {type(forward_func).__name__}")
        self.forward_func = forward_func
        if isinstance(explainer, Attribution):
            if explainer_kwargs:
                raise TypeError("`explainer_kwargs` is only used with a named explainer")
            self.captum_method: Attribution | None = explainer
            self.explainer: DifferentiableExplainer | None = None
        else:
            self.captum_method = None
            self.explainer = DifferentiableExplainer(explainer, explainer_kwargs)
        if metrics is None:
            metrics = {"topk": "topk_intersection"}
        if not isinstance(metrics, Mapping) or len(metrics) == 0:
            raise TypeError("`metrics` must be a non-empty mapping of name -> metric")
        higher = set(higher_is_stronger)
        unknown = higher - set(metrics)
        if unknown:
            raise ValueError(f"`higher_is_stronger` names unknown metrics {sorted(unknown)}")
        self.metrics: dict[str, MapMetric] = {}
        for name, spec in metrics.items():
            metric = resolve_metric(
                spec,
                k=k,
                reduce_channels=reduce_channels,
                normalize=normalize,
                higher_is_stronger=True if name in higher else None,
                argname=f"metrics[{name!r}]",
            )
            metric.name = name
            self.metrics[name] = metric
        self.attacks: dict[str, _AttackInfo] = {}
        self._running: dict[str, _Running] = {}

    def add_attack(
        self,
        attack: Perturbation | Callable[..., Any],
        name: str | None = None,
        num_attempts: int = 1,
        attack_kwargs: dict[str, Any] | None = None,
        additional_attack_arg_names: list[str] | None = None,
    ) -> None:
        r"""Add an attack to evaluate.

        Args:
            attack (Perturbation or Callable): Any Captum ``Perturbation`` or callable
                        ``attack(inputs, **kwargs)`` returning perturbed inputs (or
                        ``(perturbed, AttackReport)``; then its ``success`` flags are used).
            name (str, optional): Unique key; default: the class name. Default: None
            num_attempts (int, optional): Repetitions (for randomized attacks). Default: 1
            attack_kwargs (dict, optional): Keyword arguments of every call. Default: None
            additional_attack_arg_names (list[str], optional): Per-batch keyword arguments
                        taken from :meth:`evaluate` (``"target"``,
                        ``"additional_forward_args"`` or any of its ``**kwargs``).
                        Default: None
        """
        if not callable(attack):
            raise TypeError(f"`attack` must be callable, got {type(attack).__name__}")
        if name is None:
            name = type(attack).__name__
        if name in self.attacks:
            raise RuntimeError(f"Cannot add attack with same name as existing attack {name}")
        self.attacks[name] = _AttackInfo(
            attack=attack,
            name=name,
            num_attempts=check_int(num_attempts, "num_attempts", 1),
            attack_kwargs=dict(attack_kwargs or {}),
            additional_args=list(additional_attack_arg_names or []),
        )

    # -- evaluation ------------------------------------------------------------------------

    def _attribute(self, x: Tensors, is_tuple: bool, target: Tensor, args: tuple, run: Any) -> Any:
        if self.captum_method is not None:
            kwargs: dict[str, Any] = {"target": target}
            if args:
                kwargs["additional_forward_args"] = args
            # fresh leaves that require grad: Captum neither warns nor touches the caller's tensors
            leaves = tuple(t.detach().clone().requires_grad_() for t in x)
            out = self.captum_method.attribute(leaves if is_tuple else leaves[0], **kwargs)
            outs = out if isinstance(out, tuple) else (out,)
            outs = tuple(o.detach() for o in outs)
        else:
            assert self.explainer is not None
            outs = self.explainer.evaluate(self.forward_func, x, target, args, is_tuple, run)
        return outs if len(outs) > 1 else outs[0]

    @log_usage()
    def evaluate(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        additional_forward_args: Any = None,
        *,
        target: Any = None,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> dict[str, dict[str, Any]]:
        r"""Attack a batch and compare the attacked attributions with the clean ones.

        Unlike Captum's ``AttackComparator.evaluate`` there is no ``perturbations_per_eval``
        (attributions are computed per attack attempt) and no ``"Original"`` entry (the clean
        attributions are the reference of every metric).

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Clean batch.
            additional_forward_args (Any, optional): Extra model arguments. Default: None
            target (int, list or Tensor, optional): Class explained; None: the clean
                        prediction. Default: None
            generator (torch.Generator, optional): Noise of a smoothed explainer.
                        Default: None
            **kwargs: Per-batch values for the attacks' ``additional_attack_arg_names``.

        Returns:
            dict: attack name -> ``{"mean": {metric: float}, "worst": {metric: float},
            "success_rate": float, "label_changed": int, "failed": int, "examples": int,
            "attempts": int, "values": {metric: Tensor (num_attempts, bsz)}}``.
        """
        x0, is_tuple = format_inputs(inputs)
        args = format_args(additional_forward_args)
        batch = x0[0].shape[0]
        label, tgt = label_and_target(self.forward_func, x0, args, target)
        run = (
            self.explainer.start(tuple(t.detach() for t in x0), generator)
            if self.explainer
            else None
        )
        clean = self._attribute(x0, is_tuple, tgt, args, run)
        lookup = {"target": target, "additional_forward_args": additional_forward_args, **kwargs}
        results: dict[str, dict[str, Any]] = {}
        for name, info in self.attacks.items():
            extra_args = {}
            for key in info.additional_args:
                if key not in lookup:
                    warnings.warn(
                        f"Additional sample arg {key} not provided for {name}", stacklevel=2
                    )
                else:
                    extra_args[key] = lookup[key]
            values = {
                m: torch.full((info.num_attempts, batch), math.nan, dtype=torch.float64)
                for m in self.metrics
            }
            valid = torch.zeros(info.num_attempts, batch, dtype=torch.bool)
            changed = failed = 0
            for a in range(info.num_attempts):
                out = info.attack(inputs, **extra_args, **info.attack_kwargs)
                ok_attack = torch.ones(batch, dtype=torch.bool)
                if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], AttackReport):
                    out, rep = out
                    ok_attack = rep.success.cpu()
                xa = out if isinstance(out, tuple) else (out,)
                if len(xa) != len(x0) or any(u.shape != v.shape for u, v in zip(xa, x0)):
                    raise ValueError(
                        f"attack {name!r} returned inputs of another structure or shape"
                    )
                with torch.no_grad():
                    kept = (model_outputs(self.forward_func, xa, args).argmax(dim=1) == label).cpu()
                changed += int((~kept).sum())
                failed += int((kept & ~ok_attack).sum())
                ok = kept & ok_attack
                valid[a] = ok
                attacked = self._attribute(tuple(t.detach() for t in xa), is_tuple, tgt, args, run)
                for m, metric in self.metrics.items():
                    v = metric(clean, attacked).to(torch.float64).cpu()
                    values[m][a] = torch.where(ok, v, torch.full_like(v, math.nan))
            results[name] = self._summarize_batch(name, values, valid, changed, failed)
        return results

    def _summarize_batch(
        self, name: str, values: dict[str, Tensor], valid: Tensor, changed: int, failed: int
    ) -> dict[str, Any]:
        acc = self._running.setdefault(name, _Running())
        attempts, batch = valid.shape
        acc.pairs += valid.numel()
        acc.valid_pairs += int(valid.sum())
        acc.label_changed += changed
        acc.failed += failed
        acc.examples += batch
        mean: dict[str, float] = {}
        worst: dict[str, float] = {}
        any_valid = valid.any(dim=0)
        for m, v in values.items():
            metric = self.metrics[m]
            s = float(v[valid].sum()) if valid.any() else 0.0
            c = int(valid.sum())
            if metric.higher_is_stronger:
                per_ex = torch.where(valid, v, -math.inf).max(dim=0).values
            else:
                per_ex = torch.where(valid, v, math.inf).min(dim=0).values
            ws = float(per_ex[any_valid].sum()) if any_valid.any() else 0.0
            wc = int(any_valid.sum())
            mean[m] = s / c if c else math.nan
            worst[m] = ws / wc if wc else math.nan
            acc.sums[m] = acc.sums.get(m, 0.0) + s
            acc.counts[m] = acc.counts.get(m, 0) + c
            acc.worst_sums[m] = acc.worst_sums.get(m, 0.0) + ws
            acc.worst_counts[m] = acc.worst_counts.get(m, 0) + wc
        return {
            "mean": mean,
            "worst": worst,
            "success_rate": float(valid.sum()) / valid.numel() if valid.numel() else math.nan,
            "label_changed": changed,
            "failed": failed,
            "examples": batch,
            "attempts": attempts,
            "values": values,
        }

    def summary(self) -> dict[str, dict[str, Any]]:
        r"""Results over all batches since construction or :meth:`reset`.

        Returns:
            dict: attack name -> ``{"mean": {metric: float}, "worst": {metric: float},
            "success_rate": float, "label_changed": int, "failed": int, "examples": int}``,
            averaged per admissible pair / per example (not per batch).
        """
        out: dict[str, dict[str, Any]] = {}
        for name, acc in self._running.items():
            out[name] = {
                "mean": {
                    m: acc.sums[m] / acc.counts[m] if acc.counts[m] else math.nan for m in acc.sums
                },
                "worst": {
                    m: acc.worst_sums[m] / acc.worst_counts[m] if acc.worst_counts[m] else math.nan
                    for m in acc.worst_sums
                },
                "success_rate": acc.valid_pairs / acc.pairs if acc.pairs else math.nan,
                "label_changed": acc.label_changed,
                "failed": acc.failed,
                "examples": acc.examples,
            }
        return out

    def reset(self) -> None:
        r"""Forget the results of previous batches."""
        self._running = {}
