"""Top-tau binarization: Levine et al.'s Sparsified SmoothGrad per-sample map."""

from __future__ import annotations

from captum_certified.transforms._core.scoring import ScoringRescale


class TopKBinarize(ScoringRescale):
    r"""1 on the ``sparsity`` largest-magnitude features of a sample, 0 elsewhere.

    Levine et al.'s ``ZeroOneExplainer``: exactly ``floor(tau * d)`` ones (or ``sparsity``
    ones if it is an int), ties broken by lowest feature index. The same map as
    ``ScoringRescale("topk", sparsity)``, under its own name (kind ``"binary"``).

    Args:
        sparsity (int or float): Features kept per sample: a count in ``1..d`` or a fraction
                    ``tau`` of ``d`` in (0, 1].
        by_magnitude (bool, optional): Rank by ``|a|`` (True) or by signed ``a``.
                    Default: True

    Examples::

        >>> TopKBinarize(0.5)(torch.tensor([[0.1, -3.0, 2.0, 0.0]]))
        tensor([[0., 1., 1., 0.]])
    """

    def __init__(self, sparsity: int | float, by_magnitude: bool = True) -> None:
        super().__init__("topk", sparsity=sparsity, by_magnitude=by_magnitude)

    def __repr__(self) -> str:
        return f"TopKBinarize(sparsity={self.sparsity}, by_magnitude={self.by_magnitude})"
