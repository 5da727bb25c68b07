"""The Rényi-DP top-k certificate (Liu et al., Rényi-Robust-Smooth) with sampling error.

The bounds it combines live in :mod:`.rdp_bounds` (Hölder, pairwise) and in the noise objects
(Rényi curves, quantile rules); the band is combined with them through the sorted pigeonhole
rule (``paired_order_statistics``). Derivations: :doc:`/certificates`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from captum_certified._utils.norms import convert_radius, norm_name, parse_norm
from captum_certified._utils.validation import check_orders
from captum_certified.certify._core.certificate import needed_rank
from captum_certified.certify._core.rdp_bounds import _chunks, _holder, pairwise_rdp_bound
from captum_certified.certify._core.topk_certificate import TopKCertificate
from captum_certified.certify._core.topk_rule import paired_order_statistics, quantile_gap
from captum_certified.noise import NoiseDistribution

METHODS = ("holder", "pairwise", "phi", "laplace", "best")


def check_rule(method: str, noise: NoiseDistribution) -> None:
    """Refuse an exact per-coordinate rule (``"phi"``, ``"laplace"``) the noise does not have."""
    laws = {"phi": "Gaussian", "laplace": "Laplace"}
    if method in laws and noise.coordinate_rule != method:
        raise ValueError(
            f"`method`={method!r} is valid for {laws[method]} noise only, not {noise.name!r}"
        )


class RDPTopKCertificate(TopKCertificate):
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
        if not self.noise_distribution.has_rdp:
            raise ValueError(
                f"no Rényi-DP bound is implemented for {self.noise!r} noise: the noise must "
                "implement `rdp_epsilon` (GaussianNoise, LaplaceNoise)"
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
        rule = self.noise_distribution.coordinate_rule
        if rule in METHODS:  # the law's exact per-coordinate rule ("phi", "laplace")
            out.append(rule)
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
        check_rule(method, self.noise_distribution)
        return method

    def _pairs(self, count: int) -> tuple[Tensor, Tensor, Tensor]:
        # one sort per K, reused by every radius, norm and method
        if count not in self._pair_cache:
            self._pair_cache[count] = paired_order_statistics(self.lower, self.upper, count)
        return self._pair_cache[count]

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
        radius = self._per_example(radius)
        try:
            return self.noise_distribution.rdp_epsilon(
                self.orders, radius, self.scale, norm=p, num_features=self.num_input_features
            )
        except ValueError as err:
            if self.num_input_features is None and "num_features" in str(err):
                raise ValueError(
                    f"an {norm_name(p)} certificate for {self.noise} noise needs the number of "
                    "perturbed input features: set `cert.num_input_features` (RenyiRobustSmooth "
                    "sets it)"
                ) from None
            raise

    def _unconvertible(self, method: str, p: float) -> bool:
        """Whether ``method`` is the exact rule and an l_p radius cannot reach its native norm
        (converting to a smaller p needs ``num_input_features``)."""
        native = self.noise_distribution.native_norm
        return (
            method == self.noise_distribution.coordinate_rule
            and native is not None
            and parse_norm(native) < p
            and self.num_input_features is None
        )

    def _native_radius(self, radius: Tensor, p: float) -> Tensor:
        """``radius`` in norm ``p`` converted to the noise's native norm (l2 Gaussian, l1
        Laplace): the largest native norm of a perturbation in the l_p ball."""
        native = self.noise_distribution.native_norm
        assert native is not None  # only the exact rule converts, and it has a native norm
        try:
            return convert_radius(radius, p, native, self.num_input_features)
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
                if self._unconvertible(m, p):
                    continue  # no conversion to the native norm without N; RDP routes apply
                out |= self._condition(lower_i, upper_i, radius, p, m, eps)
            return out
        if method == self.noise_distribution.coordinate_rule:  # "phi" or "laplace"
            rho = self._native_radius(radius, p).to(lower_i.device)
            gap = quantile_gap(lower_i, upper_i, self.noise_distribution.unit_icdf)
            return gap > (2.0 * rho / self.scale.to(lower_i.device)).unsqueeze(-1)
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
            ['laplace', 'laplace', 'laplace', 'laplace']
        """
        count = self._count(k)
        p = self._norm(norm)
        best = [int(self._pairs(count)[2].sum())] * self.batch_size
        names = ["none"] * self.batch_size
        # exact per-coordinate rules first: on ties they are the ones to name
        for m in sorted(self.methods, key=("phi", "laplace", "pairwise", "holder").index):
            if self._unconvertible(m, p):
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
        count = self._count(k)
        p = self._norm(norm)
        method = self._check_method(method)
        radius = self._per_example(radius)
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
            tensor([0.1316, 0.1711, 0.2105, 0.1842], dtype=torch.float64)
        """
        count = self._count(k)
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
            tensor([0., 0., 0., 0.], dtype=torch.float64)
        """
        count = self._count(k)
        needed = needed_rank(overlap, count)
        p = self._norm(norm)
        method = self._check_method(method)
        bsz = self.batch_size
        if p > 2.0:
            self._native_radius(torch.ones(()), p)  # fail early without num_input_features
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

    def rank_radii(
        self,
        k: int | float,
        norm: str | float | None = None,
        method: str | None = None,
    ) -> Tensor:
        r"""Per-rank certified radii ``R_1 >= ... >= R_K``, shape ``(bsz, K)`` (float64).

        ``R_i`` is :meth:`certified_radius` for the overlap ``i / K`` (one bisection per rank,
        each checked against :meth:`certified_count`): rank ``i`` is certified at every radius
        up to ``R_i``. ``+inf`` marks ranks no perturbation can remove (``2K > d``), ``-inf``
        ranks not certified even at radius 0.

        Args:
            k (int or float): Top-K size.
            norm (str or float, optional): Norm of the radii; None is the noise's native
                        norm. Default: None
            method (str, optional): Bound to use; None uses :attr:`method`. Default: None

        Returns:
            Tensor: float64 radii.
        """
        count = self._count(k)
        at_zero = self.certified_count(count, 0.0, norm, method).unsqueeze(1)
        cols = [self.certified_radius(count, i / count, norm, method) for i in range(1, count + 1)]
        radii = torch.stack(cols, dim=1)
        ranks = torch.arange(1, count + 1).unsqueeze(0)
        return torch.where(ranks <= at_zero, radii, torch.full_like(radii, -math.inf))

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
        grid = self._grid(radii)
        cols = [self.topk_overlap(k, float(r), norm, method) for r in grid]
        return torch.stack(cols, dim=1)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", method={self.method!r})"
