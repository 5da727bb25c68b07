"""Noise distributions: unit-scale samplers driven by a ``torch.Generator``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor


class NoiseDistribution(ABC):
    r"""A zero-centred noise family with a scale parameter.

    Subclasses draw *unit-scale* noise; the engine multiplies by the user's scale (``stdevs``
    for Gaussian noise, a radius for uniform noise). Draws use only the ``generator`` given (or
    the global torch RNG when it is None), in the order of the inputs, so a seeded generator
    reproduces results bit for bit.

    Attributes:
        name (str): Short name used in certificates and error messages.
        certified_norms (tuple[str, ...]): Norms for which a certificate exists.
        joint (bool): True if the distribution is not i.i.d. per coordinate (it is drawn
                    jointly over all features of an example, e.g. a uniform l2 ball).
    """

    name: str = "noise"
    certified_norms: tuple[str, ...] = ()
    joint: bool = False

    @abstractmethod
    def sample_unit(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device,
    ) -> Tensor:
        """Draw unit-scale noise of ``shape`` (dim 0 is the batch)."""

    def sample(
        self,
        shapes: Sequence[Sequence[int]],
        scales: Sequence[Tensor],
        *,
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device,
    ) -> tuple[Tensor, ...]:
        """Draw scaled noise for each input of a tuple, in order.

        Args:
            shapes: one shape per input (dim 0 = samples).
            scales: one scale tensor per input, broadcastable against its shape.

        Returns:
            tuple[Tensor, ...]: one noise tensor per input.
        """
        # Draw where the generator lives (a CPU generator may drive noise for CUDA inputs).
        draw_device = generator.device if generator is not None else device
        if not self.joint:
            return tuple(
                self.sample_unit(s, generator=generator, dtype=dtype, device=draw_device).to(device)
                * sc
                for s, sc in zip(shapes, scales)
            )
        # Joint noise: one draw over the concatenated features of all inputs.
        sizes = [int(torch.Size(s[1:]).numel()) for s in shapes]
        flat = self.sample_unit(
            (shapes[0][0], sum(sizes)), generator=generator, dtype=dtype, device=draw_device
        ).to(device)
        parts = flat.split(sizes, dim=1)
        return tuple(p.reshape(s) * sc for p, s, sc in zip(parts, shapes, scales))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
