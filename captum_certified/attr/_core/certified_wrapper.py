"""The smoothing engine: noise -> base attribution -> per-sample transform -> statistics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

import torch
from captum.attr import Attribution, GradientAttribution, NoiseTunnel
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.captum_compat import call_attribute
from captum_certified._utils.expansion import (
    expand_additional_forward_args,
    expand_baselines,
    expand_feature_mask,
    expand_target,
    format_baselines,
)
from captum_certified._utils.validation import (
    check_choice,
    check_positive_int,
    check_probability,
    format_float_inputs,
    rng_guard,
)
from captum_certified.attr._core import sampling
from captum_certified.attr._core.certifiable_options import check_certifiable_options
from captum_certified.attr._core.certification_conditions import (
    batch_statistics_guard,
    refuse_batch_statistics,
    refuse_input_dependent_scale,
    refuse_shared_randomness,
)
from captum_certified.attr._core.default_certifiers import default_certifier
from captum_certified.attr._core.noise_scale import (
    STDEVS_DEFAULT,
    check_certifiable_scales,
    parse_scales,
    resolve_scale_argument,
    smallest_scale,
)
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
                    ``IntegratedGradients``, a layer method, ...). A ``NoiseTunnel``
                    (Captum's or this package's drop-in) is unwrapped to the method it wraps.
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
        ...                     target=3, generator=torch.Generator().manual_seed(0))
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
        attribution_method = _unwrap_drop_in(attribution_method)
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
        stdevs: float | int | Tensor | tuple[float | int | Tensor, ...] = STDEVS_DEFAULT,
        draw_baseline_from_distrib: bool = False,
        *,
        noise: str | NoiseDistribution | None = None,
        transform: AttributionTransform | None = None,
        relative_stdevs: bool = False,
        noise_scale: float | int | Tensor | tuple[float | int | Tensor, ...] | None = None,
        relative_noise_scale: bool = False,
        generator: torch.Generator | None = None,
        return_certificate: bool = False,
        alpha: float = 0.05,
        bound: str | None = None,
        create_graph: bool = False,
        **kwargs: Any,
    ) -> Any:
        r"""Smoothed attributions (and optionally a certificate).

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Input batch (dim 0 = examples), floating
                        point. Tuple in, tuple out.
            nt_type (str, optional): ``"smoothgrad"`` (mean of the per-sample maps),
                        ``"smoothgrad_sq"`` (mean of squares) or ``"vargrad"`` (variance,
                        computed with a streaming Chan/Welford update). Only
                        ``"smoothgrad"`` returns the certified map ``E[s]``: the others are
                        refused with ``return_certificate=True``. Default: "smoothgrad"
            nt_samples (int, optional): Noisy samples per example. Default: 5
            nt_samples_batch_size (int, optional): Samples per example evaluated together;
                        bounds peak memory. None evaluates all at once. Default: None
            stdevs (float, int, Tensor or tuple, optional): Standard deviation of Gaussian
                        noise (Captum's meaning). A tensor may give per-example, per-channel
                        or per-feature scales (broadcast against the input); a tuple gives one
                        scale per input tensor. For other noises pass ``noise_scale``
                        (``stdevs`` still means their native scale for one release, with a
                        ``DeprecationWarning``). Default: 1.0
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
            noise_scale (float, int, Tensor or tuple, optional): The noise's native scale,
                        in the same forms as ``stdevs``: sigma for Gaussian noise (the same
                        as ``stdevs``), the scale ``b`` for Laplace noise (standard deviation
                        ``sqrt(2) b``), the density scale ``sigma`` of generalized Gaussian
                        noise (at ``q = 2`` that is ``N(0, sigma^2 / 2)``), the half-width of
                        the uniform cube, the radius of the uniform l2 ball. Pass at most one
                        of ``stdevs`` and ``noise_scale``; None: ``stdevs`` applies.
                        Default: None
            relative_noise_scale (bool, optional): ``relative_stdevs`` for ``noise_scale``.
                        Default: False
            generator (torch.Generator, optional): Source of all randomness (noise and
                        baseline draws). None uses the global torch RNG. Default: None
            return_certificate (bool, optional): Also return a certificate (needs a
                        transform with values in [0, 1]). Refused, with a ``ValueError``,
                        when the certificate's conditions cannot hold: a relative scale
                        (``relative_stdevs`` or ``relative_noise_scale``), a noise the
                        certifier is not proven for, a method that shares randomness across
                        rows (``ShapleyValueSampling``, ``FeaturePermutation``), a batch-
                        statistics layer (BatchNorm in train mode) in the model, an
                        ``nt_type`` other than ``"smoothgrad"``; and, with a ``TypeError``,
                        16-bit inputs (``float16``, ``bfloat16``: cast them to float32).
                        Every argument's status is listed in :doc:`/guide`. Default: False
            alpha (float, optional): Failure probability of the certificate's confidence
                        band (confidence ``1 - alpha``). Default: 0.05
            bound (str, optional): Band method: ``"clopper_pearson"`` (binary maps only),
                        ``"kl"`` (Bernoulli-KL, any [0, 1] map), ``"hoeffding"`` (any [0, 1]
                        map, the paper's), or None for Clopper-Pearson on binary maps and KL
                        otherwise. Default: None
            create_graph (bool, optional): Return a map that is differentiable with respect to
                        ``inputs`` (and the model's parameters), like zennit's
                        ``Gradient(create_graph=True)``: the same noise, method and transform,
                        with every chunk's graph kept (memory grows with ``nt_samples``; see
                        :meth:`loss_gradient` for a bounded-memory gradient). Needs a Captum
                        method that uses ``gradient_func`` (``Saliency``,
                        ``InputXGradient``, ``IntegratedGradients``, ...) and a differentiable
                        transform; no certificate or delta. Default: False
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
        loss = kwargs.pop("_loss", None)  # set by loss_gradient
        default_scale = kwargs.pop("_default_scale", 1.0)  # set by the presets
        inputs_t, is_tuple = format_float_inputs(inputs)
        batch = inputs_t[0].shape[0]
        check_choice(nt_type, NT_TYPES, "nt_type")
        nt_samples = check_positive_int(nt_samples, "nt_samples")
        chunk = (
            nt_samples
            if nt_samples_batch_size is None
            else min(nt_samples, check_positive_int(nt_samples_batch_size, "nt_samples_batch_size"))
        )
        noise_dist = self.noise if noise is None else resolve_noise(noise)
        transform_ = self.transform if transform is None else _check_transform(transform)
        scale_arg = resolve_scale_argument(
            noise_dist,
            stdevs=stdevs,
            noise_scale=noise_scale,
            relative_stdevs=relative_stdevs,
            relative_noise_scale=relative_noise_scale,
            default=default_scale,
        )
        certifier = None
        if return_certificate:
            # every condition the certificate's theorem needs, refused before any sampling
            alpha = check_probability(alpha, "alpha")
            check_certifiable_options(nt_type=nt_type, inputs=inputs_t)
            refuse_input_dependent_scale(scale_arg.relative, scale_arg.relative_name)
            refuse_shared_randomness(self.attribution_method)
            certifier = self.certifier or default_certifier(noise_dist)
            certifier.check_noise(noise_dist)
            certifier.check_transform(transform_)
            refuse_batch_statistics(self.attribution_method)
        scales = parse_scales(
            scale_arg.value,
            inputs_t,
            relative=scale_arg.relative,
            name=scale_arg.name,
            allow_zero=True,
        )
        if return_certificate:
            check_certifiable_scales(scales, inputs_t, name=scale_arg.name)
        target = kwargs.get("target")
        if isinstance(target, str) and target != NOISY_ARGMAX:
            raise ValueError(f"`target` string must be {NOISY_ARGMAX!r}, got {target!r}")
        want_delta = bool(kwargs.get("return_convergence_delta", False))
        want_delta = want_delta and self.attribution_method.has_convergence_delta()
        if "baselines" in kwargs:
            kwargs["baselines"] = format_baselines(kwargs["baselines"], inputs_t)

        flat = not transform_.is_identity or return_certificate
        guard = rng_guard(generator, inputs_t)
        deltas: list[Tensor] = []
        per_sample = self._per_sample(
            inputs_t,
            is_tuple,
            kwargs,
            draw_baseline_from_distrib,
            deltas if want_delta else None,
            generator,
        )
        requires_grad = isinstance(self.attribution_method, GradientAttribution)
        if create_graph or loss is not None:
            if return_certificate or want_delta:
                raise ValueError(
                    "`create_graph=True` returns a differentiable map only: no certificate "
                    "or convergence delta"
                )
            if loss is not None and draw_baseline_from_distrib:
                raise ValueError(
                    "`draw_baseline_from_distrib=True` cannot be replayed by loss_gradient"
                )
            with guard:
                if loss is not None:
                    loss_fn, wrt = loss
                    gen = sampling.replayable(generator, inputs_t[0].device)
                    return sampling.smoothed_loss_gradient(
                        lambda g, graph: sampling.sample_chunks(
                            inputs_t,
                            scales,
                            noise_dist,
                            nt_samples,
                            chunk,
                            g,
                            per_sample,
                            create_graph=graph,
                            requires_grad=requires_grad,
                        ),
                        gen,
                        batch,
                        transform_,
                        loss_fn,
                        inputs_t if wrt is None else tuple(wrt),
                        single_pass=sampling.single_chunk(nt_samples, chunk),
                    )
                chunks = sampling.sample_chunks(
                    inputs_t,
                    scales,
                    noise_dist,
                    nt_samples,
                    chunk,
                    generator,
                    per_sample,
                    create_graph=True,
                    requires_grad=requires_grad,
                )
                maps = sampling.smoothed_graph(chunks, batch, transform_, nt_type)
            return maps if per_sample.returned_tuple[0] else maps[0]  # type: ignore[attr-defined]

        # with a certificate, a batch-statistics module hidden from the checks above (a model
        # inside a closure) is refused when it runs, before it touches its running statistics
        with torch.no_grad(), guard, batch_statistics_guard(enabled=return_certificate):
            chunks = sampling.sample_chunks(
                inputs_t,
                scales,
                noise_dist,
                nt_samples,
                chunk,
                generator,
                per_sample,
                requires_grad=requires_grad,
            )
            track = nt_type != "smoothgrad" or (
                certifier is not None and certifier.needs_second_moment
            )
            stats, shapes = sampling.stream_moments(
                chunks,
                batch,
                transform_,
                flat=flat,
                second_moment=track,
                check=None
                if certifier is None
                else (lambda maps: certifier.check_samples(maps, transform_)),
            )
            dtype = inputs_t[0].dtype
            results = [_reduce(s, nt_type) for s in stats]
            if flat:
                shapes = sampling.output_shapes(transform_, shapes, results[0].shape[1])
                results = list(sampling.unflatten_outputs(results[0], shapes))
            attributions = tuple(r.to(dtype) for r in results)
            certificate = None
            if certifier is not None:
                certificate = certifier.certify(
                    stats[0],
                    scale=smallest_scale(scales, inputs_t),
                    noise=noise_dist,
                    alpha=alpha,
                    bound=bound,
                    transform=transform_,
                    num_input_features=sum(int(x[0].numel()) for x in inputs_t),
                )
        out_is_tuple = per_sample.returned_tuple[0]  # type: ignore[attr-defined]
        result: Any = attributions if out_is_tuple else attributions[0]
        extras: list[Any] = []
        if want_delta:
            extras.append(torch.cat(deltas, dim=0))
        if certificate is not None:
            extras.append(certificate)
        return (result, *extras) if extras else result

    def loss_gradient(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        loss_fn: Callable[[Any], Tensor],
        *,
        wrt: Sequence[Tensor] | None = None,
        **attribute_kwargs: Any,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        r"""``loss_fn`` of the smoothed map and its gradient, in memory bounded by the chunk.

        Computes ``L = loss_fn(attribute(inputs, ...))`` and ``dL/d wrt`` as if
        ``attribute(..., create_graph=True)`` had been differentiated, but in two passes over
        the same noise: the map without a graph, then chunk by chunk the vector-Jacobian
        product with ``dL/d map``, freeing each chunk's graph. Peak memory depends on
        ``nt_samples_batch_size``, not on ``nt_samples``. ``loss_fn`` must depend on ``wrt``
        only through the map.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Input batch.
            loss_fn (Callable): Maps the smoothed map (a tensor, or a tuple for tuple inputs
                        or methods with tuple outputs) to a ``(bsz,)`` or scalar loss.
            wrt (Sequence[Tensor], optional): Tensors to differentiate; None: the inputs
                        (as a tuple). Default: None
            **attribute_kwargs: Arguments of :meth:`attribute` (``nt_type="smoothgrad"``
                        only; the noise is replayed from ``generator``, or from a generator
                        seeded from the global RNG when None).

        Returns:
            **loss** (detached) and **gradients** (one per ``wrt`` tensor, as a tuple).

        Examples::

            >>> from captum.attr import Saliency
            >>> sg = CertifiedWrapper(Saliency(model))
            >>> loss, (grad,) = sg.loss_gradient(
            ...     x, lambda m: m.flatten(1)[:, :10].sum(1), target=3, nt_samples=1024,
            ...     nt_samples_batch_size=128, stdevs=0.2,
            ...     generator=torch.Generator().manual_seed(0))
        """
        if not callable(loss_fn):
            raise TypeError(f"`loss_fn` must be callable, got {type(loss_fn).__name__}")
        if attribute_kwargs.get("nt_type", "smoothgrad") != "smoothgrad":
            raise ValueError("loss_gradient supports nt_type='smoothgrad' only")
        is_tuple = isinstance(inputs, tuple)
        if wrt is None:  # differentiate fresh leaves: the caller's tensors stay untouched
            items: tuple[Any, ...] = inputs if isinstance(inputs, tuple) else (inputs,)
            leaves = tuple(
                t.detach().requires_grad_() if isinstance(t, Tensor) else t for t in items
            )
            inputs = leaves if is_tuple else leaves[0]
            wrt = leaves

        def on_map(maps: tuple[Tensor, ...]) -> Tensor:
            return loss_fn(maps if is_tuple or len(maps) > 1 else maps[0])

        return self.attribute.__wrapped__(  # type: ignore[attr-defined]
            self, inputs, _loss=(on_map, wrt), **attribute_kwargs
        )

    def _run_preset(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: Any,
        additional_forward_args: Any,
        kwargs: dict[str, Any],
        **engine: Any,
    ) -> Any:
        """A preset's call of the engine: SmoothGrad averaging of its per-sample maps."""
        if "nt_type" in kwargs:  # a preset returns (and certifies) the mean map only
            raise ValueError(
                f"`nt_type` is not an argument of {type(self).__name__}: a preset returns the "
                "mean of its per-sample maps (nt_type='smoothgrad'); use CertifiedWrapper for "
                "smoothgrad_sq or vargrad (without a certificate)"
            )
        if additional_forward_args is not None:
            kwargs["additional_forward_args"] = additional_forward_args
        return CertifiedWrapper.attribute.__wrapped__(  # type: ignore[attr-defined]
            self, inputs, nt_type="smoothgrad", target=target, **engine, **kwargs
        )

    def attribute_future(self) -> None:
        r"""Not supported: smoothing runs synchronously."""
        raise NotImplementedError("attribute_future is not implemented for CertifiedWrapper")

    # -- internals ---------------------------------------------------------------------

    def _per_sample(
        self,
        inputs: tuple[Tensor, ...],
        is_tuple: bool,
        kwargs: dict[str, Any],
        draw_baseline_from_distrib: bool,
        deltas: list[Tensor] | None,
        generator: torch.Generator | None = None,
    ) -> sampling.PerSample:
        """The wrapped method on one chunk of noisy rows (the core's ``per_sample``)."""
        target = kwargs.get("target")
        expanded_cache: dict[int, dict[str, Any]] = {}

        def per_sample(noisy: tuple[Tensor, ...], n_chunk: int, graph: bool) -> tuple:
            if n_chunk not in expanded_cache or draw_baseline_from_distrib:
                expanded_cache[n_chunk] = self._expand_kwargs(
                    kwargs, inputs, n_chunk, draw_baseline_from_distrib, generator
                )
            call_kwargs = dict(expanded_cache[n_chunk])
            if isinstance(target, str):
                call_kwargs["target"] = self._noisy_argmax(noisy, is_tuple, call_kwargs)
            out = self._call_method(noisy if is_tuple else noisy[0], call_kwargs, graph)
            if deltas is not None:
                out, delta = out
                deltas.append(delta)
            # tuple out iff the method returns a tuple (as NoiseTunnel: a layer method may
            # return one tensor for tuple inputs, or a tuple for one input tensor)
            out_is_tuple = isinstance(out, tuple)
            outs = out if out_is_tuple else (out,)
            if not all(isinstance(o, Tensor) for o in outs):
                raise TypeError(
                    "`attribution_method` must return a tensor or a tuple of tensors, got "
                    f"{type(out).__name__} (for a list of layers, wrap one layer at a time)"
                )
            returned_tuple[:] = [out_is_tuple]
            return outs

        returned_tuple: list[bool] = [is_tuple]
        per_sample.returned_tuple = returned_tuple  # type: ignore[attr-defined]
        return per_sample

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

    def _call_method(self, inputs: Any, kwargs: dict[str, Any], graph: bool = False) -> Any:
        # Captum's gradient methods differentiate every noisy sample's output as its own root;
        # the call uses the identical single-root gradient (with a graph in graph mode).
        return call_attribute(self.attribution_method, inputs, kwargs, graph)


def _unwrap_drop_in(method: Any) -> Any:
    """This package's drop-in ``NoiseTunnel`` is unwrapped like Captum's (not smoothed twice)."""
    from captum_certified.attr._core.noise_tunnel import NoiseTunnel as DropIn

    if type(method) is not DropIn:
        return method
    if (
        not method.transform.is_identity
        or method.certifier is not None
        or method.noise.name != ("gaussian")
    ):
        raise ValueError(
            "`attribution_method` is a NoiseTunnel with its own noise, transform or certifier, "
            "which the wrapper would not use: pass them to the wrapper and wrap "
            "NoiseTunnel.attribution_method"
        )
    return method.attribution_method


def _reduce(stats: StreamingMoments, nt_type: str) -> Tensor:
    if nt_type == "smoothgrad":
        return stats.mean
    if nt_type == "smoothgrad_sq":
        return stats.second_moment
    return stats.variance


def _check_transform(transform: Any) -> AttributionTransform:
    if not isinstance(transform, AttributionTransform):
        raise TypeError(
            f"`transform` must be an AttributionTransform, got {type(transform).__name__}"
        )
    return transform
