"""A generic regularizer: a distance between the attribution maps at ``x`` and ``x'``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from captum_certified.attr import EXPLAINERS, differentiable_attribution
from captum_certified.train._core.checks import check_generator
from captum_certified.train._core.reduce import ReducedRegularizer

DISTANCES = ("l1", "l2", "cosine", "kl")


def attribution_with_graph(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    explainer: str,
    generator: torch.Generator | None,
    options: dict[str, Any],
) -> Tensor:
    """The attribution map of ``explainer`` for class ``y`` with a graph to the parameters.

    The one place the training losses take a (possibly smoothed, noisy-sample) attribution
    with ``create_graph``; it goes through the attacks' differentiable explainers.
    """
    out = differentiable_attribution(
        model, x.detach(), target=y, explainer=explainer, generator=generator, **options
    )
    if isinstance(out, tuple):
        raise TypeError("the training losses take single-tensor inputs; got a tuple map")
    return out


def map_distance(a: Tensor, b: Tensor, distance: str) -> Tensor:
    """Per-example distance between two attribution batches, ``(bsz,)``."""
    fa, fb = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    if distance == "l1":
        return (fa - fb).abs().sum(dim=1)
    if distance == "l2":
        return (fa - fb).pow(2).sum(dim=1).sqrt()
    if distance == "cosine":
        return 1 - torch.nn.functional.cosine_similarity(fa, fb, dim=1, eps=1e-12)
    la, lb = torch.log_softmax(fa, dim=1), torch.log_softmax(fb, dim=1)
    return (la.exp() * (la - lb)).sum(dim=1)


class MapDistanceRegularizer(ReducedRegularizer):
    r"""``dist(A(x), A(x'))`` for a differentiable attribution ``A`` (the true class ``y``),
    reduced over the batch: ``"l1"`` / ``"l2"`` norms of the difference, ``"cosine"``
    distance ``1 - cos``, or ``"kl"``: ``KL(softmax A(x) || softmax A(x'))`` over features.

    A ReLU network has zero second derivatives almost everywhere, but the gradient of a
    gradient map with respect to the *parameters* does not vanish, so this trains ReLU nets.

    Args:
        explainer (str, optional): One of the attacks' explainers (``"saliency"``,
                    ``"input_x_gradient"``, ``"integrated_gradients"``, ``"smoothgrad"``,
                    ``"sparse_smoothgrad"``). Default: "saliency"
        distance (str, optional): ``"l1"``, ``"l2"``, ``"cosine"`` or ``"kl"``.
                    Default: "l1"
        reduction (str, optional): ``"sum"`` or ``"mean"``. Default: "mean"
        generator (torch.Generator, optional): Noise of the smoothed explainers.
                    Default: None
        **explainer_kwargs: Options of the explainer (e.g. ``n_guide``, ``stdevs``).

    Examples::

        >>> reg = MapDistanceRegularizer("smoothgrad", "cosine", n_guide=8, stdevs=0.1)
        >>> value = reg(model, x, x_adv, y)
    """

    def __init__(
        self,
        explainer: str = "saliency",
        distance: str = "l1",
        reduction: str = "mean",
        generator: torch.Generator | None = None,
        **explainer_kwargs: Any,
    ) -> None:
        if explainer not in EXPLAINERS:
            raise ValueError(f"`explainer` must be one of {EXPLAINERS}, got {explainer!r}")
        if distance not in DISTANCES:
            raise ValueError(f"`distance` must be one of {DISTANCES}, got {distance!r}")
        super().__init__(reduction)
        self.explainer, self.distance = explainer, distance
        self.generator = check_generator(generator)
        self.options = explainer_kwargs

    def per_example(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        a = attribution_with_graph(model, x, y, self.explainer, self.generator, self.options)
        b = attribution_with_graph(model, x_adv, y, self.explainer, self.generator, self.options)
        return map_distance(a, b, self.distance)

    def _options(self) -> str:
        return f"{self.explainer!r}, {self.distance!r}, {super()._options()}"
