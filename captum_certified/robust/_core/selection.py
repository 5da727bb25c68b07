"""Attribution-similarity metrics used to pick iterates and to compare attacks.

The metrics themselves live in :mod:`captum_certified.metrics`; this module only names them,
binds their preprocessing arguments and records which direction means a stronger attack
(from ``captum_certified.metrics.METRIC_HIGHER_IS_SIMILAR``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from torch import Tensor

from captum_certified import metrics as metrics_module

#: metric name -> function of captum_certified.metrics (the names are the functions' names)
METRICS: dict[str, str] = {
    name: name
    for name in (
        "topk_intersection",
        "kendall_tau",
        "spearman_rho",
        "center_of_mass_shift",
        "cosine_similarity",
    )
}


def is_metric_name(spec: object) -> bool:
    return isinstance(spec, str) and spec in METRICS


class MapMetric:
    r"""A per-example similarity ``fn(clean, attacked) -> (bsz,)`` and its direction.

    Attributes:
        name (str): Display name.
        higher_is_stronger (bool): True when a larger value means the attack moved the map more
                    (center-of-mass shift); False for similarities (top-k intersection,
                    Kendall, Spearman, cosine).
    """

    def __init__(
        self, name: str, fn: Callable[[Any, Any], Tensor], higher_is_stronger: bool
    ) -> None:
        self.name = name
        self.fn = fn
        self.higher_is_stronger = higher_is_stronger

    def __call__(self, clean: Any, attacked: Any) -> Tensor:
        out = self.fn(clean, attacked)
        if not isinstance(out, Tensor) or out.dim() != 1:
            raise TypeError(
                f"metric {self.name!r} must return a (bsz,) tensor, got "
                f"{type(out).__name__} {getattr(out, 'shape', '')}"
            )
        return out.detach()

    def strength(self, values: Tensor) -> Tensor:
        """Values oriented so that smaller means a stronger attack."""
        return -values if self.higher_is_stronger else values


def resolve_metric(
    spec: str | Callable[[Any, Any], Tensor],
    *,
    k: int | float | None,
    reduce_channels: str | None,
    normalize: str | None,
    higher_is_stronger: bool | None = None,
    argname: str = "selection_metric",
) -> MapMetric:
    """A :class:`MapMetric` from a name in :data:`METRICS` or a callable ``(a, b) -> (bsz,)``.

    Named metrics get ``reduce_channels`` and ``normalize`` (and ``k`` for
    ``"topk_intersection"``); a
    callable is used as given and is taken to be a similarity (lower = stronger attack) unless
    ``higher_is_stronger`` says otherwise.
    """
    if isinstance(spec, str):
        if not is_metric_name(spec):
            raise ValueError(
                f"`{argname}` must be one of {sorted(METRICS)} or a callable, got {spec!r}"
            )
        fname = METRICS[spec]
        # a metric for which higher means *more similar* is weakened by a stronger attack
        higher = not metrics_module.METRIC_HIGHER_IS_SIMILAR[fname]
        kwargs: dict[str, Any] = {"reduce_channels": reduce_channels, "normalize": normalize}
        if fname == "topk_intersection":
            kwargs["k"] = k
        fn = functools.partial(getattr(metrics_module, fname), **kwargs)
        if higher_is_stronger is not None:
            higher = higher_is_stronger
        return MapMetric(spec, fn, higher)
    if callable(spec):
        name = getattr(spec, "__name__", type(spec).__name__)
        return MapMetric(name, spec, bool(higher_is_stronger))
    raise TypeError(f"`{argname}` must be a metric name or a callable, got {type(spec).__name__}")
