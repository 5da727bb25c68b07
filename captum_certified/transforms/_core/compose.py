"""Chaining of per-sample transforms."""

from __future__ import annotations

import torch
from torch import Tensor

from captum_certified.transforms._core.base import AttributionTransform


class Compose(AttributionTransform):
    r"""Apply transforms one after the other, the first to the method's outputs.

    The first transform sees the method's outputs with their layout (so a shape-aware one such
    as :class:`Upsample` must come first); the next ones see flat ``(N, d)`` maps. The
    composition guarantees what its last transform guarantees (``kind``) and takes its
    ``default_bound``.

    Args:
        *transforms (AttributionTransform): At least one transform.

    Examples::

        >>> from captum.attr import LayerGradCam
        >>> from captum_certified.attr import CertifiedWrapper
        >>> from captum_certified.certify import FeatureCertifier
        >>> from captum_certified.transforms import TopKBinarize, Upsample
        >>> t = Compose(Upsample(to=x), TopKBinarize(0.25))
        >>> cw = CertifiedWrapper(LayerGradCam(model, layer), transform=t,
        ...                       certifier=FeatureCertifier())
        >>> attr, cert = cw.attribute(x, target=y, nt_samples=64, stdevs=0.1,
        ...                           return_certificate=True)
        >>> attr.shape  # the upsampled, binarized Grad-CAM map
        torch.Size([4, 1, 16, 16])
    """

    def __init__(self, *transforms: AttributionTransform) -> None:
        if not transforms:
            raise ValueError("`transforms` must not be empty")
        for i, t in enumerate(transforms):
            if not isinstance(t, AttributionTransform):
                raise TypeError(
                    f"`transforms`[{i}] must be an AttributionTransform, got {type(t).__name__}"
                )
        self.transforms = tuple(transforms)

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.transforms[-1].kind

    @property
    def default_bound(self) -> str | None:  # type: ignore[override]
        return self.transforms[-1].default_bound

    @property
    def is_identity(self) -> bool:
        return all(t.is_identity for t in self.transforms)

    def __call__(self, attributions: Tensor) -> Tensor:
        out = attributions
        for t in self.transforms:
            out = t(out)
        return out

    def from_outputs(self, outputs: tuple[Tensor, ...]) -> Tensor:
        out = self.transforms[0].from_outputs(outputs)
        for t in self.transforms[1:]:
            out = t(out)
        return out

    def output_shapes(self, shapes: list[torch.Size]) -> list[torch.Size]:
        for t in self.transforms:
            shapes = t.output_shapes(shapes)
        return shapes

    def __repr__(self) -> str:
        return f"Compose({', '.join(repr(t) for t in self.transforms)})"
