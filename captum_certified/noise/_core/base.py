"""Noise distributions: unit-scale samplers driven by a ``torch.Generator``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import Tensor


class NoiseDistribution(ABC):
    r"""A zero-centred noise family with a scale parameter.

    Subclasses draw *unit-scale* noise; the engine multiplies by the user's scale, the
    family's native scale: Gaussian ``sigma`` (the engine's ``stdevs``, Captum's name), and
    for every other family ``noise_scale`` (Laplace ``b``, a uniform radius). Draws use only
    the ``generator`` given (or the global torch RNG when it is None), in the order of the
    inputs, so a seeded generator reproduces results bit for bit.

    Attributes:
        name (str): Short name used in certificates and error messages.
        certified_norms (tuple[str, ...]): Norms for which a certificate exists.
        joint (bool): True if the distribution is not i.i.d. per coordinate (it is drawn
                    jointly over all features of an example, e.g. a uniform l2 ball).
        native_norm (str or None): The l_p norm a shift of this law is measured in by its
                    certificates (``"l2"`` Gaussian, ``"l1"`` Laplace); None if none.
        coordinate_rule (str or None): Name of the exact per-coordinate quantile rule of the
                    law (``"phi"`` Gaussian, ``"laplace"`` Laplace): ``F^-1(hbar)`` is
                    ``1/scale``-Lipschitz in ``native_norm`` for every smoothed [0, 1] function
                    ``hbar``, with ``F^-1`` = :meth:`unit_icdf`. None if the law has none.

    What certifiers need from a noise is asked of the noise object (:meth:`rdp_epsilon`,
    :meth:`unit_icdf`, ``native_norm``), never of its name: a new noise touches one class.
    """

    name: str = "noise"
    certified_norms: tuple[str, ...] = ()
    joint: bool = False
    native_norm: str | None = None
    coordinate_rule: str | None = None
    #: The law's Rényi curve ``f(orders, radius, scale, *, norm, num_features)`` (a
    #: ``staticmethod``), or None; :meth:`rdp_epsilon` calls it with ``norm`` defaulting to
    #: :attr:`native_norm`.
    renyi_curve: Callable[..., Tensor] | None = None

    @property
    def has_rdp(self) -> bool:
        """Whether the law has a Rényi curve (:meth:`rdp_epsilon`)."""
        return (
            self.renyi_curve is not None
            or type(self).rdp_epsilon is not NoiseDistribution.rdp_epsilon
        )

    def rdp_epsilon(
        self,
        orders: Tensor,
        radius: Tensor | float,
        scale: Tensor | float,
        *,
        norm: str | float | None = None,
        num_features: int | None = None,
    ) -> Tensor:
        r"""Rényi divergence bound ``epsilon_a`` for every shift ``||delta||_norm <= radius``.

        Bounds ``D_a`` between the law at scale ``scale`` centred at ``x`` and at ``x + delta``
        (both directions), for every order ``a`` of ``orders`` (:doc:`/certificates`).

        Args:
            orders (Tensor): Rényi orders ``a > 1``, shape ``(A,)``.
            radius (Tensor or float): Scalar or ``(bsz,)`` radius in ``norm``.
            scale (Tensor or float): Scalar or ``(bsz,)`` scale of the law.
            norm (str or float, optional): Perturbation norm; None is :attr:`native_norm`.
                        Default: None
            num_features (int, optional): ``N``, the number of perturbed input features
                        (needed by some norm conversions). Default: None

        Returns:
            Tensor: float64, shape ``(bsz, A)``.
        """
        curve = self.renyi_curve
        if curve is None:
            raise ValueError(
                f"no Rényi-DP bound is implemented for {self!r} noise; certified noises are "
                "GaussianNoise ('gaussian') and LaplaceNoise ('laplace')"
            )
        norm = self.native_norm if norm is None else norm
        return curve(orders, radius, scale, norm=norm, num_features=num_features)

    def unit_icdf(self, p: Tensor) -> Tensor:
        """Quantile function of the unit-scale one-dimensional law (``coordinate_rule``)."""
        raise ValueError(f"{self!r} has no exact per-coordinate quantile rule")

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
        if not self.joint:
            # draw where the generator lives (a CPU generator may drive noise for CUDA inputs)
            draw_device = generator.device if generator is not None else device
            return tuple(
                self.sample_unit(s, generator=generator, dtype=dtype, device=draw_device).to(device)
                * sc
                for s, sc in zip(shapes, scales)
            )
        parts = self.sample_joint(shapes, generator=generator, dtype=dtype, device=device)
        return tuple(p * sc for p, sc in zip(parts, scales))

    def sample_joint(
        self,
        shapes: Sequence[Sequence[int]],
        *,
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device,
    ) -> tuple[Tensor, ...]:
        """One unit-scale draw over the concatenated features of all inputs, split per input."""
        draw_device = generator.device if generator is not None else device
        sizes = [int(torch.Size(tuple(s)[1:]).numel()) for s in shapes]
        flat = self.sample_unit(
            (int(shapes[0][0]), sum(sizes)), generator=generator, dtype=dtype, device=draw_device
        ).to(device)
        return tuple(p.reshape(tuple(s)) for p, s in zip(flat.split(sizes, dim=1), shapes))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
