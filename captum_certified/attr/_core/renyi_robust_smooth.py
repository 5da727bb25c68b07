"""Rényi-Robust-Smooth (Liu et al., arXiv 2107.01561) as a preset of the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import torch
from captum.attr import Attribution, Saliency
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.validation import check_count_spec, warn_deprecated
from captum_certified.attr._core.certified_wrapper import CertifiedWrapper
from captum_certified.certify import RDPTopKCertificate, RDPTopKCertifier
from captum_certified.noise import NoiseDistribution, resolve_noise
from captum_certified.transforms import ScoringRescale


class RenyiRobustSmooth(CertifiedWrapper):
    r"""Rényi-Robust-Smooth: rank-rescaled smoothing with an RDP top-k certificate (any l_p).

    Each noisy sample ``x + eps`` is attributed (default: absolute gradient, ``Saliency``) and
    re-scaled by a scoring vector ``v``: the feature of rank ``r`` gets ``v_r / v_1``. The
    output is the average over samples, an estimate of the expected map ``q(x)``; ``q / S``
    with ``S = ||v||_1 / v_1`` is a distribution over features, the ``P`` of Liu et al.
    ``return_certificate=True`` adds an :class:`~captum_certified.certify.RDPTopKCertificate`:
    with probability at least ``1 - alpha``, ``|TopK(q(x)) ∩ TopK(q(x + delta))| / K >=
    cert.topk_overlap(k, radius, norm)`` for every ``||delta||_norm <= radius``, for l1, l2,
    l_inf or any l_p with p >= 1.

    Noise (``noise=`` of :meth:`attribute`):

    - ``"gaussian"``: ``N(0, sigma^2 I)``, ``stdevs`` (or ``noise_scale``) = sigma. Native norm
      l2; certificate methods ``"phi"`` (Levine et al.'s rule, the strongest), ``"holder"``,
      ``"pairwise"``.
    - ``"laplace"``: i.i.d. Laplace, ``noise_scale`` = the **scale b** (standard deviation
      ``sqrt(2) b``). Native norm l1; methods ``"laplace"`` (the exact per-coordinate l1
      rule of Teng et al., the strongest in l1), ``"holder"`` and ``"pairwise"``.
    - a :class:`~captum_certified.noise.GeneralizedGaussianNoise` (the paper's noise) smooths
      but has no certificate (``return_certificate=True`` raises ``ValueError``).

    The default ``method="best"`` takes the union of the sound methods available (for Gaussian
    noise that is in practice the Phi rule; for Laplace noise the exact ``"laplace"`` rule, with
    Hölder or pairwise where they certify more, e.g. for other norms than l1).

    Args:
        forward_func (Callable): The model (or any function returning per-class scores).
        sparsity (int or float, optional): Support ``k'`` of the scoring family (the
                    per-sample top count, named as in every transform): a count or a
                    fraction of the number of features ``d``. Ignored for a tensor
                    ``scoring``. ``k=`` is its deprecated name. Default: 0.1
        scoring (str or Tensor, optional): ``"topk"`` (binary top-k', Levine's map),
                    ``"linear"``, ``"geometric"`` (``gamma^(r-1)`` on the top k'), or an
                    explicit non-negative, non-increasing scoring tensor. Default: "topk"
        gamma (float, optional): Decay of the geometric family, in (0, 1]. Default: 0.9
        attribution_method (Attribution, optional): Base attribution; its magnitude is
                    ranked. Default: ``Saliency(forward_func)`` (absolute gradient)
        method (str, optional): Default certificate method: ``"best"``, ``"holder"``,
                    ``"pairwise"``, ``"phi"`` (Gaussian only) or ``"laplace"`` (Laplace
                    only); every query may override it. Default: "best"
        orders (Tensor, optional): Rényi orders of the certificate; None is 200 log-spaced
                    orders in [1.01, 500]. Default: None

    Examples::

        >>> rrs = RenyiRobustSmooth(model, sparsity=0.1, scoring="topk")
        >>> attr, cert = rrs.attribute(x, target=y, nt_samples=128, noise="laplace",
        ...                            noise_scale=0.5, return_certificate=True, alpha=0.05,
        ...                            generator=torch.Generator().manual_seed(0))
        >>> cert.topk_overlap(k=0.1, radius=0.05, norm="l1")     # (bsz,) certified fraction
        tensor([0.131, 0.171, 0.210, 0.184], dtype=torch.float64)
        >>> cert.certified_radius(k=0.1, overlap=0.5, norm="linf")
        tensor([0., 0., 0., 0.], dtype=torch.float64)
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        sparsity: int | float | None = None,
        scoring: str | Tensor = "topk",
        *,
        gamma: float = 0.9,
        attribution_method: Attribution | None = None,
        method: str = "best",
        orders: Tensor | None = None,
        k: int | float | None = None,
    ) -> None:
        name = "sparsity"
        if k is not None:
            if sparsity is not None:
                raise TypeError("pass `sparsity` only (`k` is its deprecated name)")
            warn_deprecated("RenyiRobustSmooth(k=...) is deprecated; pass sparsity=... instead")
            sparsity, name = k, "k"  # errors name the argument the user passed
        count = check_count_spec(0.1 if sparsity is None else sparsity, name)
        transform = ScoringRescale(
            scoring, sparsity=count if isinstance(scoring, str) else None, gamma=gamma
        )
        self.sparsity = transform.sparsity
        self.scoring = scoring
        self.gamma = gamma
        super().__init__(
            attribution_method if attribution_method is not None else Saliency(forward_func),
            noise="gaussian",
            transform=transform,
            certifier=RDPTopKCertifier(method=method, orders=orders),
        )

    @property
    def k(self) -> int | float | None:
        """Deprecated name of :attr:`sparsity`."""
        warn_deprecated("RenyiRobustSmooth.k is deprecated; use .sparsity")
        return self.sparsity

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        *args: Any,
        return_certificate: Literal[True],
        **kwargs: Any,
    ) -> tuple[Any, RDPTopKCertificate]: ...

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        *args: Any,
        return_certificate: Literal[False] = False,
        **kwargs: Any,
    ) -> Any: ...

    @log_usage()
    def attribute(  # type: ignore[override, misc]
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: Any = None,
        nt_samples: int = 128,
        nt_samples_batch_size: int | None = 64,
        noise: str | NoiseDistribution = "gaussian",
        stdevs: float | Tensor | tuple[float | Tensor, ...] | None = None,
        additional_forward_args: Any = None,
        *,
        relative_stdevs: bool = False,
        noise_scale: float | Tensor | tuple[float | Tensor, ...] | None = None,
        relative_noise_scale: bool = False,
        generator: torch.Generator | None = None,
        return_certificate: bool = False,
        alpha: float = 0.05,
        bound: str | None = None,
        **kwargs: Any,
    ) -> Any:
        r"""Rank-rescaled smoothed map, and optionally its RDP certificate.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Input batch; tuple in, tuple out. For tuple
                        inputs the ranking and the certificate run over all features of all
                        tensors together (the norm of the concatenated perturbation).
            target (int, tuple, Tensor, list or str, optional): Captum target, or
                        ``"noisy_argmax"``. Default: None
            nt_samples (int, optional): Noise samples ``T``. Default: 128
            nt_samples_batch_size (int, optional): Samples evaluated together (memory bound).
                        Default: 64
            noise (str or NoiseDistribution, optional): ``"gaussian"``, ``"laplace"`` or a
                        noise instance. Default: "gaussian"
            stdevs (float, Tensor or tuple, optional): Standard deviation sigma of Gaussian
                        noise, in input units. Per-feature scales are allowed; the certificate
                        uses the smallest. For Laplace noise pass ``noise_scale`` (``stdevs``
                        still means the scale ``b`` there for one release, with a
                        ``DeprecationWarning``). None, with no ``noise_scale``: 0.25.
                        Default: None
            additional_forward_args (Any, optional): Extra forward arguments. Default: None
            relative_stdevs (bool, optional): Multiply ``stdevs`` by each example's value
                        range. Refused with ``return_certificate=True`` (the scale would
                        depend on the input); pass an absolute ``stdevs``. Default: False
            noise_scale (float, Tensor or tuple, optional): The noise's native scale, in the
                        same forms as ``stdevs``: sigma for Gaussian noise, the Laplace scale
                        ``b`` (not the standard deviation ``sqrt(2) b``), the density scale
                        of a generalized Gaussian. At most one of ``stdevs`` and
                        ``noise_scale``. Default: None
            relative_noise_scale (bool, optional): ``relative_stdevs`` for ``noise_scale``.
                        Default: False
            generator (torch.Generator, optional): Randomness source. Default: None
            return_certificate (bool, optional): Also return the certificate. Default: False
            alpha (float, optional): Failure probability of the band. Default: 0.05
            bound (str, optional): ``"clopper_pearson"`` (binary ``"topk"`` scoring only; its
                        default), ``"kl"`` (Bernoulli-KL; default otherwise) or
                        ``"hoeffding"``. Default: None
            **kwargs: Passed to the base attribution method.

        Returns:
            **attributions** (same shape and tuple-ness as ``inputs``), and **certificate**
            (:class:`~captum_certified.certify.RDPTopKCertificate`) if
            ``return_certificate=True``.
        """
        return self._run_preset(
            inputs,
            target,
            additional_forward_args,
            kwargs,
            nt_samples=nt_samples,
            nt_samples_batch_size=nt_samples_batch_size,
            # the engine refuses noises the certifier lacks
            noise=resolve_noise(noise),
            stdevs=stdevs,
            relative_stdevs=relative_stdevs,
            noise_scale=noise_scale,
            relative_noise_scale=relative_noise_scale,
            _default_scale=0.25,
            generator=generator,
            return_certificate=return_certificate,
            alpha=alpha,
            bound=bound,
        )
