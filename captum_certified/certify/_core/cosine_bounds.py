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

from captum_certified._utils.validation import (
    check_positive_float,
    check_positive_int,
    check_probability,
    check_radius,
)

# ------------------------------------------------------------------------------------------------
# Argument checks
# ------------------------------------------------------------------------------------------------


def check_scale(r: Any, name: str = "r") -> Tensor:
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


def check_cosine(value: Any, name: str = "min_cosine") -> float:
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


def ball_nonoverlap_ratio(ratio: Tensor, d: int) -> Tensor:
    """``1 - V_cap/V`` as a function of ``ratio = t / r`` (float64 tensor, ``>= 0``)."""
    from scipy import special  # imported on first use (start-up time)

    rho = ratio.numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.minimum(np.square(rho) / 4.0, 1.0)
        out = special.betainc(0.5, (d + 1) / 2.0, s)
    out = np.where(rho >= 2.0, 1.0, out)
    return torch.from_numpy(np.asarray(out, dtype=np.float64))


def ball_inverse(beta: Tensor, d: int) -> Tensor:
    """Largest ``t / r`` with ``1 - V_cap/V <= beta`` (``inf`` where ``beta >= 1``)."""
    from scipy import special

    b = beta.numpy()
    with np.errstate(invalid="ignore"):
        s = special.betaincinv(0.5, (d + 1) / 2.0, np.clip(b, 0.0, 1.0))
    rho = 2.0 * np.sqrt(s)
    rho = np.where(b <= 0, 0.0, np.where(b >= 1, np.inf, rho))
    return torch.from_numpy(np.asarray(rho, dtype=np.float64))


def cube_nonoverlap_ratio(ratio: Tensor, d: int) -> Tensor:
    """``1 - (1 - ratio/2)^d`` for ``ratio = eps / r < 2``, else 1 (computed without cancelling)."""
    half = (ratio / 2.0).clamp(max=1.0)
    out = -torch.expm1(d * torch.log1p(-half))
    return torch.where(ratio >= 2.0, torch.ones_like(out), out)


def cube_inverse(beta: Tensor, d: int) -> Tensor:
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
    r_ = check_scale(r, "r")
    return ball_nonoverlap_ratio(t_ / r_, check_positive_int(d, "d"))


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
    r_ = check_scale(r, "r")
    return 2.0 * m * cube_nonoverlap_ratio(eps_ / r_, check_positive_int(d, "d"))


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
