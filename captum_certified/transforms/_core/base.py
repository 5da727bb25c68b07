"""Per-sample transforms: maps from one noisy sample's attribution to a (bounded) map."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor


class AttributionTransform(ABC):
    r"""A deterministic per-sample map applied to flattened attributions of shape ``(N, d)``.

    Certificates need per-sample maps with values in [0, 1]; the class attribute ``kind``
    states what a transform guarantees:

    - ``"binary"``: values in {0, 1} (counts; exact Clopper-Pearson bands apply),
    - ``"unit"``: values in [0, 1] (Hoeffding bands apply),
    - ``"real"``: unbounded (smoothing only, no certificate).

    ``default_bound`` names the confidence band a band certifier uses for the transform's maps
    when the caller asks for none (``bound=None``); None keeps the certifier's rule
    (Clopper-Pearson for binary maps, Bernoulli-KL otherwise). The rank-linear map sets
    ``"betting"``: its values spread over [0, 1], where the variance-adaptive band certifies
    more (:doc:`/certificates`, section 3b).

    Every row is transformed independently, and ties are broken deterministically (lowest
    feature index first), so the map is a deterministic function of the noisy input, which is
    what the smoothing certificates require.
    """

    kind: str = "real"
    default_bound: str | None = None

    @abstractmethod
    def __call__(self, attributions: Tensor) -> Tensor:
        """Map ``(N, d)`` attributions to ``(N, d)`` values."""

    def from_outputs(self, outputs: tuple[Tensor, ...]) -> Tensor:
        """Map the wrapped method's outputs ``(N, *shape_i)`` to ``(N, d)`` per-sample maps.

        The engine calls this on every chunk. The default flattens and concatenates the
        outputs and applies the transform; a transform that needs the map's layout (e.g.
        :class:`~captum_certified.transforms.Upsample`) overrides it.
        """
        return self(torch.cat([o.reshape(o.shape[0], -1) for o in outputs], dim=1))

    def output_shapes(self, shapes: list[torch.Size]) -> list[torch.Size]:
        """Per-example shapes of the transformed map, given those of the method's outputs.

        The default keeps them (a transform that keeps ``d`` keeps the layout).
        """
        return list(shapes)

    @property
    def is_identity(self) -> bool:
        return False

    def total_mass(self, num_features: int) -> float | None:
        """The exact sum of every per-sample map over its ``num_features`` features, if the
        transform fixes it (rank re-scalings, top-k binarization); None otherwise.

        Certifiers that need ``q / S`` to be a distribution (the pairwise Rényi bound) use it
        and check every sampled map against it.
        """
        return None

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
