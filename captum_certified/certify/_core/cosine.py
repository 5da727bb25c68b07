r"""Certified cosine similarity of uniformly smoothed, norm-bounded attribution maps.

Setting (our derivation, :doc:`/certificates` section 9): per-sample maps ``h`` with
``||h(z)||_2 <= M``, smoothed over uniform noise ``u`` on the l2 ball ``B(0, r)`` in ``R^d`` (or
on the cube ``[-r, r]^d``): ``hbar(x) = E h(x + u)``. Then
``hbar(x) - hbar(x + delta) = (1/V) [int_{B(x) \ B(x+delta)} h - int_{B(x+delta) \ B(x)} h]``,
each region has volume ``V - V_cap``, so

    ||hbar(x) - hbar(x + delta)||_2 <= Delta = 2 M (1 - V_cap / V).

For the ball and ``||delta||_2 = t < 2r``, ``V_cap / V = I_{1 - t^2/(4r^2)}((d+1)/2, 1/2)``;
for the cube and ``||delta||_inf <= eps``, ``V_cap / V >= (1 - eps/(2r))^d``. If ``Delta < A =
||hbar(x)||_2``, the angle between ``hbar(x)`` and ``hbar(x + delta)`` is at most
``asin(Delta / A)`` (the tangent case), so ``cos >= sqrt(1 - Delta^2 / A^2)``.

``A`` is estimated from ``n`` samples: the map ``hhat -> ||hhat - hbar||`` has bounded
differences ``2M/n`` and ``E ||hhat - hbar|| <= M / sqrt(n)``, so by McDiarmid, with probability
at least ``1 - alpha``, ``||hhat - hbar|| <= (M / sqrt(n)) (1 + sqrt(2 ln(1/alpha)))`` and
``A >= ||hhat|| - that``.

The volume term ``1 - I_{1-s}((d+1)/2, 1/2)`` is evaluated as ``I_s(1/2, (d+1)/2)``
(``s = t^2 / (4 r^2)``, the symmetry ``1 - I_x(a, b) = I_{1-x}(b, a)``), which does not cancel
when ``t << r``, even at ``d = 150528``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from torch import Tensor

from captum_certified._utils.statistics import StreamingMoments
from captum_certified._utils.validation import (
    check_positive_float,
    check_positive_int,
    check_probability,
    check_radius,
)
from captum_certified.certify._core.certificate import Certificate, noise_object
from captum_certified.certify._core.certifier import Certifier
from captum_certified.noise import (
    NoiseDistribution,
    UniformBallNoise,
    UniformCubeNoise,
    resolve_noise,
)
from captum_certified.transforms import AttributionTransform

#: Relative tolerance on the declared norm bound when checking sampled maps: a row passes if
#: ``||h||_2 <= M (1 + NORM_TOLERANCE)``. It absorbs float rounding of third-party transforms
#: (the package's own keep ``||h|| <= M`` exactly); to stay sound the certificate then uses
#: ``M (1 + NORM_TOLERANCE)`` in all its bounds.
NORM_TOLERANCE = 1e-6

_NUDGE_STEPS = 80


# ------------------------------------------------------------------------------------------------
# Argument checks
# ------------------------------------------------------------------------------------------------


def _check_scale(r: Any, name: str = "r") -> Tensor:
    if isinstance(r, bool):
        raise TypeError(f"`{name}` must be a number or a tensor, got bool")
    if isinstance(r, Real):
        r = torch.tensor(float(r), dtype=torch.float64)
    elif isinstance(r, Tensor):
        r = r.detach().to(device="cpu", dtype=torch.float64)
    else:
        raise TypeError(f"`{name}` must be a number or a tensor, got {type(r).__name__}")
    if not torch.isfinite(r).all() or (r <= 0).any():
        raise ValueError(f"`{name}` must be finite and > 0")
    return r


def _check_cosine(value: Any, name: str = "min_cosine") -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"`{name}` must be a float in [0, 1), got {type(value).__name__}")
    value = float(value)
    if not 0.0 <= value < 1.0:  # also rejects NaN
        raise ValueError(f"`{name}` must be in [0, 1), got {value}")
    return value


def _as_cpu(t: Any, name: str) -> Tensor:
    return check_radius(t, name).cpu()


# ------------------------------------------------------------------------------------------------
# Volume terms and the Monte-Carlo bound
# ------------------------------------------------------------------------------------------------


def _ball_nonoverlap_ratio(ratio: Tensor, d: int) -> Tensor:
    """``1 - V_cap/V`` as a function of ``ratio = t / r`` (float64 tensor, ``>= 0``)."""
    from scipy import special  # imported on first use (start-up time)

    rho = ratio.numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.minimum(np.square(rho) / 4.0, 1.0)
        out = special.betainc(0.5, (d + 1) / 2.0, s)
    out = np.where(rho >= 2.0, 1.0, out)
    return torch.from_numpy(np.asarray(out, dtype=np.float64))


def _ball_inverse(beta: Tensor, d: int) -> Tensor:
    """Largest ``t / r`` with ``1 - V_cap/V <= beta`` (``inf`` where ``beta >= 1``)."""
    from scipy import special

    b = beta.numpy()
    with np.errstate(invalid="ignore"):
        s = special.betaincinv(0.5, (d + 1) / 2.0, np.clip(b, 0.0, 1.0))
    rho = 2.0 * np.sqrt(s)
    rho = np.where(b <= 0, 0.0, np.where(b >= 1, np.inf, rho))
    return torch.from_numpy(np.asarray(rho, dtype=np.float64))


def _cube_nonoverlap_ratio(ratio: Tensor, d: int) -> Tensor:
    """``1 - (1 - ratio/2)^d`` for ``ratio = eps / r < 2``, else 1 (computed without cancelling)."""
    half = (ratio / 2.0).clamp(max=1.0)
    out = -torch.expm1(d * torch.log1p(-half))
    return torch.where(ratio >= 2.0, torch.ones_like(out), out)


def _cube_inverse(beta: Tensor, d: int) -> Tensor:
    """Largest ``eps / r`` with ``1 - (1 - eps/(2r))^d <= beta``."""
    b = beta.clamp(0.0, 1.0)
    rho = -2.0 * torch.expm1(torch.log1p(-b) / d)
    return torch.where(beta <= 0, 0.0, torch.where(beta >= 1, math.inf, rho))


def ball_nonoverlap(t: float | Tensor, r: float | Tensor, d: int) -> Tensor:
    r"""Fraction of the ball ``B(0, r)`` in ``R^d`` outside ``B(delta, r)``, ``||delta||_2 = t``.

    ``1 - V_cap / V = I_{t^2/(4r^2)}(1/2, (d+1)/2)`` for ``t < 2r`` and 1 for ``t >= 2r``,
    computed in float64 with ``scipy.special.betainc`` in the non-cancelling form (accurate for
    ``t << r`` at any ``d``; for large ``d`` it approaches ``2 Phi(t sqrt(d) / (2r)) - 1``).

    Args:
        t (float or Tensor): Centre distance ``>= 0``.
        r (float or Tensor): Ball radius ``> 0`` (broadcast against ``t``).
        d (int): Dimension.

    Returns:
        Tensor: float64, the broadcast shape of ``t`` and ``r``.
    """
    t_ = _as_cpu(t, "t")
    r_ = _check_scale(r, "r")
    return _ball_nonoverlap_ratio(t_ / r_, check_positive_int(d, "d"))


def ball_difference_bound(
    t: float | Tensor, r: float | Tensor, d: int, norm_bound: float = 1.0
) -> Tensor:
    r"""``Delta(t) = 2M (1 - V_cap/V)``, bound on ``||hbar(x) - hbar(x + delta)||_2`` (l2 ball).

    The bound holds for every ``||delta||_2 <= t``.

    For uniform l2-ball smoothing of radius ``r`` in ``R^d`` of maps with ``||h||_2 <= M``; it
    is ``2M`` for ``t >= 2r`` and increases with ``t / r``.

    Args:
        t (float or Tensor): Perturbation l2 norm ``>= 0``.
        r (float or Tensor): Smoothing radius ``> 0``.
        d (int): Number of input features.
        norm_bound (float, optional): ``M``. Default: 1.0

    Returns:
        Tensor: float64 bound, broadcast shape of ``t`` and ``r``.
    """
    m = check_positive_float(norm_bound, "norm_bound")
    return 2.0 * m * ball_nonoverlap(t, r, d)


def cube_difference_bound(
    eps: float | Tensor, r: float | Tensor, d: int, norm_bound: float = 1.0
) -> Tensor:
    r"""``2M (1 - (1 - eps/(2r))^d)``, bound on ``||hbar(x) - hbar(x + delta)||_2`` (cube).

    The bound holds for every ``||delta||_inf <= eps``.

    For uniform cube smoothing (``u ~ U[-r, r]^d``, Uniform Gradient) of maps with
    ``||h||_2 <= M``; ``2M`` for ``eps >= 2r``. It is non-trivial only when ``r`` is of the
    order of ``d * eps``: at ``d = 3072``, ``r = 4/255``, ``eps = 1/255`` it is
    ``2M (1 - (7/8)^3072) = 2M`` to double precision, i.e. vacuous.

    Args:
        eps (float or Tensor): l_inf perturbation size ``>= 0``.
        r (float or Tensor): Cube half-width ``> 0``.
        d (int): Number of input features.
        norm_bound (float, optional): ``M``. Default: 1.0

    Returns:
        Tensor: float64 bound, broadcast shape of ``eps`` and ``r``.
    """
    m = check_positive_float(norm_bound, "norm_bound")
    eps_ = _as_cpu(eps, "eps")
    r_ = _check_scale(r, "r")
    return 2.0 * m * _cube_nonoverlap_ratio(eps_ / r_, check_positive_int(d, "d"))


def mcdiarmid_error(n: int, alpha: float, norm_bound: float = 1.0) -> float:
    r"""Monte-Carlo error of the mean of ``n`` i.i.d. maps with ``||h||_2 <= M``, in l2 norm.

    With probability at least ``1 - alpha``,
    ``||hhat - hbar||_2 <= (M / sqrt(n)) (1 + sqrt(2 ln(1/alpha)))`` (McDiarmid on the
    ``2M/n``-bounded-difference function ``||hhat - hbar||``, whose mean is at most
    ``M / sqrt(n)``). Independent of the dimension. ``alpha = 0.001``: 0.149 for ``n = 1000``,
    0.047 for ``n = 10000`` (``M = 1``).

    Args:
        n (int): Number of samples.
        alpha (float): Failure probability in (0, 1).
        norm_bound (float, optional): ``M``. Default: 1.0

    Returns:
        float: The error bound.
    """
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(f"`n` must be a positive int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"`n` must be >= 1, got {n}")
    alpha = check_probability(alpha, "alpha")
    m = check_positive_float(norm_bound, "norm_bound")
    return m / math.sqrt(n) * (1.0 + math.sqrt(2.0 * math.log(1.0 / alpha)))


# ------------------------------------------------------------------------------------------------
# Certificates
# ------------------------------------------------------------------------------------------------


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
        scale = _check_scale(scale, "scale").reshape(-1).expand(estimate_norm.shape[0])
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
        return _ball_nonoverlap_ratio(ratio, self.input_dim)

    def _inverse(self, beta: Tensor) -> Tensor:
        return _ball_inverse(beta, self.input_dim)

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
        c = _check_cosine(min_cosine)
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
        c = _check_cosine(min_cosine)
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
        return _cube_nonoverlap_ratio(ratio, self.input_dim)

    def _inverse(self, beta: Tensor) -> Tensor:
        return _cube_inverse(beta, self.input_dim)


# ------------------------------------------------------------------------------------------------
# Certifiers
# ------------------------------------------------------------------------------------------------


class CosineCertifier(Certifier):
    r"""Builds a :class:`CosineCertificate` for uniform l2-ball smoothing.

    Accepts only transforms declaring a finite ``norm_bound`` ``M`` (e.g.
    :class:`~captum_certified.transforms.UnitL2Normalize`,
    :class:`~captum_certified.transforms.L2NormClip`) and checks every sampled chunk:
    each row must satisfy ``||h||_2 <= M (1 + NORM_TOLERANCE)``, ``NORM_TOLERANCE = 1e-6``
    (float rounding of third-party transforms; the certificate then uses the slightly larger
    bound). The volume term needs the number ``d`` of *input* features the noise is drawn over
    (not the map's size, which differs for layer attributions): the engine passes it as
    ``num_input_features``. ``input_dim`` can only restate it: a value that disagrees with the
    engine's count is refused, since a smaller ``d`` would certify a larger radius than is true.

    Args:
        input_dim (int, optional): Expected ``d``, checked against the engine's count.
                    Default: None (the engine's ``num_input_features``)
    """

    supported_noises: tuple[type[NoiseDistribution], ...] = (UniformBallNoise,)
    certificate_class: type[CosineCertificate] = CosineCertificate

    def __init__(self, *, input_dim: int | None = None) -> None:
        self.input_dim = None if input_dim is None else check_positive_int(input_dim, "input_dim")

    def check_transform(self, transform: AttributionTransform) -> None:
        """Require a transform with a declared finite l2 norm bound ``norm_bound``."""
        m = getattr(transform, "norm_bound", None)
        if (
            isinstance(m, bool)
            or not isinstance(m, Real)
            or not math.isfinite(float(m))
            or float(m) <= 0
        ):
            raise ValueError(
                "`return_certificate=True` with uniform noise needs a transform that bounds "
                "each map's l2 norm and declares it as `norm_bound` (UnitL2Normalize or "
                f"L2NormClip); {transform!r} declares none"
            )

    def check_samples(self, maps: Tensor, transform: AttributionTransform) -> None:
        """Check every row of a ``(N, d)`` chunk: finite and ``||h||_2 <= M (1 + 1e-6)``."""
        m = float(transform.norm_bound)  # type: ignore[attr-defined]  # see check_transform
        if not maps.numel():
            return
        norms = maps.detach().to(torch.float64).norm(dim=1)
        if not torch.isfinite(norms).all():
            raise ValueError(f"transform {transform!r} produced NaN or infinite values")
        worst = norms.max().item()
        if worst > m * (1.0 + NORM_TOLERANCE):
            raise ValueError(
                f"transform {transform!r} produced a map of l2 norm {worst:.6g} above its "
                f"declared norm_bound {m}; the cosine certificate needs ||h||_2 <= norm_bound"
            )

    def certify(
        self,
        statistics: StreamingMoments,
        *,
        scale: Tensor,
        noise: NoiseDistribution,
        alpha: float,
        bound: str | None,
        transform: AttributionTransform,
        num_input_features: int,
    ) -> CosineCertificate:
        if bound not in (None, "mcdiarmid"):
            raise ValueError(
                f"`bound` must be None or 'mcdiarmid' for the cosine certificate, got {bound!r}"
            )
        noise = noise_object(noise)
        self.check_noise(noise)
        self.check_transform(transform)
        input_dim = check_positive_int(num_input_features, "num_input_features")
        if self.input_dim is not None and self.input_dim != input_dim:
            raise ValueError(
                f"`input_dim`={self.input_dim} disagrees with the {input_dim} input features the "
                "noise perturbs; the certificate must use the true count (omit `input_dim`)"
            )
        mean = statistics.mean
        return self.certificate_class(
            mean.norm(dim=1),
            scale=scale,
            input_dim=input_dim,
            norm_bound=float(transform.norm_bound),  # type: ignore[attr-defined]
            n=statistics.n,
            alpha=alpha,
            norm_tolerance=NORM_TOLERANCE,
            noise=noise,
            num_features=int(mean.shape[1]),
        )


class CubeCosineCertifier(CosineCertifier):
    r"""Builds a :class:`CubeCosineCertificate` (l_inf) for uniform cube smoothing.

    Same checks as :class:`CosineCertifier`. The certificate is vacuous at the small radii of
    the Uniform Gradient paper; it exists to say so with numbers.
    """

    supported_noises = (UniformCubeNoise,)
    certificate_class = CubeCosineCertificate
