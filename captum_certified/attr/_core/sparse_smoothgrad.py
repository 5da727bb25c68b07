"""Sparsified SmoothGrad (Levine, Singla, Feizi 2019) as a preset of the engine."""

from __future__ import annotations

from collections.abc import Callable

from captum.attr import Attribution, Saliency
from torch import Tensor, nn

from captum_certified._utils.validation import check_count_spec
from captum_certified.attr._core.certified_wrapper import CertifiedWrapper
from captum_certified.attr._core.preset_defaults import with_defaults
from captum_certified.transforms import (
    AttributionTransform,
    ClipNormalize,
    LinearRank,
    TopKBinarize,
)

VARIANTS = ("binary", "relaxed", "linear")


class SparseSmoothGrad(CertifiedWrapper):
    r"""Sparsified SmoothGrad with a certified top-K overlap (Levine et al., arXiv 1905.12105).

    Each noisy sample ``x + eps``, ``eps ~ N(0, sigma^2 I)``, is attributed by the absolute
    gradient (``Saliency``, no channel aggregation) and binarized: its ``floor(tau * d)``
    largest entries become 1, the rest 0 (ties by lowest index). The output is the fraction of
    samples in which each feature was in the top-tau, an estimate of the expected map
    ``gbar(x)``. ``return_certificate=True`` adds a
    :class:`~captum_certified.certify.GaussianTopKCertificate`: with probability at least
    ``1 - alpha``, ``|TopK(gbar(x)) ∩ TopK(gbar(x + delta))| / K >= cert.topk_overlap(k,
    radius)`` for every ``||delta||_2 <= radius``.

    :meth:`attribute` is :meth:`CertifiedWrapper.attribute` with the paper's defaults:
    ``nt_samples=1024``, ``nt_samples_batch_size=128`` and ``stdevs=0.25`` (sigma, in input
    units; the paper's CIFAR-10 setting is ``stdevs=0.2`` with ``relative_stdevs=True``, which
    a certificate refuses: pass 0.2 times the dataset's range instead). ``target`` may be
    ``"noisy_argmax"`` (each noisy sample's own top class, as the paper's code). ``bound``:
    Clopper-Pearson for the binary variant, the betting band for ``"linear"`` (measured at
    least as tight as KL there), Bernoulli-KL for ``"relaxed"`` (``"hoeffding"`` is the
    paper's).

    Args:
        forward_func (Callable): The model (or any function returning per-class scores).
        sparsity (int or float, optional): ``tau``: features kept per sample, a fraction of
                    ``d`` in (0, 1] or a count. Default: 0.1
        variant (str, optional): Per-sample map: ``"binary"`` (the paper's headline method),
                    ``"relaxed"`` (the paper's code for CIFAR: clip at the ``clip``-th largest
                    value, rescale to [0, 1], keep the top ``sparsity``) or ``"linear"``
                    (rank-linear scores on the top ``sparsity``). Default: "binary"
        clip (int or float, optional): Clipping rank of the relaxed variant. Default: 0.01
        attribution_method (Attribution, optional): Base attribution; its magnitude is
                    ranked. Default: ``Saliency(forward_func)`` (absolute gradient)
        noise_layer (torch.nn.Module, optional): Add the noise to this module's output (e.g.
                    a text model's embedding) instead of the inputs, certificates in that
                    module's output space; see :class:`CertifiedWrapper`. Default: None

    Examples::

        >>> ssg = SparseSmoothGrad(model, sparsity=0.1)
        >>> attr, cert = ssg.attribute(x, target=3, nt_samples=1024, stdevs=0.25,
        ...                            return_certificate=True, alpha=0.05,
        ...                            generator=torch.Generator().manual_seed(0))
        >>> cert.topk_overlap(k=0.2, radius=0.1)        # (bsz,) certified fraction
        tensor([0.451, 0.424, 0.477, 0.431], dtype=torch.float64)
        >>> cert.certified_radius(k=0.2, overlap=0.5)   # (bsz,) l2 radius
        tensor([0.080, 0.080, 0.093, 0.075], dtype=torch.float64)
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        sparsity: int | float = 0.1,
        *,
        variant: str = "binary",
        clip: int | float = 0.01,
        attribution_method: Attribution | None = None,
        noise_layer: nn.Module | None = None,
    ) -> None:
        sparsity = check_count_spec(sparsity, "sparsity")
        transform: AttributionTransform
        if variant == "binary":
            transform = TopKBinarize(sparsity)
        elif variant == "relaxed":
            transform = ClipNormalize(sparsity=sparsity, clip=clip)
        elif variant == "linear":
            transform = LinearRank(sparsity)
        else:
            raise ValueError(f"`variant` must be one of {VARIANTS}, got {variant!r}")
        self.sparsity = sparsity
        self.variant = variant
        super().__init__(
            attribution_method if attribution_method is not None else Saliency(forward_func),
            transform=transform,
            noise_layer=noise_layer,
        )

    nt_types = ("smoothgrad",)  # a preset returns (and certifies) the mean map only
    attribute = with_defaults(
        CertifiedWrapper.attribute, nt_samples=1024, nt_samples_batch_size=128, stdevs=0.25
    )
