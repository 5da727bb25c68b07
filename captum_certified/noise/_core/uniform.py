"""Uniform noise: the l_inf cube (Uniform Gradient) and the l2 ball (cosine certificate)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from captum_certified._utils.ball_scales import check_ball_scales
from captum_certified.noise._core.base import NoiseDistribution


class UniformCubeNoise(NoiseDistribution):
    r"""Uniform noise on the l_inf cube ``[-r, r]^d``, i.i.d. per coordinate; the scale is ``r``.

    This is the noise of Wang et al.'s Uniform Gradient (NeurIPS 2020). **Exact sampling
    formula**, per input tensor in order, one draw per noisy batch::

        u = (2 * torch.rand(shape, generator=generator, dtype=dtype) - 1) * r

    so ``u_i`` lies in ``[-r, r)``. Its certificate is
    :class:`~captum_certified.certify.CubeCosineCertifier` (l_inf perturbations), which is
    vacuous unless ``r`` is of the order of ``d`` times the perturbation size: uniform smoothing
    at the paper's radius (4/255) is an *empirical* defence.
    """

    name = "cube"
    certified_norms = ("linf",)
    native_norm = "linf"
    joint = False

    def sample_unit(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device,
    ) -> Tensor:
        u = torch.rand(tuple(shape), generator=generator, dtype=dtype, device=device)
        return 2 * u - 1


class UniformBallNoise(NoiseDistribution):
    r"""Uniform noise on the l2 ball ``B(0, r)`` in ``R^d``; the scale is the radius ``r``.

    ``d`` is the total number of features of an example across all tuple inputs: the noise is
    drawn jointly and split between the inputs, so the concatenated perturbation is uniform on
    the ``d``-dimensional ball. **Exact sampling formula**, per noisy batch of ``N`` rows::

        g = torch.randn((N, d), generator=generator, dtype=dtype)
        U = torch.rand((N,), generator=generator, dtype=torch.float64)
        u = r * U ** (1 / d) * g / ||g||_2        # computed in float64, then cast to dtype

    (``g / ||g||`` is uniform on the sphere and ``||u|| = r U^{1/d}`` has the law of the radius
    of a uniform point of the ball, ``P(||u|| <= s) = (s / r)^d``.) The scale must be one value
    per example, shared by all features and inputs; anything else raises ``ValueError``. Its
    certificate is :class:`~captum_certified.certify.CosineCertifier` (l2 perturbations).
    """

    name = "l2_ball"
    certified_norms = ("l2",)
    native_norm = "l2"
    joint = True

    def sample_unit(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device,
    ) -> Tensor:
        shape = tuple(shape)
        rows = shape[0]
        d = int(torch.Size(shape[1:]).numel())
        g = torch.randn((rows, d), generator=generator, dtype=dtype, device=device)
        u = torch.rand((rows,), generator=generator, dtype=torch.float64, device=device)
        g64 = g.to(torch.float64)
        norm = g64.norm(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
        radius = u.pow(1.0 / d).unsqueeze(1) if d > 0 else u.unsqueeze(1)
        return (g64 / norm * radius).to(dtype).reshape(shape)

    def sample(
        self,
        shapes: Sequence[Sequence[int]],
        scales: Sequence[Tensor],
        *,
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device,
    ) -> tuple[Tensor, ...]:
        row_scale = check_ball_scales(shapes, scales)
        parts = self.sample_joint(shapes, generator=generator, dtype=dtype, device=device)
        # one scale per row for all inputs: the concatenated noise is exactly a ball
        row = row_scale.to(device=device, dtype=dtype)
        return tuple(p * row.reshape((-1,) + (1,) * (p.dim() - 1)) for p in parts)
