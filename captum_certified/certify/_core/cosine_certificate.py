"""Cosine certificates of uniformly smoothed, norm-bounded maps (the rule: ``cosine_bounds``)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.validation import (
    check_positive_float,
    check_positive_int,
    check_probability,
)
from captum_certified.certify._core.certificate import Certificate
from captum_certified.certify._core.cosine_bounds import (
    ball_inverse,
    ball_nonoverlap_ratio,
    check_cosine,
    check_scale,
    cube_inverse,
    cube_nonoverlap_ratio,
    mcdiarmid_error,
)
from captum_certified.noise import (
    NoiseDistribution,
    resolve_noise,
)

_NUDGE_STEPS = 80


class CosineCertificate(Certificate):
    r"""Certified cosine similarity of a uniform l2-ball smoothed, norm-bounded map.

    **Guarantee.** Let ``hbar(x) = E h(x + u)``, ``u`` uniform on the l2 ball of radius ``r``
    (``scale``) in ``R^d`` (``input_dim``), with ``||h||_2 <= M`` (``norm_bound``). With
    probability at least ``1 - alpha`` over the Monte-Carlo samples, simultaneously for every
    query, ``cos(hbar(x), hbar(x + delta)) >= cosine_lower_bound(radius)`` for all
    ``||delta||_2 <= radius``. It speaks about the expected maps; nothing is sampled at
    ``x + delta``.

    **Rule.** ``A_lo = ||hhat||_2 - (M / sqrt(n)) (1 + sqrt(2 ln(1/alpha)))`` (McDiarmid, see
    :func:`mcdiarmid_error`) bounds ``||hbar(x)||_2`` from below; ``Delta(t) = 2M (1 -
    I_{1 - t^2/(4r^2)}((d+1)/2, 1/2))`` for ``t < 2r`` (``2M`` otherwise, see
    :func:`ball_difference_bound`) bounds ``||hbar(x) - hbar(x + delta)||_2``; the bound is
    ``sqrt(1 - Delta(t)^2 / A_lo^2)`` where ``Delta(t) < A_lo`` and **0 otherwise: 0 means
    nothing is certified** (not even that the maps are less than 90 degrees apart). Where
    ``A_lo <= 0`` the certificate is vacuous: every cosine bound is 0 and every certified radius
    0. Never NaN.

    The bound scales as ``Delta ~ 0.8 M t sqrt(d) / r`` for large ``d``: a useful certificate
    needs ``r >> t sqrt(d)``.

    Built by :class:`CosineCertifier`; can also be built directly from ``||hhat||``.

    Args:
        estimate_norm (Tensor): ``||hhat(x)||_2`` per example, shape ``(bsz,)``.
        scale (Tensor): Smoothing radius ``r`` per example, shape ``(bsz,)``.
        input_dim (int): ``d``, number of input features the noise is drawn over.
        norm_bound (float): ``M``.
        n (int): Number of samples behind ``estimate_norm``.
        alpha (float): Failure probability of the Monte-Carlo bound.
        mc_error (float, optional): Override of the Monte-Carlo error subtracted from
                    ``estimate_norm`` (0 treats the estimate as exact). Default: None (McDiarmid)
        norm_tolerance (float, optional): Relative slack of the checked norm bound; the bounds
                    use ``M (1 + norm_tolerance)``. Default: 0.0
        noise (NoiseDistribution or str, optional): The noise (or its name).
                    Default: "l2_ball"
        num_features (int, optional): Features of the map (default ``input_dim``).

    Attributes:
        estimate_norm (Tensor): ``||hhat(x)||_2``, ``(bsz,)`` float64.
        norm_lower (Tensor): ``A_lo``, clamped at 0, ``(bsz,)`` float64.
        mc_error (float): The Monte-Carlo error subtracted.
        norm_bound (float): ``M`` as declared by the transform.
        norm_tolerance (float): See above.
    """

    _norm = "l2"
    _default_noise = "l2_ball"

    def __init__(
        self,
        estimate_norm: Tensor,
        *,
        scale: Tensor,
        input_dim: int,
        norm_bound: float,
        n: int,
        alpha: float,
        mc_error: float | None = None,
        norm_tolerance: float = 0.0,
        noise: NoiseDistribution | None = None,
        num_features: int | None = None,
    ) -> None:
        input_dim = check_positive_int(input_dim, "input_dim")
        norm_bound = check_positive_float(norm_bound, "norm_bound")
        alpha = check_probability(alpha, "alpha")
        if norm_tolerance < 0:
            raise ValueError(f"`norm_tolerance` must be >= 0, got {norm_tolerance}")
        self.norm_bound = norm_bound
        self.norm_tolerance = float(norm_tolerance)
        self._m = norm_bound * (1.0 + self.norm_tolerance)
        if mc_error is None:
            mc_error = mcdiarmid_error(n, alpha, self._m)
        if mc_error < 0 or math.isnan(mc_error):
            raise ValueError(f"`mc_error` must be >= 0, got {mc_error}")
        estimate_norm = estimate_norm.detach().to(device="cpu", dtype=torch.float64).reshape(-1)
        scale = check_scale(scale, "scale").reshape(-1).expand(estimate_norm.shape[0])
        super().__init__(
            noise=resolve_noise(self._default_noise) if noise is None else noise,
            norm=self._norm,
            scale=scale.clone(),
            n=n,
            alpha=alpha,
            bound="mcdiarmid",
            num_features=num_features if num_features is not None else input_dim,
        )
        self._input_dim = input_dim
        self.mc_error = float(mc_error)
        self.estimate_norm = estimate_norm
        self.norm_lower = (estimate_norm - self.mc_error).clamp(min=0.0)

    # -- geometry (overridden by the cube certificate) ----------------------------------------

    @property
    def input_dim(self) -> int:
        """``d``, the number of input features the noise is drawn over (read-only)."""
        return self._input_dim

    def _nonoverlap(self, ratio: Tensor) -> Tensor:
        return ball_nonoverlap_ratio(ratio, self.input_dim)

    def _inverse(self, beta: Tensor) -> Tensor:
        return ball_inverse(beta, self.input_dim)

    # -- queries -------------------------------------------------------------------------------

    @property
    def smoothing_radius(self) -> Tensor:
        """The smoothing radius ``r`` per example (same as ``scale``)."""
        return self.scale

    def _delta(self, radius: Tensor) -> Tensor:
        return 2.0 * self._m * self._nonoverlap(radius / self.scale)

    def difference_bound(self, radius: float | Tensor) -> Tensor:
        r"""``Delta``: certified bound on ``||hbar(x) - hbar(x + delta)||_2`` within ``radius``.

        Args:
            radius (float or Tensor): Perturbation size ``>= 0``; scalar or ``(bsz,)``.

        Returns:
            Tensor: ``(bsz,)`` float64 (no Monte-Carlo error involved).
        """
        return self._delta(self._per_example(radius))

    def cosine_lower_bound(self, radius: float | Tensor) -> Tensor:
        r"""Certified lower bound on ``cos(hbar(x), hbar(x + delta))`` for all ``delta`` in reach.

        It holds for every ``delta`` of size at most ``radius``.

        Args:
            radius (float or Tensor): Perturbation size ``>= 0`` (l2 norm for the ball, l_inf
                        for the cube); a scalar or a ``(bsz,)`` tensor.

        Returns:
            Tensor: ``(bsz,)`` float64 in [0, 1]; 0 means nothing is certified.

        Examples::

            >>> cert.cosine_lower_bound(radius=0.05)
            tensor([0.778, 0.786, 0.785, 0.779], dtype=torch.float64)
        """
        return self._cosine(self._delta(self._per_example(radius)))

    def _cosine(self, delta: Tensor) -> Tensor:
        a = self.norm_lower
        ok = delta < a
        ratio = torch.where(ok, delta / torch.where(ok, a, 1.0), 1.0)
        return torch.where(ok, (1.0 - ratio.square()).clamp(min=0.0).sqrt(), 0.0)

    def _beta(self, min_cosine: float) -> Tensor:
        """Largest certifiable volume fraction ``A_lo sqrt(1 - c^2) / (2M)`` per example."""
        return self.norm_lower * math.sqrt(1.0 - min_cosine**2) / (2.0 * self._m)

    def _fraction_ok(self, t: Tensor, r: Tensor, beta: Tensor, min_cosine: float) -> Tensor:
        # checked the way the queries compute it, so that the returned radius really gives
        # cosine_lower_bound >= min_cosine in floating point
        delta = 2.0 * self._m * self._nonoverlap(t / r)
        ok = delta <= 2.0 * self._m * beta
        if min_cosine > 0:
            ok = ok & (self._cosine(delta) >= min_cosine)
        return ok | (t == 0)

    def certified_radius(self, min_cosine: float) -> Tensor:
        r"""Largest perturbation size at which a cosine of at least ``min_cosine`` is certified.

        ``t_max = r * rho``, with ``rho`` solving ``Delta(rho r) = A_lo sqrt(1 - c^2)`` (for
        the ball ``rho = 2 sqrt(s)``, ``s = betaincinv(1/2, (d+1)/2, beta)``,
        ``beta = A_lo sqrt(1 - c^2) / (2M)``), rounded down so that
        ``cosine_lower_bound(t_max) >= min_cosine`` holds in floating point. 0 where nothing is
        certified (``A_lo = 0``); ``inf`` if every perturbation is covered.

        Args:
            min_cosine (float): Target ``c`` in [0, 1); ``c = 0`` certifies "less than 90
                        degrees apart" only in the limit (at ``t_max`` itself the bound is 0).

        Returns:
            Tensor: ``(bsz,)`` float64.
        """
        c = check_cosine(min_cosine)
        beta = self._beta(c)
        t = self.scale * self._inverse(beta)
        t = torch.where(torch.isnan(t), 0.0, t)
        return self._nudge(t, lambda v: self._fraction_ok(v, self.scale, beta, c), down=True)

    def min_smoothing_radius(self, radius: float | Tensor, min_cosine: float) -> Tensor:
        r"""Smallest smoothing radius at which ``radius`` would be certified at ``min_cosine``.

        The inverse formulation: ``r_min = t / rho`` with ``rho`` as in
        :meth:`certified_radius`. It holds the measured ``A_lo`` fixed, but ``A_lo`` itself
        depends on the smoothing radius, so this is a *planning* quantity (which radius to try
        next), not a certificate for the run that produced this object; where ``r_min <= r``
        the present certificate already covers ``radius``. ``inf`` where ``A_lo = 0``.

        Args:
            radius (float or Tensor): Perturbation size ``t >= 0``; scalar or ``(bsz,)``.
            min_cosine (float): Target cosine in [0, 1).

        Returns:
            Tensor: ``(bsz,)`` float64.
        """
        t = self._per_example(radius)
        c = check_cosine(min_cosine)
        beta = self._beta(c)
        rho = self._inverse(beta)
        r_min = torch.where(t == 0, 0.0, t / rho)
        r_min = torch.where(torch.isnan(r_min), math.inf, r_min)

        def ok(r: Tensor) -> Tensor:
            fine = (r == 0) | torch.isinf(r)
            return fine | self._fraction_ok(t, torch.where(fine, 1.0, r), beta, c)

        return self._nudge(r_min, ok, down=False)

    @staticmethod
    def _nudge(values: Tensor, ok: Any, down: bool) -> Tensor:
        """Move values (monotonically) until ``ok`` holds, compensating inverse round-off."""
        for step in range(_NUDGE_STEPS):
            bad = ~ok(values)
            if not bad.any():
                return values
            rel = 2.0 ** (-45 + step)
            factor = (1.0 - rel) if down else (1.0 + rel)
            values = torch.where(bad, values * max(factor, 0.0), values)
        bad = ~ok(values)
        return torch.where(bad, 0.0 if down else math.inf, values)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(batch_size={self.batch_size}, input_dim={self.input_dim}, "
            f"noise={self.noise!r}, norm={self.norm!r}, n={self.n}, alpha={self.alpha}, "
            f"norm_bound={self.norm_bound}, mc_error={self.mc_error:.4g})"
        )


class CubeCosineCertificate(CosineCertificate):
    r"""Certified cosine similarity under l_inf perturbations for uniform cube smoothing.

    Same statement and rule as :class:`CosineCertificate`, with ``u ~ U[-r, r]^d`` (Uniform
    Gradient's noise), ``radius`` an l_inf size ``eps`` and
    ``Delta(eps) = 2M (1 - (1 - eps/(2r))^d)`` (:func:`cube_difference_bound`).

    **It is vacuous at the radii used in practice**: at ``d = 3072``, ``r = 4/255`` and
    ``eps = 1/255``, ``Delta = 2M`` and the cosine bound is 0. Uniform Gradient at such radii
    is an empirical defence, not a certified one; a non-trivial bound needs ``r`` of the order
    of ``d * eps``.
    """

    _norm = "linf"
    _default_noise = "cube"

    def _nonoverlap(self, ratio: Tensor) -> Tensor:
        return cube_nonoverlap_ratio(ratio, self.input_dim)

    def _inverse(self, beta: Tensor) -> Tensor:
        return cube_inverse(beta, self.input_dim)
