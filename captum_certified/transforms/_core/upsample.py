"""Upsampling of layer attributions to the input's resolution (LayerAttribution.interpolate)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_certified.transforms._core.base import AttributionTransform


class Upsample(AttributionTransform):
    r"""Interpolate each layer attribution ``(N, C, *spatial)`` to the input's spatial size.

    Computes exactly what :meth:`captum.attr.LayerAttribution.interpolate` computes
    (``F.interpolate(a, size, mode=mode)``), then flattens, so a layer method such as
    ``LayerGradCam`` yields an input-resolution map; put it first in a :class:`Compose`
    (e.g. ``Compose(Upsample(to=x), TopKBinarize(0.25))``). The noise still perturbs the input,
    so a certificate about the upsampled map speaks about input-space perturbations.

    Args:
        to (Tensor, int or tuple[int, ...]): Target spatial size; a tensor of shape
                    ``(bsz, C, *spatial)`` (e.g. the input) gives ``to.shape[2:]``.
        mode (str, optional): Interpolation mode of :func:`torch.nn.functional.interpolate`
                    (Captum's ``interpolate_mode``). Default: "nearest"

    Examples::

        >>> up = Upsample(to=(4, 4))
        >>> up(torch.arange(4.0).reshape(1, 1, 2, 2)).shape
        torch.Size([1, 16])
    """

    kind = "real"

    def __init__(self, to: Tensor | int | tuple[int, ...], mode: str = "nearest") -> None:
        if isinstance(to, Tensor):
            if to.dim() < 3:
                raise ValueError(
                    f"`to` as a tensor must be (bsz, C, *spatial), got shape {tuple(to.shape)}"
                )
            size: tuple[int, ...] = tuple(int(s) for s in to.shape[2:])
        elif isinstance(to, int) and not isinstance(to, bool):
            size = (to,)
        elif isinstance(to, (tuple, list, torch.Size)) and all(
            isinstance(s, int) and not isinstance(s, bool) for s in to
        ):
            size = tuple(to)
        else:
            raise TypeError(f"`to` must be a tensor, an int or a tuple of ints, got {to!r}")
        if not size or any(s < 1 for s in size):
            raise ValueError(f"`to` must give positive sizes, got {size}")
        if not isinstance(mode, str):
            raise TypeError(f"`mode` must be a str, got {type(mode).__name__}")
        self.size = size
        self.mode = mode

    def _interpolate(self, attributions: Tensor) -> Tensor:
        spatial = attributions.dim() - 2
        if spatial < 1:
            raise ValueError(
                "Upsample needs layer attributions of shape (N, C, *spatial), got "
                f"{tuple(attributions.shape)}"
            )
        size = self.size * spatial if len(self.size) == 1 else self.size
        if len(size) != spatial:
            raise ValueError(
                f"`to` has {len(self.size)} spatial dims but the attribution has {spatial}"
            )
        if tuple(attributions.shape[2:]) == tuple(size):
            return attributions
        return F.interpolate(attributions, size, mode=self.mode)

    def __call__(self, attributions: Tensor) -> Tensor:
        """Upsample ``(N, C, *spatial)`` attributions and flatten them to ``(N, d)``."""
        up = self._interpolate(attributions)
        return up.reshape(up.shape[0], -1)

    def from_outputs(self, outputs: tuple[Tensor, ...]) -> Tensor:
        return torch.cat([self(o) for o in outputs], dim=1)

    def output_shapes(self, shapes: list[torch.Size]) -> list[torch.Size]:
        out = []
        for s in shapes:
            spatial = len(s) - 1
            size = self.size * spatial if len(self.size) == 1 else self.size
            out.append(torch.Size((s[0], *size)))
        return out

    def __repr__(self) -> str:
        return f"Upsample(to={self.size}, mode={self.mode!r})"
