"""One call of the engine, resolved: every argument checked once, into a frozen :class:`Plan`.

``CertifiedWrapper.attribute`` and ``loss_gradient`` only build a plan (:func:`resolve_plan`)
and hand it to a runner (``runners.py``); runners never re-validate. Presets change what a plan
is built from (their class configuration), not how.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from captum.attr import Attribution, GradientAttribution
from torch import Tensor, nn

from captum_certified._utils.expansion import format_baselines
from captum_certified._utils.validation import (
    check_choice,
    check_positive_int,
    check_probability,
    format_float_inputs,
)
from captum_certified.attr._core.certifiable_options import check_certifiable_options
from captum_certified.attr._core.certification_conditions import (
    refuse_batch_statistics,
    refuse_input_dependent_scale,
    refuse_shared_randomness,
)
from captum_certified.attr._core.default_certifiers import default_certifier
from captum_certified.attr._core.method_call import NOISY_ARGMAX
from captum_certified.attr._core.noise_scale import (
    check_certifiable_scales,
    resolve_scale_argument,
)
from captum_certified.certify import BandCertifier, CertificationTarget, Certifier
from captum_certified.noise import NoiseDistribution
from captum_certified.transforms import AttributionTransform

if TYPE_CHECKING:
    from captum_certified.attr._core.certified_wrapper import CertifiedWrapper

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


class Mode(enum.Enum):
    """What a runner does with the sampled maps."""

    STREAM = "stream"  # statistics chunk by chunk, no graph (smoothing, certification)
    GRAPH = "graph"  # the smoothed map with every chunk's graph (create_graph=True)
    LOSS_GRADIENT = "loss_gradient"  # a loss of the map and its gradient, two passes


@dataclass(frozen=True)
class Plan:
    """Everything a runner needs, checked; nothing here is validated again.

    ``noise_site`` says where the noise enters the computation: ``"inputs"`` (added to the
    inputs, the certificate is stated in input space) or ``"layer"`` (added to a module's
    activation ``h``: ``inputs`` are then ``(h,)``, ``method`` the method on the activation
    and the model's own inputs are passed as ``additional_forward_args``; the certificate is
    stated in ``h``'s space, ``docs/certificates.rst`` section 11).
    """

    mode: Mode
    method: Attribution
    method_kwargs: Mapping[str, Any]
    inputs: tuple[Tensor, ...]
    is_tuple: bool
    scales: tuple[Tensor, ...]
    noise: NoiseDistribution
    noise_site: Literal["inputs", "layer"]
    transform: AttributionTransform
    certifier: Certifier | None
    alpha: float
    bound: str | None
    nt_type: str
    nt_samples: int
    chunk: int
    draw_baseline_from_distrib: bool
    want_delta: bool
    generator: torch.Generator | None
    noise_layer: nn.Module | None = None
    #: The stopping rule: None samples ``nt_samples`` per example; a target samples each
    #: example until it is decided (the sequential runner).
    stop_when: CertificationTarget | None = None

    @property
    def batch(self) -> int:
        return self.inputs[0].shape[0]

    @property
    def flat(self) -> bool:
        """Outputs concatenated into one ``(bsz, d)`` map (a transform or a certificate)."""
        return not self.transform.is_identity or self.certifier is not None

    @property
    def requires_grad(self) -> bool:
        """Noisy rows must require grad (gradient methods)."""
        return isinstance(self.method, GradientAttribution)


def check_transform(transform: Any) -> AttributionTransform:
    if not isinstance(transform, AttributionTransform):
        raise TypeError(
            f"`transform` must be an AttributionTransform, got {type(transform).__name__}"
        )
    return transform


def check_noise(noise: Any, allowed: tuple[type[NoiseDistribution], ...]) -> NoiseDistribution:
    """A noise object of one of the ``allowed`` classes (names are not accepted)."""
    if not isinstance(noise, allowed):
        names = " or ".join(c.__name__ for c in allowed)
        raise TypeError(
            f"`noise` must be a {names} instance (a noise object from "
            f"captum_certified.noise, not a name), got {noise!r}"
        )
    return noise


def _to_layer(
    wrapper: CertifiedWrapper,
    inputs: Any,
    kwargs: dict[str, Any],
    return_certificate: bool,
) -> tuple[Tensor, Attribution, dict[str, Any]]:
    """The call moved to ``wrapper.noise_layer``'s activation: ``(h, method, kwargs)``.

    The model's inputs (token ids, masks) pass through unchanged as additional forward
    arguments. With a certificate, batch statistics are refused before the activation is
    captured (the capture runs the model once, which would update running statistics).
    """
    from captum_certified.attr._core.layer_noise import to_layer_space

    raw = inputs if isinstance(inputs, tuple) else (inputs,)
    if not raw or not all(isinstance(t, Tensor) for t in raw):
        raise TypeError("`inputs` must be a tensor or a tuple of tensors (the model's inputs)")
    if any(t.shape[0] != raw[0].shape[0] for t in raw):
        raise ValueError("`inputs` must share their first (batch) dimension")
    if return_certificate:
        refuse_batch_statistics(wrapper.attribution_method)
    assert wrapper.noise_layer is not None
    call = to_layer_space(wrapper.attribution_method, wrapper.noise_layer, raw, kwargs)
    return call.inputs[0], call.method, call.kwargs


def check_stop_when(
    stop_when: Any,
    certifier: Certifier | None,
    bound: str | None,
    want_delta: bool,
    draw_baseline_from_distrib: bool,
) -> None:
    """Refuse what sequential certification cannot honour, before any sampling."""
    if not isinstance(stop_when, CertificationTarget):
        raise TypeError(
            f"`stop_when` must be a CertificationTarget, got {type(stop_when).__name__}"
        )
    if certifier is None:
        raise ValueError("`stop_when` needs `return_certificate=True`")
    if not (certifier.top_k and isinstance(certifier, BandCertifier)):
        raise ValueError(
            f"`stop_when` needs a top-K certifier; {type(certifier).__name__} answers no "
            "top-K query"
        )
    if bound not in (None, "betting"):
        raise ValueError(
            f"`bound`={bound!r} is a fixed-n band, not valid at a data-dependent stopping "
            "time: with `stop_when` the band is the betting confidence sequence (bound=None)"
        )
    if want_delta:
        raise ValueError("`stop_when` does not return convergence deltas")
    if draw_baseline_from_distrib:
        raise ValueError("`stop_when` with `draw_baseline_from_distrib=True` is not supported")


def resolve_plan(
    wrapper: CertifiedWrapper,
    mode: Mode,
    inputs: Tensor | tuple[Tensor, ...],
    *,
    nt_type: str,
    nt_samples: int,
    nt_samples_batch_size: int | None,
    stdevs: Any,
    stdevs_default: Any,
    draw_baseline_from_distrib: bool,
    noise: NoiseDistribution | None,
    noise_scale: Any,
    relative_stdevs: bool,
    relative_noise_scale: bool,
    transform: AttributionTransform | None,
    generator: torch.Generator | None,
    return_certificate: bool,
    alpha: float,
    bound: str | None,
    kwargs: dict[str, Any],
    stop_when: CertificationTarget | None = None,
) -> Plan:
    """Check every argument of one engine call (in the order errors are reported) into a plan.

    Every condition a certificate's theorem needs is refused here, before any sampling.
    """
    method = wrapper.attribution_method
    noise_layer = wrapper.noise_layer
    if noise_layer is not None:
        inputs, method, kwargs = _to_layer(wrapper, inputs, kwargs, return_certificate)
    inputs_t, is_tuple = format_float_inputs(inputs)
    check_choice(nt_type, NT_TYPES, "nt_type")
    if nt_type not in wrapper.nt_types:
        raise ValueError(
            f"`nt_type`={nt_type!r} is not available in {type(wrapper).__name__}: a preset "
            "returns the mean of its per-sample maps (nt_type='smoothgrad'); use "
            "CertifiedWrapper for smoothgrad_sq or vargrad (without a certificate)"
        )
    nt_samples = check_positive_int(nt_samples, "nt_samples")
    chunk = (
        nt_samples
        if nt_samples_batch_size is None
        else min(nt_samples, check_positive_int(nt_samples_batch_size, "nt_samples_batch_size"))
    )
    noise_ = wrapper.noise if noise is None else check_noise(noise, wrapper.noise_types)
    if transform is None:
        certified = return_certificate and wrapper.certified_transform is not None
        transform = wrapper.certified_transform if certified else wrapper.transform
    transform_ = check_transform(transform)
    scale = resolve_scale_argument(
        noise_,
        stdevs=stdevs,
        stdevs_default=stdevs_default,
        noise_scale=noise_scale,
        relative_stdevs=relative_stdevs,
        relative_noise_scale=relative_noise_scale,
    )
    certifier = None
    if return_certificate:
        alpha = check_probability(alpha, "alpha")
        check_certifiable_options(nt_type=nt_type, inputs=inputs_t)
        refuse_input_dependent_scale(scale.relative, scale.relative_name)
        refuse_shared_randomness(method)
        certifier = wrapper.certifier or default_certifier(noise_)
        certifier.check_noise(noise_)
        certifier.check_transform(transform_)
        refuse_batch_statistics(method)
    scales = wrapper.noise_scales(
        scale.value, inputs_t, noise=noise_, relative=scale.relative, name=scale.name
    )
    if return_certificate:
        check_certifiable_scales(scales, inputs_t, name=scale.name)
    kwargs = {**wrapper.method_defaults, **kwargs}
    target = kwargs.get("target")
    if isinstance(target, str) and target != NOISY_ARGMAX:
        raise ValueError(f"`target` string must be {NOISY_ARGMAX!r}, got {target!r}")
    want_delta = bool(kwargs.get("return_convergence_delta", False))
    want_delta = want_delta and method.has_convergence_delta()
    if "baselines" in kwargs:
        kwargs["baselines"] = format_baselines(kwargs["baselines"], inputs_t)
    if mode is not Mode.STREAM and (return_certificate or want_delta):
        raise ValueError(
            "`create_graph=True` returns a differentiable map only: no certificate "
            "or convergence delta"
        )
    if mode is Mode.LOSS_GRADIENT and draw_baseline_from_distrib:
        raise ValueError("`draw_baseline_from_distrib=True` cannot be replayed by loss_gradient")
    if stop_when is not None:
        check_stop_when(stop_when, certifier, bound, want_delta, draw_baseline_from_distrib)
    return Plan(
        mode=mode,
        method=method,
        method_kwargs=kwargs,
        inputs=inputs_t,
        is_tuple=is_tuple,
        scales=scales,
        noise=noise_,
        noise_site="inputs" if noise_layer is None else "layer",
        noise_layer=noise_layer,
        transform=transform_,
        certifier=certifier,
        alpha=alpha,
        bound=bound,
        nt_type=nt_type,
        nt_samples=nt_samples,
        chunk=chunk,
        draw_baseline_from_distrib=draw_baseline_from_distrib,
        want_delta=want_delta,
        generator=generator,
        stop_when=stop_when,
    )
