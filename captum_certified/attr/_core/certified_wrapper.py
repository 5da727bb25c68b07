"""The smoothing engine: noise -> base attribution -> per-sample transform -> statistics."""

from __future__ import annotations

import contextlib
from typing import Any, Literal, overload

import torch
from captum.attr import Attribution, GradientAttribution, NoiseTunnel
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.captum_compat import compute_gradients, summed_output_gradients
from captum_certified._utils.expansion import (
    expand_additional_forward_args,
    expand_baselines,
    expand_feature_mask,
    expand_target,
    format_baselines,
)
from captum_certified._utils.validation import (
    check_finite_inputs,
    check_positive_int,
    check_probability,
)
from captum_certified.attr._core.certification_conditions import (
    batch_statistics_guard,
    refuse_batch_statistics,
    refuse_input_dependent_scale,
    refuse_shared_randomness,
)
from captum_certified.attr._core.default_certifiers import default_certifier
from captum_certified.attr._core.noise_scale import expand_scale, parse_scales, smallest_scale
from captum_certified.certify import Certificate, Certifier, StreamingMoments
from captum_certified.noise import NoiseDistribution, resolve_noise
from captum_certified.transforms import AttributionTransform, Identity

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")

#: Pass as ``target`` to differentiate each noisy sample's own top class (Levine et al.).
NOISY_ARGMAX = "noisy_argmax"


class CertifiedWrapper(Attribution):
    r"""Smooth any Captum attribution over input noise, optionally with a certificate.

    For each example ``x`` it draws ``nt_samples`` noisy copies ``x + eps_t``, attributes
    each with the wrapped method, maps each attribution through a per-sample ``transform``
    and streams per-example statistics chunk by chunk (peak memory depends on
    ``nt_samples_batch_size``, never on ``nt_samples``). With the identity transform and
    Gaussian noise it computes exactly what :class:`captum.attr.NoiseTunnel` computes, from
    the same random numbers. With a [0, 1]-valued transform, ``return_certificate=True``
    adds a certificate of how much the expected smoothed map's top-K can change.

    Args:
        attribution_method (Attribution): Any Captum attribution instance (``Saliency``,
                    ``IntegratedGradients``, a layer method, ...). A ``NoiseTunnel`` is
                    unwrapped to the method it wraps.
        noise (str or NoiseDistribution, optional): Default noise family. Default: "gaussian"
        transform (AttributionTransform, optional): Default per-sample map.
                    Default: :class:`~captum_certified.transforms.Identity`
        certifier (Certifier, optional): Certificate builder; None uses the noise's default
                    (Levine et al.'s Phi-bound top-K certificate for Gaussian noise).
                    Default: None

    Examples::

        >>> from captum.attr import IntegratedGradients
        >>> cw = CertifiedWrapper(IntegratedGradients(model))
        >>> attr = cw.attribute(x, nt_type="smoothgrad", nt_samples=64, stdevs=0.2,
        >>>                     target=3, generator=torch.Generator().manual_seed(0))
    """

    def __init__(
        self,
        attribution_method: Attribution,
        *,
        noise: str | NoiseDistribution = "gaussian",
        transform: AttributionTransform | None = None,
        certifier: Certifier | None = None,
    ) -> None:
        if isinstance(attribution_method, NoiseTunnel):
            attribution_method = attribution_method.attribution_method
        if not isinstance(attribution_method, Attribution):
            raise TypeError(
                "`attribution_method` must be a captum.attr.Attribution instance, got "
                f"{type(attribution_method).__name__}"
            )
        self.attribution_method = attribution_method
        self.noise = resolve_noise(noise)
        self.transform = _check_transform(transform if transform is not None else Identity())
        self.certifier = certifier
        super().__init__(attribution_method.forward_func)

    @property
    def multiplies_by_inputs(self) -> bool:
        return self.attribution_method.multiplies_by_inputs

    def has_convergence_delta(self) -> bool:
        return self.attribution_method.has_convergence_delta()

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        nt_type: str = ...,
        nt_samples: int = ...,
        nt_samples_batch_size: int | None = ...,
        stdevs: Any = ...,
        draw_baseline_from_distrib: bool = ...,
        *,
        return_certificate: Literal[True],
        **kwargs: Any,
    ) -> tuple[Any, Certificate]: ...

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        nt_type: str = ...,
        nt_samples: int = ...,
        nt_samples_batch_size: int | None = ...,
        stdevs: Any = ...,
        draw_baseline_from_distrib: bool = ...,
        *,
        return_certificate: Literal[False] = False,
        **kwargs: Any,
    ) -> Any: ...

    @log_usage()
    def attribute(  # type: ignore[misc]
        self,
        inputs: Tensor | tuple[Tensor, ...],
        nt_type: str = "smoothgrad",
        nt_samples: int = 5,
        nt_samples_batch_size: int | None = None,
        stdevs: float | int | Tensor | tuple[float | int | Tensor, ...] = 1.0,
        draw_baseline_from_distrib: bool = False,
        *,
        noise: str | NoiseDistribution | None = None,
        transform: AttributionTransform | None = None,
        relative_stdevs: bool = False,
        generator: torch.Generator | None = None,
        return_certificate: bool = False,
        alpha: float = 0.05,
        bound: str | None = None,
        **kwargs: Any,
    ) -> Any:
        r"""Smoothed attributions (and optionally a certificate).

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Input batch (dim 0 = examples), floating
                        point. Tuple in, tuple out.
            nt_type (str, optional): ``"smoothgrad"`` (mean of the per-sample maps),
                        ``"smoothgrad_sq"`` (mean of squares) or ``"vargrad"`` (variance,
                        computed with a streaming Chan/Welford update).
                        Default: "smoothgrad"
            nt_samples (int, optional): Noisy samples per example. Default: 5
            nt_samples_batch_size (int, optional): Samples per example evaluated together;
                        bounds peak memory. None evaluates all at once. Default: None
            stdevs (float, int, Tensor or tuple, optional): Noise scale (standard deviation
                        for Gaussian noise). A tensor may give per-example, per-channel or
                        per-feature scales (broadcast against the input); a tuple gives one
                        scale per input tensor. Default: 1.0
            draw_baseline_from_distrib (bool, optional): Draw each noisy sample's baseline
                        from the rows of ``baselines`` (with ``generator``). Default: False
            noise (str or NoiseDistribution, optional): Overrides the wrapper's noise.
                        Default: None
            transform (AttributionTransform, optional): Overrides the wrapper's per-sample
                        map. Default: None
            relative_stdevs (bool, optional): Interpret ``stdevs`` as a fraction of each
                        example's value range ``max(x) - min(x)`` (the SmoothGrad paper's
                        and zennit's convention) instead of an absolute scale. Not allowed
                        with ``return_certificate=True``: the scale would depend on the input,
                        which the certificate's theorem excludes; pass an absolute ``stdevs``
                        (e.g. computed once from the dataset's range). Default: False
            generator (torch.Generator, optional): Source of all randomness (noise and
                        baseline draws). None uses the global torch RNG. Default: None
            return_certificate (bool, optional): Also return a certificate (needs a
                        transform with values in [0, 1]). Refused, with a ``ValueError``,
                        when the certificate's conditions cannot hold: a relative scale
                        (``relative_stdevs=True``), a noise the certifier is not proven for,
                        a method that shares randomness across rows
                        (``ShapleyValueSampling``, ``FeaturePermutation``), or a batch-
                        statistics layer (BatchNorm in train mode) in the model. Default: False
            alpha (float, optional): Failure probability of the certificate's confidence
                        band (confidence ``1 - alpha``). Default: 0.05
            bound (str, optional): Band method: ``"clopper_pearson"`` (binary maps only),
                        ``"hoeffding"`` (any [0, 1] map, the paper's), or None for
                        Clopper-Pearson on binary maps and Hoeffding otherwise. Default: None
            **kwargs: Arguments of the wrapped method (``target``, ``baselines``,
                        ``additional_forward_args``, ``n_steps``, ``return_convergence_delta``,
                        ...), expanded per noisy sample as NoiseTunnel does. ``target`` may
                        also be ``"noisy_argmax"``: each noisy sample is attributed to its own
                        top class.

        Returns:
            **attributions**, then **delta** if ``return_convergence_delta=True`` (per noisy
            sample, length ``bsz * nt_samples``, as NoiseTunnel returns it), then
            **certificate** if ``return_certificate=True``.
        """
        is_tuple = isinstance(inputs, tuple)
        inputs_t: tuple[Tensor, ...] = inputs if is_tuple else (inputs,)
        if len(inputs_t) == 0:
            raise ValueError("`inputs` must not be empty")
        check_finite_inputs(inputs_t)
        for i, x in enumerate(inputs_t):
            if not x.is_floating_point():
                raise TypeError(
                    f"`inputs`[{i}] has dtype {x.dtype}: noise can only be added to floating "
                    "point inputs (embed integer ids first)"
                )
        batch = inputs_t[0].shape[0]
        if any(x.shape[0] != batch for x in inputs_t):
            raise ValueError("all `inputs` tensors must have the same batch size (dim 0)")
        if nt_type not in NT_TYPES:
            raise ValueError(f"`nt_type` must be one of {NT_TYPES}, got {nt_type!r}")
        nt_samples = check_positive_int(nt_samples, "nt_samples")
        chunk = (
            nt_samples
            if nt_samples_batch_size is None
            else min(nt_samples, check_positive_int(nt_samples_batch_size, "nt_samples_batch_size"))
        )
        noise_dist = self.noise if noise is None else resolve_noise(noise)
        transform_ = self.transform if transform is None else _check_transform(transform)
        certifier = None
        if return_certificate:
            # every condition the certificate's theorem needs, refused before any sampling
            alpha = check_probability(alpha, "alpha")
            refuse_input_dependent_scale(relative_stdevs, "relative_stdevs")
            refuse_shared_randomness(self.attribution_method)
            certifier = self.certifier or default_certifier(noise_dist)
            certifier.check_noise(noise_dist)
            certifier.check_transform(transform_)
            refuse_batch_statistics(self.attribution_method)
        scales = parse_scales(stdevs, inputs_t, relative=relative_stdevs)
        target = kwargs.get("target")
        if isinstance(target, str) and target != NOISY_ARGMAX:
            raise ValueError(f"`target` string must be {NOISY_ARGMAX!r}, got {target!r}")
        want_delta = bool(kwargs.get("return_convergence_delta", False))
        want_delta = want_delta and self.attribution_method.has_convergence_delta()
        if "baselines" in kwargs:
            kwargs["baselines"] = format_baselines(kwargs["baselines"], inputs_t)

        flat = not transform_.is_identity or return_certificate
        stats: list[StreamingMoments] = []
        # With a generator, the global RNG is left exactly as found even if the model draws
        # from it (dropout in train mode): such draws happen on a forked copy of its state.
        devices = [inputs_t[0].device] if inputs_t[0].device.type == "cuda" else []
        rng_guard = (
            torch.random.fork_rng(devices=devices)
            if generator is not None
            else contextlib.nullcontext()
        )
        shapes: list[torch.Size] = []
        deltas: list[Tensor] = []
        # with a certificate, a batch-statistics module hidden from the check above (a model
        # inside a closure) is refused when it runs, before it touches its running statistics
        with torch.no_grad(), rng_guard, batch_statistics_guard(enabled=return_certificate):
            sizes = [chunk] * (nt_samples // chunk)
            if nt_samples % chunk:
                sizes.append(nt_samples % chunk)
            expanded_cache: dict[int, dict[str, Any]] = {}
            for n_chunk in sizes:
                noisy = self._noisy_inputs(inputs_t, scales, noise_dist, n_chunk, generator)
                if n_chunk not in expanded_cache or draw_baseline_from_distrib:
                    expanded_cache[n_chunk] = self._expand_kwargs(
                        kwargs, inputs_t, n_chunk, draw_baseline_from_distrib, generator
                    )
                call_kwargs = dict(expanded_cache[n_chunk])
                if isinstance(target, str):
                    call_kwargs["target"] = self._noisy_argmax(noisy, is_tuple, call_kwargs)
                out = self._call_method(noisy if is_tuple else noisy[0], call_kwargs)
                if want_delta:
                    out, delta = out
                    deltas.append(delta)
                outs = out if isinstance(out, tuple) else (out,)
                if not stats:
                    shapes = [o.shape[1:] for o in outs]
                    count = 1 if flat else len(outs)
                    track = nt_type != "smoothgrad" or (
                        certifier is not None and certifier.needs_second_moment
                    )
                    stats = [StreamingMoments(track) for _ in range(count)]
                if flat:
                    maps = transform_.from_outputs(tuple(o.detach() for o in outs))
                    if certifier is not None:
                        certifier.check_samples(maps, transform_)
                    stats[0].update(maps.reshape(batch, n_chunk, -1))
                else:
                    for s, o in zip(stats, outs):
                        s.update(o.detach().reshape((batch, n_chunk) + o.shape[1:]))

            dtype = inputs_t[0].dtype
            results = [_reduce(s, nt_type) for s in stats]
            if flat:
                shapes = _output_shapes(transform_, shapes, results[0].shape[1])
                sizes_f = [int(torch.Size(s).numel()) for s in shapes]
                results = [
                    r.reshape((batch,) + tuple(s))
                    for r, s in zip(results[0].split(sizes_f, dim=1), shapes)
                ]
            attributions = tuple(r.to(dtype) for r in results)
            certificate = None
            if certifier is not None:
                certificate = certifier.certify(
                    stats[0],
                    scale=smallest_scale(scales, inputs_t),
                    noise=noise_dist.name,
                    alpha=alpha,
                    bound=bound,
                    transform=transform_,
                    num_input_features=sum(int(x[0].numel()) for x in inputs_t),
                )
        result: Any = attributions if is_tuple else attributions[0]
        extras: list[Any] = []
        if want_delta:
            extras.append(torch.cat(deltas, dim=0))
        if certificate is not None:
            extras.append(certificate)
        return (result, *extras) if extras else result

    def attribute_future(self) -> None:
        r"""Not supported: smoothing runs synchronously."""
        raise NotImplementedError("attribute_future is not implemented for CertifiedWrapper")

    # -- internals ---------------------------------------------------------------------

    def _noisy_inputs(
        self,
        inputs: tuple[Tensor, ...],
        scales: tuple[Tensor, ...],
        noise: NoiseDistribution,
        n: int,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, ...]:
        shapes = [(x.shape[0] * n,) + tuple(x.shape[1:]) for x in inputs]
        expanded_scales = [expand_scale(s, x, n) for s, x in zip(scales, inputs)]
        eps = noise.sample(
            shapes,
            expanded_scales,
            generator=generator,
            dtype=inputs[0].dtype,
            device=inputs[0].device,
        )
        noisy = tuple(x.detach().repeat_interleave(n, dim=0) + e for x, e in zip(inputs, eps))
        if isinstance(self.attribution_method, GradientAttribution):
            noisy = tuple(t.requires_grad_() for t in noisy)
        return noisy

    @staticmethod
    def _expand_kwargs(
        kwargs: dict[str, Any],
        inputs: tuple[Tensor, ...],
        n: int,
        draw: bool,
        generator: torch.Generator | None,
    ) -> dict[str, Any]:
        out = dict(kwargs)
        batch = inputs[0].shape[0]
        if "target" in out and not isinstance(out["target"], str):
            out["target"] = expand_target(out["target"], n, batch)
        if "additional_forward_args" in out:
            out["additional_forward_args"] = expand_additional_forward_args(
                out["additional_forward_args"], n
            )
        if "baselines" in out:
            out["baselines"] = expand_baselines(
                out["baselines"], inputs, n, draw_from_distribution=draw, generator=generator
            )
        if "feature_mask" in out:
            out["feature_mask"] = expand_feature_mask(out["feature_mask"], n)
        return out

    def _noisy_argmax(
        self, noisy: tuple[Tensor, ...], is_tuple: bool, kwargs: dict[str, Any]
    ) -> Tensor:
        args = kwargs.get("additional_forward_args")
        args = () if args is None else args
        logits = self.forward_func(*noisy, *args)
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            raise ValueError("target='noisy_argmax' needs a forward_func returning (N, classes)")
        return logits.argmax(dim=1)

    def _call_method(self, inputs: Any, kwargs: dict[str, Any]) -> Any:
        method = self.attribution_method
        # Captum's gradient methods differentiate every noisy sample's output as its own root;
        # for the duration of the call use the identical single-root gradient (restored after).
        swap = getattr(method, "gradient_func", None) is compute_gradients
        if swap:
            method.gradient_func = summed_output_gradients
        try:
            # Call the undecorated method, as NoiseTunnel does, so usage is logged once;
            # methods without @log_usage() have no __wrapped__ and are called directly.
            unwrapped = getattr(type(method).attribute, "__wrapped__", None)
            if unwrapped is not None:
                return unwrapped(method, inputs, **kwargs)
            return method.attribute(inputs, **kwargs)
        finally:
            if swap:
                method.gradient_func = compute_gradients


def _reduce(stats: StreamingMoments, nt_type: str) -> Tensor:
    if nt_type == "smoothgrad":
        return stats.mean
    if nt_type == "smoothgrad_sq":
        return stats.second_moment
    return stats.variance


def _output_shapes(
    transform: AttributionTransform, shapes: list[torch.Size], width: int
) -> list[torch.Size]:
    # a transform that changes the width without declaring its layout returns one flat map
    out = transform.output_shapes(shapes)
    if sum(int(torch.Size(s).numel()) for s in out) != width:
        return [torch.Size([width])]
    return out


def _check_transform(transform: Any) -> AttributionTransform:
    if not isinstance(transform, AttributionTransform):
        raise TypeError(
            f"`transform` must be an AttributionTransform, got {type(transform).__name__}"
        )
    return transform
