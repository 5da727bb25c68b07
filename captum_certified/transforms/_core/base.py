"""Per-sample transforms: maps from one noisy sample's attribution to a (bounded) map."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor


class AttributionTransform(ABC):
    r"""A deterministic per-sample map applied to flattened attributions of shape ``(N, d)``.

    Certificates need per-sample maps with values in [0, 1]; the class attribute ``kind``
    states what a transform guarantees:

    - ``"binary"``: values in {0, 1} (counts; exact Clopper-Pearson bands apply),
    - ``"unit"``: values in [0, 1] (Hoeffding bands apply),
    - ``"real"``: unbounded (smoothing only, no certificate).

    Every row is transformed independently, and ties are broken deterministically (lowest
    feature index first), so the map is a deterministic function of the noisy input, which is
    what the smoothing certificates require.
    """

    kind: str = "real"

    @abstractmethod
    def __call__(self, attributions: Tensor) -> Tensor:
        """Map ``(N, d)`` attributions to ``(N, d)`` values."""

    @property
    def is_identity(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(AttributionTransform):
    """Leaves attributions unchanged (plain SmoothGrad / NoiseTunnel)."""

    kind = "real"

    def __call__(self, attributions: Tensor) -> Tensor:
        return attributions

    @property
    def is_identity(self) -> bool:
        return True
