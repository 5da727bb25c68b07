"""The options shared by the attribution attacks: one frozen object, validated in one place."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from captum_certified._utils.validation import check_count_spec, check_int, check_positive
from captum_certified.robust._core.objectives import OBJECTIVES, check_conventions
from captum_certified.robust._core.selection import METRICS, is_metric_name


@dataclass(frozen=True)
class AttackOptions:
    r"""How an attribution attack reads and scores maps, and which model it differentiates.

    One object configures :class:`AttributionPGD`, :class:`AttributionL2Attack` and
    :class:`ExplanationManipulation`; each attack starts from its own
    ``default_options`` (the settings of its paper) and takes any field as a keyword
    override, so both spellings below build the same attack::

        AttributionPGD(model, "saliency", 0.0, 1.0, k=100, softplus_beta=10.0)
        AttributionPGD(model, "saliency", 0.0, 1.0, AttackOptions(k=100, softplus_beta=10.0))

    The attack budget (``radius``, ``step_size``, ``step_num``, ``num_restarts``, ``norm``)
    is not an option: as in Captum's :class:`~captum.robust.PGD` it is an argument of
    ``perturb``, so one attack object serves every budget (e.g. in
    :class:`AttributionAttackComparator`). Every field is checked when the object is built
    (``ValueError``/``TypeError`` naming the field); the explainer-specific keys of
    ``explainer_kwargs`` are checked by the attack, which knows the explainer.

    Args:
        k (int or float, optional): Top-k size for the ``"topk"`` objective and the default
                    selection metric: a count of map positions (after channel reduction) or a
                    fraction of them. Default: 0.1
        objective (str, optional): Loss minimized on the preprocessed map ``s``:
                    ``"topk"`` (mass left on the clean top-k), ``"mass_center"`` (move the
                    centre of mass), ``"targeted"`` (pull attribution into the
                    ``target_region`` of ``perturb``) or ``"random"`` (random sign
                    directions, a baseline). Default: "topk"
        selection_metric (str or Callable, optional): ``"topk_intersection"``,
                    ``"kendall_tau"``, ``"spearman_rho"``, ``"center_of_mass_shift"``,
                    ``"cosine_similarity"`` (functions of :mod:`captum_certified.metrics`,
                    applied to the preprocessed maps of the original model) or a callable
                    ``(clean_maps, maps) -> (bsz,)``: picks iterates (PGD) and fills
                    ``last_report.metric``. Default: "topk_intersection"
        higher_is_stronger (bool, optional): Direction of a callable ``selection_metric``
                    (None: named metrics' own direction, callables: lower is stronger).
                    Default: None
        surrogate (Callable, optional): Model differentiated for the attack direction, e.g.
                    ``softplus_surrogate(model, 10.0)``; label checks, scores and reports
                    always use the original model. Default: None
        softplus_beta (float, optional): Shortcut for ``surrogate=softplus_surrogate(model,
                    softplus_beta)`` (needs an ``nn.Module`` model). Default: None
        explainer_kwargs (dict, optional): Options of a named explainer: ``abs``
                    (saliency, default True); ``baselines``, ``n_steps`` (50), ``method``
                    ("gausslegendre") for integrated_gradients; ``n_guide`` (64), ``stdevs``
                    (0.25), ``noise`` ("fixed": one draw per ``perturb`` call, or
                    "per_step"), ``n_eval`` (evaluation samples, default ``n_guide``),
                    ``nt_samples_batch_size`` (128: samples per chunk; bounds the attack's
                    memory whatever ``n_guide``) for the smoothed explainers, and
                    ``sparsity`` (0.1; the top-tau of the binary maps that score iterates,
                    None: score with the guide map) for sparse_smoothgrad. Default: None
        reduce_channels (str, optional): ``"sum_abs"``, ``"mean_abs"``, ``"abs"`` or None.
                    Default: "sum_abs"
        normalize (str, optional): ``"sum_to_hw"``, ``"sum_to_one"`` or None.
                    Default: "sum_to_hw"
        max_halvings (int, optional): Step halvings of the backtracking policy.
                    Default: 200
        search_iterations (int, optional): Random draws tried for a label-keeping start.
                    Default: 100
        auto_surrogate (bool, optional): With no ``surrogate``/``softplus_beta``: when the
                    map's input gradient is zero for every example at the first step (a ReLU
                    network) and the model has ``nn.ReLU``/``nn.ReLU6`` modules, differentiate
                    ``softplus_surrogate(model, 10.0)`` instead, rebuilt from the current
                    weights in each ``perturb`` call (``report.extra["auto_surrogate"]``
                    says when). False: keep the original model and warn. Default: True

    Examples::

        >>> opts = AttackOptions(k=10, softplus_beta=10.0)
        >>> opts.replace(objective="mass_center").objective
        'mass_center'
        >>> AttackOptions(objective="sideways")
        Traceback (most recent call last):
        ...
        ValueError: `objective` must be one of (...), got 'sideways'
    """

    k: int | float = 0.1
    objective: str = "topk"
    selection_metric: str | Callable[[Any, Any], Tensor] = "topk_intersection"
    higher_is_stronger: bool | None = None
    surrogate: Callable[..., Tensor] | None = None
    softplus_beta: float | None = None
    explainer_kwargs: Mapping[str, Any] | None = None
    reduce_channels: str | None = "sum_abs"
    normalize: str | None = "sum_to_hw"
    max_halvings: int = 200
    search_iterations: int = 100
    auto_surrogate: bool = True

    def __post_init__(self) -> None:
        check = object.__setattr__  # normalized values replace the given ones (frozen)
        check(self, "k", check_count_spec(self.k, "k"))
        if self.objective not in OBJECTIVES:
            raise ValueError(f"`objective` must be one of {OBJECTIVES}, got {self.objective!r}")
        spec = self.selection_metric
        if isinstance(spec, str):
            if not is_metric_name(spec):
                raise ValueError(
                    f"`selection_metric` must be one of {sorted(METRICS)} or a callable, got "
                    f"{spec!r}"
                )
        elif not callable(spec):
            raise TypeError(
                f"`selection_metric` must be a metric name or a callable, got {type(spec).__name__}"
            )
        if self.higher_is_stronger is not None and not isinstance(self.higher_is_stronger, bool):
            raise TypeError(
                "`higher_is_stronger` must be a bool or None, got "
                f"{type(self.higher_is_stronger).__name__}"
            )
        if self.surrogate is not None and self.softplus_beta is not None:
            raise ValueError("give either `surrogate` or `softplus_beta`, not both")
        if self.surrogate is not None and not callable(self.surrogate):
            raise TypeError(f"`surrogate` must be callable, got {type(self.surrogate).__name__}")
        if self.softplus_beta is not None:
            check(self, "softplus_beta", check_positive(self.softplus_beta, "softplus_beta"))
        if self.explainer_kwargs is not None:
            if not isinstance(self.explainer_kwargs, Mapping):
                raise TypeError(
                    f"`explainer_kwargs` must be a dict, got {type(self.explainer_kwargs).__name__}"
                )
            check(self, "explainer_kwargs", dict(self.explainer_kwargs))
        check_conventions(self.reduce_channels, self.normalize)
        check(self, "max_halvings", check_int(self.max_halvings, "max_halvings", 0))
        check(self, "search_iterations", check_int(self.search_iterations, "search_iterations", 1))
        if not isinstance(self.auto_surrogate, bool):
            raise TypeError(
                f"`auto_surrogate` must be a bool, got {type(self.auto_surrogate).__name__}"
            )

    def replace(self, **changes: Any) -> AttackOptions:
        """A copy with ``changes`` applied (checked like the constructor's arguments).

        Raises:
            TypeError: A name that is no field of :class:`AttackOptions`.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"unknown attack option(s) {unknown}; the options are {sorted(names)}")
        return dataclasses.replace(self, **changes) if changes else self
