"""Rényi-DP certified top-k overlap (Liu et al., Rényi-Robust-Smooth) with sampling error.

Per-coordinate Hölder bounds, the pairwise bound of Li et al., the Gaussian Phi rule, the exact
joint (water-filling) minimum, and the certifier/certificate pair used by
:class:`~captum_certified.attr.RenyiRobustSmooth`. All bounds are combined with a simultaneous
confidence band through the sorted pigeonhole rule (``paired_order_statistics``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from captum_certified._utils.validation import check_radius, resolve_count
from captum_certified.certify._core.certificate import Certificate
from captum_certified.certify._core.certifier import Certifier, confidence_band
from captum_certified.certify._core.laplace_bounds import laplace_icdf
from captum_certified.certify._core.rdp import (
    DEFAULT_ORDERS,
    RDP_NOISES,
    check_orders,
    convert_radius,
    norm_name,
    parse_norm,
    rdp_epsilon,
    rdp_orders,
)
from captum_certified.certify._core.statistics import StreamingMoments
from captum_certified.certify._core.topk_rule import paired_order_statistics
from captum_certified.noise import GaussianNoise, LaplaceNoise, NoiseDistribution
from captum_certified.transforms import AttributionTransform, RankRescale, TopKBinarize

METHODS = ("holder", "pairwise", "phi", "laplace", "best")

# Elements of one (rows, pairs, orders) intermediate; bounds memory at large d.
_CHUNK_ELEMENTS = 1 << 22


# ------------------------------------------------------------------------------------------------
# Bounds
# ------------------------------------------------------------------------------------------------


def holder_bounds(q: Tensor, epsilons: Tensor, orders: Tensor) -> tuple[Tensor, Tensor]:
    r"""Per-coordinate Hölder bounds on a [0, 1]-valued smoothed coordinate after a shift.

    If ``q = E h(x + eps)`` with ``h`` in [0, 1] and the noise laws at ``x`` and ``x'`` are
    within Rényi divergence ``epsilon_a`` in both directions for every order ``a``, then (the
    Bernoulli mechanism "output 1 with probability ``h``" is post-processing)::

        q' >= exp(-epsilon_a) * q^(a / (a - 1))        q' <= (exp(epsilon_a) * q)^((a - 1) / a)

    All orders hold at once, so the lower bound is the maximum over orders and the upper bound
    the minimum (capped at 1).

    Args:
        q (Tensor): Values in [0, 1], shape ``(bsz, m)``.
        epsilons (Tensor): ``epsilon_a`` per example and order, shape ``(bsz, A)``.
        orders (Tensor): Orders ``a > 1``, shape ``(A,)``.

    Returns:
        tuple[Tensor, Tensor]: ``(lower, upper)``, float64 of shape ``(bsz, m)``.

    Examples::

        >>> from captum_certified.certify import gaussian_rdp_epsilon, rdp_orders
        >>> a = rdp_orders()
        >>> lo, _ = holder_bounds(torch.tensor([[0.8]]), gaussian_rdp_epsilon(a, 0.3, 1.0), a)
        >>> round(lo.item(), 3)
        0.626
    """
    return _holder(q, epsilons, orders, "lower"), _holder(q, epsilons, orders, "upper")


def _holder(q: Tensor, epsilons: Tensor, orders: Tensor, side: str) -> Tensor:
    q = q.to(torch.float64).clamp(0.0, 1.0)
    orders = check_orders(orders).to(q.device)
    eps = epsilons.to(device=q.device, dtype=torch.float64)
    log_q = torch.log(q)  # -inf at 0: lower bound 0, upper bound 0
    out = torch.empty_like(q)
    for rows, cols in _chunks(q.shape[0], q.shape[1], orders.numel()):
        lq = log_q[rows, cols].unsqueeze(-1)
        e = eps[rows].unsqueeze(1)
        if side == "lower":
            out[rows, cols] = torch.exp((-e + orders / (orders - 1.0) * lq).amax(-1))
        else:
            log_hi = (orders - 1.0) / orders * (e + lq)
            # an infinite epsilon (infinite radius) constrains nothing, even where q = 0
            log_hi = torch.where(torch.isposinf(e), torch.zeros_like(log_hi), log_hi).amin(-1)
            out[rows, cols] = torch.exp(log_hi.clamp(max=0.0))
    return out


def pairwise_rdp_bound(p_a: Tensor | float, p_b: Tensor | float, orders: Tensor | float) -> Tensor:
    r"""Li et al.'s pairwise bound ``B_a(p_a, p_b) = min{D_a(Q || P) : Q_b >= Q_a}``.

    For entries ``p_a > p_b`` of a distribution ``P`` (``p_a + p_b <= 1``)::

        B_a = -log(1 - p_a - p_b + 2 M_(1-a)(p_a, p_b)),   M_s(x, y) = ((x^s + y^s) / 2)^(1/s)

    (the minimizer sets ``Q_a = Q_b`` and keeps the rest proportional to ``P``). The power mean
    is evaluated in log space, so tiny masses and large orders neither overflow nor round to a
    bound that is too large. Where ``p_a <= p_b`` the constraint already holds and ``B = 0``.
    ``B`` increases in ``p_a`` and decreases in ``p_b``.

    Args:
        p_a (Tensor or float): The larger mass.
        p_b (Tensor or float): The smaller mass (broadcast against ``p_a`` and ``orders``).
        orders (Tensor or float): Orders ``a > 1``.

    Returns:
        Tensor: float64 bound (broadcast shape).
    """
    p_a = torch.as_tensor(p_a, dtype=torch.float64)
    p_b = torch.as_tensor(p_b, dtype=torch.float64)
    a = torch.as_tensor(orders, dtype=torch.float64)
    if (p_a < 0).any() or (p_b < 0).any() or (p_a + p_b > 1 + 1e-12).any():
        raise ValueError("`p_a`, `p_b` must be non-negative masses with p_a + p_b <= 1")
    with torch.no_grad():
        la = torch.log(p_a) * (1.0 - a)  # +inf where p = 0
        lb = torch.log(p_b) * (1.0 - a)
        log_mean = (torch.logaddexp(la, lb) - math.log(2.0)) / (1.0 - a)
        gap = p_a + p_b - 2.0 * torch.exp(log_mean)
        value = -torch.log1p(-gap.clamp(min=0.0, max=1.0))
    return torch.where(p_a > p_b, value, torch.zeros_like(value))


def renyi_divergence(q: np.ndarray, p: np.ndarray, order: float) -> float:
    r"""``D_a(Q || P) = log(sum_i q_i^a p_i^(1-a)) / (a - 1)`` of two categorical laws (numpy).

    Args:
        q (ndarray): First distribution.
        p (ndarray): Second distribution.
        order (float): ``a > 1``.

    Returns:
        float: the divergence (``inf`` if ``q`` puts mass where ``p`` has none).
    """
    q = np.asarray(q, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, np.exp(order * np.log(q) + (1.0 - order) * np.log(p)), 0.0)
    return float(np.log(terms.sum()) / (order - 1.0))


def joint_rdp_bound(
    p_a, p_b, order: float, rest: float | None = None, return_minimizer: bool = False
):
    r"""Exact ``min{D_a(Q || P) : min_B Q >= max_A Q}`` by water-filling (numpy, one order).

    The joint bound of ALGORITHMS 2.4(c): if at least ``k0`` members ``A`` of the top-k were
    overtaken by ``k0`` outsiders ``B``, then every ``Q_b >= Q_a``. For a level ``t`` the
    optimum is ``Q_a = min(c p_a, t)``, ``Q_b = max(c p_b, t)`` and ``Q = c p`` on the rest,
    with ``c`` fixed by ``sum Q = 1`` (KKT); the value is convex in ``t`` and minimized by a
    golden-section search. **Do not** replace it by the "equalizing" shortcut that sets all
    ``2 k0`` entries equal: that value can exceed the true minimum (at ``a = 8``,
    ``P = (0.2, 0.2 | 0.19, 0.001 | 0.409)``: 0.8822 vs 0.5067) and is not a certificate.

    This function is exact but is not used by :class:`RDPTopKCertificate`: applying it with a
    confidence band also needs the worst-set and band-monotonicity arguments of ALGORITHMS
    2.4(c), which are only checked numerically.

    Args:
        p_a (array-like): Masses of ``A`` (they must fall to at most the level).
        p_b (array-like): Masses of ``B`` (they must rise to at least the level).
        order (float): Rényi order ``a > 1``.
        rest (float, optional): Mass of all other cells; None uses
                    ``1 - sum(p_a) - sum(p_b)``. Default: None
        return_minimizer (bool, optional): Also return the minimizing ``Q`` as one array
                    ``(Q_A, Q_B, Q_rest)`` (the rest merged into one cell; spread it in
                    proportion to ``P``). Default: False

    Returns:
        float: the minimum divergence (and the minimizer if ``return_minimizer``).
    """
    pa = np.asarray(p_a, dtype=np.float64).reshape(-1)
    pb = np.asarray(p_b, dtype=np.float64).reshape(-1)
    if order <= 1:
        raise ValueError("`order` must be > 1")
    r = 1.0 - pa.sum() - pb.sum() if rest is None else float(rest)
    if r < -1e-12 or (pa < 0).any() or (pb < 0).any():
        raise ValueError("masses must be non-negative and sum to at most 1")
    r = max(r, 0.0)
    p_all = np.concatenate([pa, pb, [r]])

    def total(c: np.ndarray | float, t: float) -> np.ndarray:
        c = np.asarray(c, dtype=np.float64)[..., None]
        return np.minimum(c * pa, t).sum(-1) + np.maximum(c * pb, t).sum(-1) + c[..., 0] * r

    def q_of(t: float) -> np.ndarray | None:
        # sum Q is piecewise linear and non-decreasing in c, with kinks at t / p: solve exactly
        if total(0.0, t) > 1.0:
            return None
        with np.errstate(divide="ignore"):
            kinks = np.concatenate([[0.0], t / pa[pa > 0], t / pb[pb > 0]])
        kinks = np.unique(kinks[np.isfinite(kinks)])
        values = total(kinks, t)
        above = np.flatnonzero(values >= 1.0)
        if above.size:
            j = int(above[0])
            if j == 0:
                c = kinks[0]
            else:
                c0, c1, v0, v1 = kinks[j - 1], kinks[j], values[j - 1], values[j]
                c = c0 + (1.0 - v0) * (c1 - c0) / (v1 - v0)
        else:
            slope = pb.sum() + r  # past the last kink only B and the rest grow
            if slope <= 0:
                return None
            c = kinks[-1] + (1.0 - values[-1]) / slope
        return np.concatenate([np.minimum(c * pa, t), np.maximum(c * pb, t), [c * r]])

    def value(t: float) -> float:
        q = q_of(t)
        if q is None:
            return math.inf
        return renyi_divergence(q / q.sum(), p_all, order)

    t_max = 1.0 / max(1, pb.size)
    lo, hi = 0.0, t_max
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f1, f2 = value(x1), value(x2)
    for _ in range(90):  # 0.618^90 ~ 1e-19 of the bracket
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - ratio * (hi - lo)
            f1 = value(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + ratio * (hi - lo)
            f2 = value(x2)
    best_t = min((f1, x1), (f2, x2), (value(0.0), 0.0), (value(t_max), t_max))[1]
    best = value(best_t)
    if not return_minimizer:
        return best
    q = q_of(best_t)
    return best, (None if q is None else q / q.sum())


def _chunks(rows: int, cols: int, depth: int):
    """Yield (row slice, col slice) blocks with at most ``_CHUNK_ELEMENTS`` * depth elements."""
    per_row = max(1, cols) * max(1, depth)
    if per_row <= _CHUNK_ELEMENTS:
        step = max(1, _CHUNK_ELEMENTS // per_row)
        for r in range(0, rows, step):
            yield slice(r, r + step), slice(None)
    else:
        col_step = max(1, _CHUNK_ELEMENTS // max(1, depth))
        for r in range(rows):
            for c in range(0, cols, col_step):
                yield slice(r, r + 1), slice(c, c + col_step)


# ------------------------------------------------------------------------------------------------
# Certificate
# ------------------------------------------------------------------------------------------------


class RDPTopKCertificate(Certificate):
    r"""Certified top-k overlap of a rank-rescaled smoothed map via Rényi-DP (any l_p norm).

    **Guarantee.** Let ``q(x) = E s(x + eps)`` be the expected smoothed map (``s`` the
    per-sample map, values in [0, 1]; for Rényi-Robust-Smooth ``s_i = v_rank(i) / v_1``) and
    ``P(x) = q(x) / S`` with ``S = ||v||_1 / v_1`` (a distribution over features). With
    probability at least ``1 - alpha`` over the Monte-Carlo samples, simultaneously for every
    ``k``, radius, norm and method queried,
    ``|TopK(q(x)) ∩ TopK(q(x + delta))| >= topk_overlap(k, radius, norm) * K`` for all
    ``||delta||_p <= radius``. It speaks about the expected maps and holds for every
    tie-breaking.

    **How.** The noise laws at ``x`` and ``x + delta`` are within Rényi divergence
    ``epsilon_a(radius)`` (:func:`~captum_certified.certify.rdp_epsilon`; norms other than the
    noise's own are converted, which needs ``num_input_features``), so by post-processing
    ``D_a(P(x+delta) || P(x))`` and ``D_a(P(x) || P(x+delta))`` are at most ``epsilon_a`` for every
    order ``a`` of the grid at once (the grid is fixed in advance and costs no failure
    probability). With the band ``L <= q <= U`` sorted separately (``L_(i)``, ``U_(j)``), rank
    ``i <= K`` of the top-K is certified at ``radius`` when

    - ``"holder"``: ``max_a exp(-eps_a) L_(i)^(a/(a-1)) > min_a (exp(eps_a) U_(2K-i+1))^((a-1)/a)``
      (:func:`holder_bounds`; any [0, 1]-valued map);
    - ``"pairwise"``: ``B_a(L'_(i), U_(2K-i+1) / S) > eps_a`` for some ``a``, with
      ``L' = min(L_(i) / S, 1 - U_(2K-i+1) / S)`` (:func:`pairwise_rdp_bound`; rank-rescaled
      maps only, where ``S`` is known);
    - ``"phi"``: Levine et al.'s rule ``Phi^-1(L_(i)) - Phi^-1(U_(2K-i+1)) > 2 rho_2 / sigma``
      with the l2-converted radius (Gaussian noise only: ``q`` is a [0, 1]-valued function of the
      noisy input). For Gaussian noise it certifies the most;
    - ``"laplace"``: Teng et al.'s exact l1 rule for Laplace noise,
      ``F^-1(L_(i)) - F^-1(U_(2K-i+1)) > 2 rho_1 / b`` with ``F`` the standard Laplace CDF and
      the l1-converted radius (:func:`~captum_certified.certify.laplace_lower_bound`; Laplace
      noise only, any [0, 1]-valued map). Each coordinate's bound is attained, so for l1 it is
      the tightest per-coordinate rule;
    - ``"best"``: any of the available methods (all hold on the same band event, so their
      union is sound).

    and the certified overlap is ``max{i : rank i certified} / K`` (0 if none; ranks with
    ``2K - i + 1 > d`` are always kept). Where nothing is certified the answer is 0, never NaN.

    Built by :class:`RDPTopKCertifier`. ``lower``/``upper`` hold the band ``(bsz, d)``;
    ``orders`` the Rényi orders; ``score_mass`` is ``S`` (None if unknown); ``method`` the
    default method of the queries; ``num_input_features`` the number ``N`` of perturbed input
    features used by norm conversions (None if unknown: then only norms that need no
    conversion factor can be queried).
    """

    def __init__(
        self,
        lower: Tensor,
        upper: Tensor,
        *,
        orders: Tensor,
        method: str = "best",
        score_mass: float | None = None,
        num_input_features: int | None = None,
        **fields,
    ) -> None:
        super().__init__(num_features=lower.shape[-1], **fields)
        if self.noise not in RDP_NOISES:
            raise ValueError(
                f"no Rényi-DP bound is implemented for {self.noise!r} noise; certified noises "
                f"are {sorted(RDP_NOISES)}"
            )
        # the certificate's arithmetic is tiny next to the sampling: keep it on the CPU
        self.lower = lower.detach().to(device="cpu", dtype=torch.float64)
        self.upper = upper.detach().to(device="cpu", dtype=torch.float64)
        self.scale = self.scale.cpu()
        self.orders = check_orders(orders).cpu()
        if score_mass is not None:
            score_mass = float(score_mass)
            if not math.isfinite(score_mass) or score_mass < 1.0:
                raise ValueError(f"`score_mass` must be >= 1 (||v||_1 / v_1), got {score_mass}")
        self.score_mass = score_mass
        self.method = self._check_method(method)
        self.num_input_features = num_input_features
        self._pair_cache: dict[int, tuple[Tensor, Tensor, Tensor]] = {}

    # -- helpers ---------------------------------------------------------------------------

    @property
    def methods(self) -> tuple[str, ...]:
        """The bounds available for this certificate (besides ``"best"``)."""
        out = ["holder"]
        if self.score_mass is not None:
            out.append("pairwise")
        if self.noise == "gaussian":
            out.append("phi")
        if self.noise == "laplace":
            out.append("laplace")
        return tuple(out)

    def _check_method(self, method: str | None) -> str:
        if method is None:
            return self.method
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
        if method == "pairwise" and self.score_mass is None:
            raise ValueError(
                "`method`='pairwise' needs rank-rescaled maps with a known score mass "
                "||v||_1 / v_1 (RankRescale or TopKBinarize transforms)"
            )
        if method == "phi" and self.noise != "gaussian":
            raise ValueError(f"`method`='phi' is valid for Gaussian noise only, not {self.noise!r}")
        if method == "laplace" and self.noise != "laplace":
            raise ValueError(
                f"`method`='laplace' is valid for Laplace noise only, not {self.noise!r}"
            )
        return method

    def _norm(self, norm: str | float | None) -> float:
        return parse_norm(self.norm if norm is None else norm)

    def _pairs(self, count: int) -> tuple[Tensor, Tensor, Tensor]:
        # one sort per K, reused by every radius, norm and method
        if count not in self._pair_cache:
            self._pair_cache[count] = paired_order_statistics(self.lower, self.upper, count)
        return self._pair_cache[count]

    def _radius(self, radius: float | Tensor, name: str = "radius") -> Tensor:
        radius = check_radius(radius, name)
        if radius.dim() > 1 or (radius.dim() == 1 and radius.shape[0] != self.batch_size):
            raise ValueError(
                f"`{name}` must be a scalar or of shape ({self.batch_size},), "
                f"got {tuple(radius.shape)}"
            )
        return radius.cpu().expand(self.batch_size).clone()

    def epsilon(self, radius: float | Tensor, norm: str | float | None = None) -> Tensor:
        r"""RDP epsilons ``epsilon_a(radius)`` of the noise, shape ``(bsz, len(orders))``.

        Args:
            radius (float or Tensor): Scalar or ``(bsz,)`` radius ``>= 0``.
            norm (str or float, optional): Perturbation norm; None is the noise's native
                        norm (l2 Gaussian, l1 Laplace). Default: None

        Returns:
            Tensor: float64 epsilons.
        """
        p = self._norm(norm)
        radius = self._radius(radius).cpu()
        try:
            return rdp_epsilon(
                self.noise,
                self.orders,
                radius,
                self.scale,
                norm=p,
                num_features=self.num_input_features,
            )
        except ValueError as err:
            if self.num_input_features is None and "num_features" in str(err):
                raise ValueError(
                    f"an {norm_name(p)} certificate for {self.noise} noise needs the number of "
                    "perturbed input features: set `cert.num_input_features` (RenyiRobustSmooth "
                    "sets it)"
                ) from None
            raise

    def _l2_radius(self, radius: Tensor, p: float) -> Tensor:
        try:
            return convert_radius(radius, p, 2.0, self.num_input_features)
        except ValueError:
            raise ValueError(
                f"an {norm_name(p)} certificate needs the number of perturbed input features: "
                "set `cert.num_input_features` (RenyiRobustSmooth sets it)"
            ) from None

    def _l1_radius(self, radius: Tensor, p: float) -> Tensor:
        try:
            return convert_radius(radius, p, 1.0, self.num_input_features)
        except ValueError:
            raise ValueError(
                f"an {norm_name(p)} certificate needs the number of perturbed input features: "
                "set `cert.num_input_features` (RenyiRobustSmooth sets it)"
            ) from None

    def _condition(
        self,
        lower_i: Tensor,
        upper_i: Tensor,
        radius: Tensor,
        p: float,
        method: str,
        eps: Tensor | None = None,
    ) -> Tensor:
        """Whether each pair ``(L_(i), U_(2K-i+1))`` is certified at ``radius``: (bsz, m)."""
        if method == "best":
            out = torch.zeros_like(lower_i, dtype=torch.bool)
            eps = None if self.methods == ("phi",) else self.epsilon(radius, p)
            for m in self.methods:
                if m == "laplace" and p > 1.0 and self.num_input_features is None:
                    continue  # no l1 conversion without N; the RDP routes still apply
                out |= self._condition(lower_i, upper_i, radius, p, m, eps)
            return out
        if method == "phi":
            rho2 = self._l2_radius(radius, p).to(lower_i.device)
            gap = torch.special.ndtri(lower_i) - torch.special.ndtri(upper_i)
            gap = torch.where(torch.isnan(gap), torch.full_like(gap, -math.inf), gap)
            return gap > (2.0 * rho2 / self.scale.to(lower_i.device)).unsqueeze(-1)
        if method == "laplace":
            rho1 = self._l1_radius(radius, p).to(lower_i.device)
            gap = laplace_icdf(lower_i) - laplace_icdf(upper_i)
            gap = torch.where(torch.isnan(gap), torch.full_like(gap, -math.inf), gap)
            return gap > (2.0 * rho1 / self.scale.to(lower_i.device)).unsqueeze(-1)
        eps = (self.epsilon(radius, p) if eps is None else eps).to(lower_i.device)
        orders = self.orders.to(lower_i.device)
        if method == "holder":
            return _holder(lower_i, eps, orders, "lower") > _holder(upper_i, eps, orders, "upper")
        s = self.score_mass
        assert s is not None  # the score-mass methods are only enabled with a known mass
        p_b = (upper_i / s).clamp(0.0, 1.0)
        p_a = torch.minimum(lower_i / s, 1.0 - p_b)
        out = torch.zeros_like(lower_i, dtype=torch.bool)
        for rows, cols in _chunks(p_a.shape[0], p_a.shape[1], orders.numel()):
            bound = pairwise_rdp_bound(
                p_a[rows, cols].unsqueeze(-1), p_b[rows, cols].unsqueeze(-1), orders
            )
            out[rows, cols] = (bound > eps[rows].unsqueeze(1)).any(-1)
        return out

    # -- queries ---------------------------------------------------------------------------

    def certifying_method(
        self,
        k: int | float,
        radius: float | Tensor,
        norm: str | float | None = None,
    ) -> list[str]:
        r"""Which bound gives the ``"best"`` answer at ``radius``, one name per example.

        The union of the methods certifies the longest prefix of ranks any single method
        certifies, so ``"best"`` equals the largest per-method count; this names a method
        reaching it (the exact ``"phi"``/``"laplace"`` rule on ties, then ``"pairwise"``, then
        ``"holder"``), or ``"none"`` where nothing beyond the unopposed ranks is certified.
        The band behind every method is :attr:`bound`.

        Args:
            k (int or float): Top-K size.
            radius (float or Tensor): Radius ``>= 0``; a scalar or a ``(bsz,)`` tensor.
            norm (str or float, optional): Norm of the radius; None is the native norm.
                        Default: None

        Returns:
            list[str]: method name per example.

        Examples::

            >>> cert.certifying_method(k=0.2, radius=0.1)
            ['laplace', 'laplace']
        """
        count = resolve_count(k, self.num_features, "k")
        p = self._norm(norm)
        best = [int(self._pairs(count)[2].sum())] * self.batch_size
        names = ["none"] * self.batch_size
        # exact per-coordinate rules first: on ties they are the ones to name
        for m in sorted(self.methods, key=("phi", "laplace", "pairwise", "holder").index):
            if m == "laplace" and p > 1.0 and self.num_input_features is None:
                continue
            got = self.certified_count(count, radius, p, m).tolist()
            for b in range(self.batch_size):
                if got[b] > best[b]:
                    best[b], names[b] = got[b], m
        return names

    def certified_count(
        self,
        k: int | float,
        radius: float | Tensor,
        norm: str | float | None = None,
        method: str | None = None,
    ) -> Tensor:
        r"""Certified number ``m`` of top-K features kept, shape ``(bsz,)`` (int64).

        Args:
            k (int or float): Top-K size (count in ``1..d`` or fraction of ``d``).
            radius (float or Tensor): Radius ``>= 0``; a scalar or a ``(bsz,)`` tensor.
            norm (str or float, optional): ``"l1"``, ``"l2"``, ``"linf"`` or any ``p >= 1``;
                        None is the noise's native norm. Default: None
            method (str, optional): ``"holder"``, ``"pairwise"``, ``"phi"`` or ``"best"``;
                        None uses :attr:`method`. Default: None

        Returns:
            Tensor: ``m`` per example.
        """
        count = resolve_count(k, self.num_features, "k")
        p = self._norm(norm)
        method = self._check_method(method)
        radius = self._radius(radius)
        lower_i, upper_i, unopposed = self._pairs(count)
        # Rank i's condition compares L_(i) (non-increasing in i) with U_(2K-i+1)
        # (non-decreasing) through monotone bounds, so the certified ranks form a prefix:
        # binary search costs O(log K) pair evaluations. Whatever the rounding, the rank
        # returned has its own condition verified, which is all the pigeonhole argument needs.
        bsz = self.batch_size
        lo = torch.full((bsz,), int(unopposed.sum()), dtype=torch.long)  # kept for sure
        hi = torch.full((bsz,), count + 1, dtype=torch.long)  # first rank known to fail
        while True:
            active = hi - lo > 1
            if not bool(active.any()):
                break
            mid = torch.where(active, (lo + hi) // 2, lo.clamp(min=1))
            idx = (mid - 1).clamp(min=0).unsqueeze(1).to(lower_i.device)
            ok = self._condition(lower_i.gather(1, idx), upper_i.gather(1, idx), radius, p, method)[
                :, 0
            ].cpu()
            lo = torch.where(active & ok, mid, lo)
            hi = torch.where(active & ~ok, mid, hi)
        return lo.to(lower_i.device)

    def _scan(
        self,
        k: int | float,
        radius: float | Tensor,
        norm: str | float | None = None,
        method: str | None = None,
    ) -> Tensor:
        """Every rank's condition, ``(bsz, K)`` bool (unopposed ranks True); for tests."""
        count = resolve_count(k, self.num_features, "k")
        lower_i, upper_i, unopposed = self._pairs(count)
        ok = self._condition(
            lower_i, upper_i, self._radius(radius), self._norm(norm), self._check_method(method)
        )
        return ok | unopposed.to(ok.device)

    def topk_overlap(
        self,
        k: int | float,
        radius: float | Tensor,
        norm: str | float | None = None,
        method: str | None = None,
    ) -> Tensor:
        r"""Certified fraction of the top-K kept under every ``||delta||_norm <= radius``.

        Args:
            k (int or float): Top-K size as a count in ``1..d`` or a fraction of ``d``.
            radius (float or Tensor): Radius ``>= 0``; a scalar or a ``(bsz,)`` tensor.
            norm (str or float, optional): ``"l1"``, ``"l2"``, ``"linf"`` or any ``p >= 1``;
                        None is the noise's native norm. Default: None
            method (str, optional): Bound to use (see the class); None uses
                        :attr:`method`. Default: None

        Returns:
            Tensor: ``m / K`` per example, shape ``(bsz,)``, float64.

        Examples::

            >>> cert.topk_overlap(k=0.1, radius=0.05, norm="l1")
        """
        count = resolve_count(k, self.num_features, "k")
        return self.certified_count(count, radius, norm, method).to(torch.float64) / count

    def certified_radius(
        self,
        k: int | float,
        overlap: float,
        norm: str | float | None = None,
        method: str | None = None,
    ) -> Tensor:
        r"""Largest radius at which a top-K overlap of at least ``overlap`` is certified.

        Found by bisection on the rank ``ceil(overlap * K)`` condition, vectorized over the
        batch and checked against :meth:`topk_overlap`: where the radius ``r`` returned is
        positive, ``topk_overlap(k, r, norm, method) >= overlap``. It is ``inf`` where every
        perturbation keeps that overlap (``2K - d`` unopposed ranks), and 0 where no positive
        radius is certified.

        Args:
            k (int or float): Top-K size as a count in ``1..d`` or a fraction of ``d``.
            overlap (float): Required fraction in (0, 1].
            norm (str or float, optional): Norm of the radius; None is the noise's native
                        norm. Default: None
            method (str, optional): Bound to use; None uses :attr:`method`. Default: None

        Returns:
            Tensor: radius per example, shape ``(bsz,)``, float64.

        Examples::

            >>> cert.certified_radius(k=0.1, overlap=0.5, norm="linf")
        """
        count = resolve_count(k, self.num_features, "k")
        if isinstance(overlap, bool) or not isinstance(overlap, (int, float)):
            raise TypeError(f"`overlap` must be a float in (0, 1], got {type(overlap).__name__}")
        if not 0.0 < float(overlap) <= 1.0:
            raise ValueError(f"`overlap` must be in (0, 1], got {overlap}")
        p = self._norm(norm)
        method = self._check_method(method)
        needed = max(1, math.ceil(float(overlap) * count - 1e-9))
        bsz = self.batch_size
        if p > 2.0:
            self._l2_radius(torch.ones(()), p)  # fail early without num_input_features
        lower_i, upper_i, unopposed = self._pairs(count)
        if bool(unopposed[needed - 1]):
            return torch.full((bsz,), math.inf, dtype=torch.float64)
        lo_pair = lower_i[:, needed - 1 : needed]
        up_pair = upper_i[:, needed - 1 : needed]

        def ok(radius: Tensor) -> Tensor:
            return self._condition(lo_pair, up_pair, radius, p, method)[:, 0]

        zero = torch.zeros(bsz, dtype=torch.float64)
        certified_at_zero = ok(zero)
        lo = zero.clone()
        hi = self.scale.clone()
        # grow the bracket until the condition fails (or the radius is astronomically large)
        growing = certified_at_zero.clone()
        for _ in range(400):
            still = growing & ok(hi)
            if not still.any():
                break
            lo = torch.where(still, hi, lo)
            hi = torch.where(still, hi * 2.0, hi)
            growing = still
        unbounded = growing & ok(hi)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            good = ok(mid)
            lo = torch.where(good, mid, lo)
            hi = torch.where(good, hi, mid)
            active = certified_at_zero & ~unbounded
            if not bool((active & ((hi - lo) > 1e-13 * hi)).any()):
                break
        radius = torch.where(certified_at_zero, lo * (1.0 - 1e-9), zero)
        radius = torch.where(unbounded, torch.full_like(radius, math.inf), radius)
        # the documented promise, checked with the public query itself
        for _ in range(60):
            finite = torch.isfinite(radius) & (radius > 0)
            if not finite.any():
                break
            probe = torch.where(finite, radius, zero)
            fails = finite & (self.certified_count(count, probe, p, method) < needed)
            if not fails.any():
                break
            radius = torch.where(fails, radius * 0.5, radius)
        else:
            radius = torch.where(fails, zero, radius)
        return radius

    def overlap_curve(
        self,
        k: int | float,
        radii: Tensor,
        norm: str | float | None = None,
        method: str | None = None,
    ) -> Tensor:
        r"""Certified overlap at each radius of a grid, shape ``(bsz, len(radii))``.

        Args:
            k (int or float): Top-K size.
            radii (Tensor): 1-D tensor of radii ``>= 0``.
            norm (str or float, optional): Norm of the radii. Default: None
            method (str, optional): Bound to use. Default: None

        Returns:
            Tensor: float64 fractions.
        """
        grid = check_radius(radii, "radii").reshape(-1)
        cols = [self.topk_overlap(k, float(r), norm, method) for r in grid]
        return torch.stack(cols, dim=1)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", method={self.method!r})"


# ------------------------------------------------------------------------------------------------
# Certifier
# ------------------------------------------------------------------------------------------------


def score_mass(transform: AttributionTransform, num_features: int) -> float | None:
    r"""``S = ||v||_1 / v_1``: the constant sum of every per-sample map, if the transform has one.

    RankRescale (any scoring vector) and TopKBinarize (``S`` = the number of ones) give every
    sample the same total, which makes ``q / S`` a distribution; other transforms give None.

    Args:
        transform (AttributionTransform): The per-sample map.
        num_features (int): ``d``.

    Returns:
        float or None: ``S``.
    """
    if isinstance(transform, RankRescale):
        return float(transform.scores(num_features).to(torch.float64).sum())
    if isinstance(transform, TopKBinarize):
        return float(resolve_count(transform.sparsity, num_features, "sparsity"))
    return None


class RDPTopKCertifier(Certifier):
    r"""Builds :class:`RDPTopKCertificate` (Rényi-DP top-k certificates, Gaussian or Laplace).

    The band is Clopper-Pearson for binary maps (exact counts) and Hoeffding otherwise, on
    ``q = m / v_1`` in [0, 1] (ALGORITHMS 1.5, 2.5).

    Args:
        method (str, optional): Default query method: ``"holder"``, ``"pairwise"``, ``"phi"``
                    (Gaussian only), ``"laplace"`` (Laplace only) or ``"best"`` (the union of
                    the available ones; for Gaussian noise it is in practice the Phi rule, for
                    Laplace noise and l1 the exact Laplace rule). Default: "best"
        orders (Tensor, optional): Rényi orders ``> 1``; None is 200 log-spaced orders in
                    [1.01, 500]. Default: None
        num_input_features (int, optional): Number of perturbed input features ``N`` used by
                    norm conversions (l_inf, l_p with p > 2, and for Laplace any p > 1 beyond
                    the zCDP route), for certificates built outside the engine. Inside
                    :class:`~captum_certified.attr.CertifiedWrapper` the engine's count is
                    authoritative and a value that disagrees with it is refused (a smaller
                    ``N`` would certify a larger radius than is true). Default: None
    """

    supported_noises: tuple[type[NoiseDistribution], ...] = (GaussianNoise, LaplaceNoise)

    def __init__(
        self,
        method: str = "best",
        orders: Tensor | None = None,
        num_input_features: int | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
        self.method = method
        low, high, num = DEFAULT_ORDERS
        self.orders = rdp_orders(num, low, high) if orders is None else check_orders(orders)
        if num_input_features is not None and (
            isinstance(num_input_features, bool)
            or not isinstance(num_input_features, int)
            or num_input_features < 1
        ):
            raise ValueError(
                f"`num_input_features` must be a positive int, got {num_input_features!r}"
            )
        self.num_input_features = num_input_features

    def check_samples(self, maps: Tensor, transform: AttributionTransform) -> None:
        """[0, 1] values and, for rank-rescaled maps, the constant per-sample total ``S``."""
        super().check_samples(maps, transform)
        mass = score_mass(transform, maps.shape[1])
        if mass is not None and maps.numel():
            totals = maps.sum(dim=1, dtype=torch.float64)
            if ((totals - mass).abs() > 1e-4 * mass).any():
                raise ValueError(
                    f"transform {transform!r} produced per-sample totals other than "
                    f"||v||_1 / v_1 = {mass:g}; the pairwise RDP bound needs constant totals"
                )

    def certify(
        self,
        statistics: StreamingMoments,
        *,
        scale: Tensor,
        noise: str,
        alpha: float,
        bound: str | None,
        transform: AttributionTransform,
        num_input_features: int | None = None,
    ) -> RDPTopKCertificate:
        if noise not in RDP_NOISES:
            raise ValueError(
                f"no Rényi-DP certificate for {noise!r} noise; use 'gaussian' or 'laplace'"
            )
        binary = transform.kind == "binary"
        lower, upper, bound = confidence_band(statistics, alpha=alpha, bound=bound, binary=binary)
        method = self.method
        if method == "phi" and noise != "gaussian":
            raise ValueError(f"`method`='phi' is valid for Gaussian noise only, not {noise!r}")
        if method == "laplace" and noise != "laplace":
            raise ValueError(f"`method`='laplace' is valid for Laplace noise only, not {noise!r}")
        mass = score_mass(transform, lower.shape[-1])
        if method == "pairwise" and mass is None:
            raise ValueError(
                "`method`='pairwise' needs a RankRescale or TopKBinarize transform, got "
                f"{transform!r}"
            )
        if (
            self.num_input_features is not None
            and num_input_features is not None
            and self.num_input_features != num_input_features
        ):
            raise ValueError(
                f"`num_input_features`={self.num_input_features} disagrees with the "
                f"{num_input_features} input features the noise perturbs; the certificate must "
                "use the true count (omit `num_input_features`)"
            )
        return RDPTopKCertificate(
            lower,
            upper,
            orders=self.orders,
            method=method,
            score_mass=mass,
            num_input_features=(
                num_input_features if num_input_features is not None else self.num_input_features
            ),
            noise=noise,
            norm=RDP_NOISES[noise][1],
            scale=scale,
            n=statistics.n,
            alpha=alpha,
            bound=bound,
        )
