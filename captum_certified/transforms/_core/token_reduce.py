"""Per-token reduction of a layer map (tokens x embedding dims) to one score per token."""

from __future__ import annotations

import torch
from torch import Tensor

from captum_certified.transforms._core.base import AttributionTransform

TOKEN_REDUCTIONS = ("sum", "abs_sum", "l2")


class TokenReduce(AttributionTransform):
    r"""Reduce each token's attribution vector to one score: ``(N, T, E) -> (N, T)``.

    A layer method on an embedding layer (``LayerIntegratedGradients(model, model.embedding)``)
    returns one value per token and embedding dimension. This transform reduces the last
    dimension of every output, per sample, to

    - ``"sum"``: ``sum_e a[t, e]`` (Captum's ``LLMGradientAttribution`` and the IG authors'
      token score; signed),
    - ``"abs_sum"``: ``sum_e |a[t, e]|``,
    - ``"l2"``: ``sqrt(sum_e a[t, e]^2)`` (the default; a token's attribution mass
      independent of sign cancellations).

    Put it first in a :class:`Compose` before a bounded map, e.g.
    ``Compose(TokenReduce("l2"), TopKBinarize(2))`` for a certified top-2 *token* map: the
    per-token map is the documented default for text. The certificate then speaks about the
    top-K tokens under l2 perturbations of the layer's output (``docs/certificates.rst``).

    Args:
        reduction (str, optional): ``"l2"``, ``"abs_sum"`` or ``"sum"``. Default: "l2"

    Examples::

        >>> a = torch.tensor([[[3.0, -4.0], [1.0, 1.0], [0.0, -2.0]]])  # 1 x 3 tokens x 2 dims
        >>> TokenReduce("l2")(a)
        tensor([[5.0000, 1.4142, 2.0000]])
        >>> TokenReduce("sum")(a)
        tensor([[-1.,  2., -2.]])
        >>> TokenReduce("abs_sum")(a)
        tensor([[7., 2., 2.]])
    """

    kind = "real"

    def __init__(self, reduction: str = "l2") -> None:
        if not isinstance(reduction, str):
            raise TypeError(f"`reduction` must be a str, got {type(reduction).__name__}")
        if reduction not in TOKEN_REDUCTIONS:
            raise ValueError(f"`reduction` must be one of {TOKEN_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def __call__(self, attributions: Tensor) -> Tensor:
        """Reduce ``(N, *tokens, E)`` attributions over ``E`` and flatten to ``(N, d)``."""
        if attributions.dim() < 3:
            raise ValueError(
                "TokenReduce needs attributions of shape (N, tokens, embedding dims), got "
                f"{tuple(attributions.shape)}"
            )
        if self.reduction == "sum":
            out = attributions.sum(dim=-1)
        elif self.reduction == "abs_sum":
            out = attributions.abs().sum(dim=-1)
        else:
            out = torch.linalg.vector_norm(attributions, ord=2, dim=-1)
        return out.reshape(out.shape[0], -1)

    def from_outputs(self, outputs: tuple[Tensor, ...]) -> Tensor:
        return torch.cat([self(o) for o in outputs], dim=1)

    def output_shapes(self, shapes: list[torch.Size]) -> list[torch.Size]:
        return [torch.Size(tuple(s)[:-1]) for s in shapes]

    def __repr__(self) -> str:
        return f"TokenReduce({self.reduction!r})"
