"""Path integrals with a graph: the IG of the loss along ``x -> x'`` and class attributions
along ``0 -> x'`` (right-endpoint Riemann sums, as in Chen et al. and Sarkar et al.).

Both are :func:`captum_certified.attr.differentiable_attribution` with
``"integrated_gradients"`` (Captum's quadrature, ``create_graph=True``) applied to a scalar
function of the model's output, so the attacks and the losses share one differentiable IG.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from captum_certified.attr import differentiable_attribution

Model = Callable[[Tensor], Tensor]

#: Which class probability a class attribution integrates.
CLASS_KINDS = ("true", "other")


def _ig(
    fn: Callable[[Tensor, Tensor], Tensor],
    end: Tensor,
    y: Tensor,
    start: Tensor | None,
    n_steps: int,
    create_graph: bool,
) -> Tensor:
    (out,) = differentiable_attribution(
        fn,
        (end,),
        None,
        "integrated_gradients",
        (y,),
        create_graph=create_graph,
        baselines=start,
        n_steps=n_steps,
        method="riemann_right",
    )
    return out


def loss_ig(
    model: Model, x: Tensor, x_end: Tensor, y: Tensor, n_steps: int, *, create_graph: bool = True
) -> Tensor:
    r"""IG of the per-example cross-entropy along ``x -> x_end``:

    ``(x_end - x) * (1/m) sum_{j=1..m} grad_z CE(model(z), y) at z = x + (j/m)(x_end - x)``.

    Summed over features it equals ``CE(x_end) - CE(x)`` up to the quadrature error
    (completeness). The graph reaches the parameters (and ``x_end`` if it requires grad).
    """

    def ce(z: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(model(z), labels, reduction="none")

    return _ig(ce, x_end, y, x, n_steps, create_graph)


def class_probability(model: Model, kind: str) -> Callable[[Tensor, Tensor], Tensor]:
    """``z -> p_y(z)`` (``"true"``) or ``z -> max_{c != y} p_c(z)`` (``"other"``: the most
    probable wrong class, chosen again at every ``z``)."""
    if kind not in CLASS_KINDS:
        raise ValueError(f"`kind` must be one of {CLASS_KINDS}, got {kind!r}")

    def prob(z: Tensor, labels: Tensor) -> Tensor:
        p = torch.softmax(model(z), dim=1)
        if kind == "true":
            return p.gather(1, labels.reshape(-1, 1)).squeeze(1)
        wrong = F.one_hot(labels, p.shape[1]).bool()
        return p.masked_fill(wrong, float("-inf")).amax(dim=1)

    return prob


def class_ig(
    model: Model, x_end: Tensor, y: Tensor, n_steps: int, kind: str, *, create_graph: bool = True
) -> Tensor:
    """IG of a class probability (see :func:`class_probability`) along ``0 -> x_end``."""
    return _ig(class_probability(model, kind), x_end, y, None, n_steps, create_graph)


def pixel_map(a: Tensor, how: str) -> Tensor:
    """Flatten attributions to ``(bsz, n)``; inputs with more than 2 dims (``(bsz, C, ...)``)
    are first reduced over the channel axis 1 with ``how`` (``"sum"`` or ``"mean"``)."""
    if a.dim() > 2:
        a = a.sum(dim=1) if how == "sum" else a.mean(dim=1)
    return a.reshape(a.shape[0], -1)
