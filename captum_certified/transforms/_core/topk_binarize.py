"""Top-tau binarization: Levine et al.'s Sparsified SmoothGrad per-sample map."""

from __future__ import annotations

from torch import Tensor

from captum_certified._utils.validation import check_count_spec, resolve_count
from captum_certified.transforms._core.base import AttributionTransform
from captum_certified.transforms._core.selection import topk_mask


class TopKBinarize(AttributionTransform):
    r"""1 on the ``sparsity`` largest-magnitude features of a sample, 0 elsewhere.

    Levine et al.'s ``ZeroOneExplainer``: exactly ``floor(tau * d)`` ones (or ``sparsity``
    ones if it is an int), ties broken by lowest feature index.

    Args:
        sparsity (int or float): Features kept per sample: a count in ``1..d`` or a fraction
                    ``tau`` of ``d`` in (0, 1].
        by_magnitude (bool, optional): Rank by ``|a|`` (True) or by signed ``a``.
                    Default: True

    Examples::

        >>> TopKBinarize(0.5)(torch.tensor([[0.1, -3.0, 2.0, 0.0]]))
        tensor([[0., 1., 1., 0.]])
    """

    kind = "binary"

    def __init__(self, sparsity: int | float, by_magnitude: bool = True) -> None:
        self.sparsity = check_count_spec(sparsity, "sparsity")
        self.by_magnitude = by_magnitude

    def __call__(self, attributions: Tensor) -> Tensor:
        scores = attributions.abs() if self.by_magnitude else attributions
        k = resolve_count(self.sparsity, scores.shape[1], "sparsity")
        return topk_mask(scores, k).to(attributions.dtype)

    def __repr__(self) -> str:
        return f"TopKBinarize(sparsity={self.sparsity}, by_magnitude={self.by_magnitude})"
