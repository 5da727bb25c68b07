"""Sparsified SmoothGrad (Levine, Singla, Feizi 2019) as a preset of the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import torch
from captum.attr import Attribution, Saliency
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.validation import check_count_spec
from captum_certified.attr._core.certified_wrapper import CertifiedWrapper
from captum_certified.certify import GaussianTopKCertificate
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
            noise="gaussian",
            transform=transform,
        )

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        *args: Any,
        return_certificate: Literal[True],
        **kwargs: Any,
    ) -> tuple[Any, GaussianTopKCertificate]: ...

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
        nt_samples: int = 1024,
        nt_samples_batch_size: int | None = 128,
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
        r"""Sparsified SmoothGrad map (fraction of samples where each feature is in the top-tau).

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Input batch; tuple in, tuple out. For tuple
                        inputs, the top-tau and the certificate run over all features of all
                        tensors together (the l2 norm of the concatenated perturbation).
            target (int, tuple, Tensor, list or str, optional): Captum target, or
                        ``"noisy_argmax"`` to differentiate each noisy sample's own top logit
                        as the paper's code does. Default: None
            nt_samples (int, optional): Noise samples ``n``. Default: 1024
            nt_samples_batch_size (int, optional): Samples evaluated together (memory bound).
                        Default: 128
            stdevs (float, Tensor or tuple, optional): ``sigma``, in input units. None, with
                        no ``noise_scale``: 0.25. Default: None
            additional_forward_args (Any, optional): Extra forward arguments. Default: None
            relative_stdevs (bool, optional): ``sigma = stdevs * (max(x) - min(x))`` per
                        example (the paper's CIFAR-10 setting with 0.2). Refused with
                        ``return_certificate=True``: the scale would depend on the input, so
                        pass an absolute ``stdevs`` (e.g. 0.2 times the dataset's range,
                        computed once). Default: False
            noise_scale (float, Tensor or tuple, optional): The same ``sigma`` under the
                        name every noise shares (pass at most one of ``stdevs`` and
                        ``noise_scale``). Default: None
            relative_noise_scale (bool, optional): ``relative_stdevs`` for ``noise_scale``.
                        Default: False
            generator (torch.Generator, optional): Randomness source. Default: None
            return_certificate (bool, optional): Also return the certificate. Default: False
            alpha (float, optional): Failure probability of the band. Default: 0.05
            bound (str, optional): ``"clopper_pearson"`` (binary variant only; the default for
                        it), ``"kl"`` (Bernoulli-KL, never wider than Hoeffding; default for the
                        other variants) or ``"hoeffding"`` (the paper's). Default: None
            **kwargs: Passed to the base attribution method.

        Returns:
            **attributions** (same shape and tuple-ness as ``inputs``), and **certificate**
            if ``return_certificate=True``.
        """
        return self._run_preset(
            inputs,
            target,
            additional_forward_args,
            kwargs,
            nt_samples=nt_samples,
            nt_samples_batch_size=nt_samples_batch_size,
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
