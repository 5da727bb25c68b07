"""The one parser of l_p norm names, and radius conversion between norms.

Captum spells norms ``"L2"`` and ``"Linf"`` (``captum.robust.PGD``); that is the canonical
spelling here too. Names are case-insensitive, so ``"l2"`` and ``"L2"`` are the same name.
"""

from __future__ import annotations

import math
from numbers import Real

from torch import Tensor

from captum_certified._utils.validation import check_feature_count, check_radius


def parse_norm(norm: str | float | int) -> float:
    r"""The exponent ``p`` in ``[1, inf]`` of an l_p norm.

    Accepts Captum's ``"L1"``, ``"L2"``, ``"Linf"`` in any case (``"l2"`` is ``"L2"``), also
    ``"inf"`` and ``"l_inf"``, any ``"Lp"`` string such as ``"l3.5"``, or a number ``p >= 1``
    (``math.inf`` for the max norm).

    Args:
        norm (str, float or int): The norm.

    Returns:
        float: ``p``.

    Examples::

        >>> parse_norm("Linf") == parse_norm("linf") == parse_norm(float("inf"))
        True
        >>> parse_norm("L2")
        2.0
    """
    if isinstance(norm, bool):
        raise TypeError("`norm` must be a string such as 'L2' or a number >= 1, got bool")
    if isinstance(norm, str):
        key = norm.strip().lower().replace("_", "")
        if key in ("linf", "inf", "l∞", "max"):
            return math.inf
        if key.startswith("l"):
            key = key[1:]
        try:
            p = float(key)
        except ValueError:
            raise ValueError(
                f"`norm` must be 'L1', 'L2', 'Linf', 'L<p>' or a number >= 1, got {norm!r}"
            ) from None
    elif isinstance(norm, Real):
        p = float(norm)
    else:
        raise TypeError(f"`norm` must be a string or a number, got {type(norm).__name__}")
    if math.isnan(p) or p < 1.0:
        raise ValueError(f"`norm` must be an l_p norm with p >= 1, got {norm!r}")
    return p


def norm_name(p: float) -> str:
    """Lower-case name of the l_p norm (``"l1"``, ``"l2"``, ``"linf"``, ``"l3.5"``)."""
    if math.isinf(p):
        return "linf"
    return f"l{int(p)}" if p == int(p) else f"l{p:g}"


def convert_radius(
    radius: Tensor | float,
    from_norm: str | float,
    to_norm: str | float,
    num_features: int | None = None,
) -> Tensor:
    r"""Largest ``||delta||_q`` over all ``||delta||_p <= radius`` in ``R^N``.

    For ``q >= p`` it is ``radius`` (norms decrease in p); for ``q < p`` it is
    ``N^(1/q - 1/p) * radius`` (Hölder's inequality, attained by a constant vector). Examples:
    l_inf to l2 multiplies by ``sqrt(N)``, l_inf to l1 by ``N``, l2 to l1 by ``sqrt(N)``.

    Args:
        radius (Tensor or float): Radius in the ``from_norm``.
        from_norm (str or float): Norm of the perturbation set (``p``).
        to_norm (str or float): Norm wanted (``q``).
        num_features (int, optional): ``N``, the number of perturbed input features; needed
                    only when ``q < p``. Default: None

    Returns:
        Tensor: float64 radius in ``to_norm``.

    Examples::

        >>> round(convert_radius(1 / 255, "Linf", "L2", 150528).item(), 4)
        1.5215
    """
    radius = check_radius(radius)
    p, q = parse_norm(from_norm), parse_norm(to_norm)
    if q >= p:
        return radius
    if num_features is None:
        raise ValueError(
            f"converting an {norm_name(p)} radius to {norm_name(q)} needs `num_features` "
            "(the number of perturbed input features)"
        )
    num_features = check_feature_count(num_features, "num_features")
    inv_p = 0.0 if math.isinf(p) else 1.0 / p
    return radius * float(num_features) ** (1.0 / q - inv_p)
