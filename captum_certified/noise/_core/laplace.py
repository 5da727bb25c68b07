"""Laplace and generalized Gaussian noise, sampled from a ``torch.Generator`` only.

``torch.distributions.Laplace`` and ``torch._standard_gamma`` do not take a generator, so both
families are sampled here from ``torch.rand`` / ``torch.randn`` draws: the Laplace law as the
difference of two inverse-CDF exponentials, the Gamma law (behind the generalized Gaussian) with
Marsaglia and Tsang's rejection method. Random numbers are drawn in float64 and cast at the end,
so the tails are not truncated at float32 resolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from captum_certified._utils.laplace_law import laplace_icdf
from captum_certified._utils.validation import check_positive_float
from captum_certified.noise._core.base import NoiseDistribution
from captum_certified.noise._core.renyi import laplace_rdp_epsilon


def _uniform_open_closed(
    shape: Sequence[int], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """float64 uniforms in (0, 1] (``1 - U`` with ``U ~ U[0, 1)``), safe to take logs of."""
    return 1.0 - torch.rand(tuple(shape), generator=generator, dtype=torch.float64, device=device)


def sample_standard_gamma(
    shape: Sequence[int],
    concentration: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    r"""Draw ``Gamma(concentration, 1)`` variates using only ``generator``.

    Marsaglia and Tsang's method ("A simple method for generating gamma variables", ACM TOMS
    2000) for ``a = concentration >= 1``: with ``d = a - 1/3``, ``c = 1 / sqrt(9 d)``, draw
    ``x ~ N(0, 1)``, ``v = (1 + c x)^3`` and ``u ~ U(0, 1)``; accept ``d v`` when ``v > 0`` and
    ``log u < x^2 / 2 + d - d v + d log v``. Rejected entries are redrawn (vectorized, at least
    95 % accepted per round), so the stream of random numbers, hence the result, is a
    deterministic function of the generator state. For ``a < 1`` it uses
    ``Gamma(a) = Gamma(a + 1) * U^(1/a)``.

    Args:
        shape (sequence of int): Output shape.
        concentration (float): Shape parameter ``a > 0``.
        generator (torch.Generator, optional): Randomness source (None: global RNG).
                    Default: None
        device (torch.device or str, optional): Output device. Default: "cpu"

    Returns:
        Tensor: float64 samples of ``shape``.

    Examples::

        >>> g = sample_standard_gamma((10000,), 2.5, generator=torch.Generator().manual_seed(0))
        >>> round(g.mean().item(), 1)
        2.5
    """
    a = check_positive_float(concentration, "concentration")
    device = torch.device(device)
    boost = a < 1.0
    if boost:
        a = a + 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    numel = math.prod(int(s) for s in shape)
    out = torch.empty(numel, dtype=torch.float64, device=device)
    pending = torch.arange(numel, device=device)
    while pending.numel():
        m = pending.numel()
        x = torch.randn(m, generator=generator, dtype=torch.float64, device=device)
        u = _uniform_open_closed((m,), generator, device)
        v = (1.0 + c * x) ** 3
        positive = v > 0
        log_v = torch.log(torch.where(positive, v, torch.ones_like(v)))
        accept = positive & (torch.log(u) < 0.5 * x * x + d - d * v + d * log_v)
        out[pending[accept]] = d * v[accept]
        pending = pending[~accept]
    out = out.reshape(tuple(shape))
    if boost:
        u = _uniform_open_closed(tuple(shape), generator, device)
        out = out * u.pow(1.0 / (a - 1.0))
    return out


class LaplaceNoise(NoiseDistribution):
    r"""I.i.d. Laplace noise, density ``exp(-|z| / b) / (2 b)`` per coordinate.

    **Scale convention.** ``noise_scale`` is the Laplace *scale* ``b`` (the parameter of the
    density and of the RDP bound), **not** the standard deviation: the standard deviation is
    ``sqrt(2) * b``. ``noise_scale=0.5`` therefore adds noise of variance ``2 * 0.25 = 0.5``.
    (``stdevs``, the standard deviation of Gaussian noise, is refused with this noise.)

    Each unit draw is ``E1 - E2`` with ``E = -log(1 - U)``, ``U ~ U[0, 1)`` (two float64
    uniforms per coordinate from the generator). Its certificate
    (:class:`~captum_certified.certify.RDPTopKCertifier`) uses Mironov's Rényi-DP bound for the
    l1 norm (and valid conversions for any l_p, see :meth:`rdp_epsilon` and
    :doc:`/renyi`).

    Examples::

        >>> from captum_certified.attr import RenyiRobustSmooth
        >>> attr, cert = RenyiRobustSmooth(model).attribute(
        ...     x, target=3, noise=LaplaceNoise(), noise_scale=0.5, return_certificate=True)
    """

    name = "laplace"
    certified_norms = ("l1", "l2", "linf")
    native_norm = "l1"
    coordinate_rule = "laplace"

    #: :func:`~captum_certified.noise._core.renyi.laplace_rdp_epsilon`, ``scale`` = ``b``.
    renyi_curve = staticmethod(laplace_rdp_epsilon)

    def unit_icdf(self, p: Tensor) -> Tensor:
        """:func:`laplace_icdf`, the standard Laplace quantile function."""
        return laplace_icdf(p)

    def sample_unit(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device,
    ) -> Tensor:
        u = torch.rand((2,) + tuple(shape), generator=generator, dtype=torch.float64, device=device)
        e = -torch.log1p(-u)  # two independent Exp(1) draws
        return (e[0] - e[1]).to(dtype)


class GeneralizedGaussianNoise(NoiseDistribution):
    r"""I.i.d. generalized Gaussian noise, density proportional to ``exp(-|z / sigma|^q)``.

    ``noise_scale`` is the scale ``sigma`` of the density, not the standard deviation: the variance
    is ``sigma^2 Gamma(3/q) / Gamma(1/q)`` (``q = 2`` gives ``N(0, sigma^2 / 2)``, ``q = 1``
    the Laplace law with ``b = sigma``). Liu et al.'s Rényi-Robust-Smooth noise.

    Sampling: ``|z| = G^(1/q)`` with ``G ~ Gamma(1/q, 1)`` and a random sign. For ``q > 1``
    (shape ``1/q < 1``) this is computed as ``|z| = U * Gamma(1 + 1/q)^(1/q)``, which is the
    same law and avoids underflow.

    **No certificate.** Its Rényi divergence under a shift has no closed form (a 1-D integral
    per coordinate) and the mapping from ``q`` to the certified norm is not settled, so
    ``return_certificate=True`` raises ``ValueError``; use ``"gaussian"`` or ``"laplace"`` for
    certified maps.

    Args:
        q (float, optional): Shape exponent ``q > 0``. Default: 2.0

    Examples::

        >>> from captum_certified.attr import RenyiRobustSmooth
        >>> noise = GeneralizedGaussianNoise(q=1.5)
        >>> attr = RenyiRobustSmooth(model).attribute(x, target=3, noise=noise, noise_scale=0.5)
    """

    name = "generalized_gaussian"
    certified_norms = ()

    def __init__(self, q: float = 2.0) -> None:
        self.q = check_positive_float(q, "q")

    @property
    def unit_variance(self) -> float:
        """Variance of a unit-scale draw, ``Gamma(3/q) / Gamma(1/q)``."""
        return math.exp(math.lgamma(3.0 / self.q) - math.lgamma(1.0 / self.q))

    def sample_unit(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device,
    ) -> Tensor:
        shape = tuple(shape)
        if self.q > 1.0:
            g = sample_standard_gamma(shape, 1.0 + 1.0 / self.q, generator=generator, device=device)
            magnitude = _uniform_open_closed(shape, generator, device) * g.pow(1.0 / self.q)
        else:
            g = sample_standard_gamma(shape, 1.0 / self.q, generator=generator, device=device)
            magnitude = g.pow(1.0 / self.q)
        sign = torch.rand(shape, generator=generator, dtype=torch.float64, device=device) < 0.5
        return torch.where(sign, -magnitude, magnitude).to(dtype)

    def __repr__(self) -> str:
        return f"GeneralizedGaussianNoise(q={self.q})"
