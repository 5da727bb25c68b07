"""Rényi-Robust-Smooth (Liu et al., arXiv 2107.01561) as a preset of the engine."""

from __future__ import annotations

from collections.abc import Callable

from captum.attr import Attribution, Saliency
from torch import Tensor, nn

from captum_certified._utils.validation import check_count_spec
from captum_certified.attr._core.certified_wrapper import CertifiedWrapper
from captum_certified.attr._core.preset_defaults import with_defaults
from captum_certified.certify import RDPTopKCertifier
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

    :meth:`attribute` is :meth:`CertifiedWrapper.attribute` with ``nt_samples=128``,
    ``nt_samples_batch_size=64`` and ``stdevs=0.25``. Its ``noise``:

    - :class:`~captum_certified.noise.GaussianNoise` (the default): ``N(0, sigma^2 I)``,
      ``stdevs`` = sigma. Native norm l2; certificate methods ``"phi"`` (Levine et al.'s rule,
      the strongest), ``"holder"``, ``"pairwise"``.
    - :class:`~captum_certified.noise.LaplaceNoise`: i.i.d. Laplace, ``noise_scale`` = the
      **scale b** (standard deviation ``sqrt(2) b``; None: 0.25). Native norm l1; methods
      ``"laplace"`` (the exact per-coordinate l1 rule of Teng et al., the strongest in l1),
      ``"holder"`` and ``"pairwise"``.
    - a :class:`~captum_certified.noise.GeneralizedGaussianNoise` (the paper's noise) smooths
      but has no certificate (``return_certificate=True`` raises ``ValueError``).

    The default ``method="best"`` takes the union of the sound methods available (for Gaussian
    noise that is in practice the Phi rule; for Laplace noise the exact ``"laplace"`` rule, with
    Hölder or pairwise where they certify more, e.g. for other norms than l1). ``bound``:
    Clopper-Pearson for binary ``"topk"`` scoring, the betting band for ``"linear"`` scoring,
    Bernoulli-KL otherwise.

    Args:
        forward_func (Callable): The model (or any function returning per-class scores).
        sparsity (int or float, optional): Support ``k'`` of the scoring family (the
                    per-sample top count, named as in every transform): a count or a
                    fraction of the number of features ``d``. Ignored for a tensor
                    ``scoring``. Default: 0.1
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
        noise_layer (torch.nn.Module, optional): Add the noise to this module's output (e.g.
                    a text model's embedding) instead of the inputs, certificates in that
                    module's output space; see :class:`CertifiedWrapper`. Default: None

    Examples::

        >>> from captum_certified.noise import LaplaceNoise
        >>> rrs = RenyiRobustSmooth(model, sparsity=0.1, scoring="topk")
        >>> attr, cert = rrs.attribute(x, target=y, nt_samples=128, noise=LaplaceNoise(),
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
        sparsity: int | float = 0.1,
        scoring: str | Tensor = "topk",
        *,
        gamma: float = 0.9,
        attribution_method: Attribution | None = None,
        method: str = "best",
        orders: Tensor | None = None,
        noise_layer: nn.Module | None = None,
    ) -> None:
        count = check_count_spec(sparsity, "sparsity")
        transform = ScoringRescale(
            scoring, sparsity=count if isinstance(scoring, str) else None, gamma=gamma
        )
        self.sparsity = transform.sparsity
        self.scoring = scoring
        self.gamma = gamma
        super().__init__(
            attribution_method if attribution_method is not None else Saliency(forward_func),
            transform=transform,
            certifier=RDPTopKCertifier(method=method, orders=orders),
            noise_layer=noise_layer,
        )

    nt_types = ("smoothgrad",)  # a preset returns (and certifies) the mean map only
    attribute = with_defaults(
        CertifiedWrapper.attribute, nt_samples=128, nt_samples_batch_size=64, stdevs=0.25
    )
