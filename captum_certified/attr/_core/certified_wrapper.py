"""The smoothing engine: noise -> base attribution -> per-sample transform -> statistics."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from captum.attr import Attribution, NoiseTunnel
from captum.log import log_usage
from torch import Tensor, nn

from captum_certified._utils.layers import check_layer
from captum_certified.attr._core.method_call import NOISY_ARGMAX
from captum_certified.attr._core.noise_scale import parse_scales
from captum_certified.attr._core.plan import (
    NT_TYPES,
    Mode,
    check_noise,
    check_transform,
    resolve_plan,
)
from captum_certified.attr._core.runners import run_graph, run_loss_gradient, run_stream
from captum_certified.attr._core.sequential_runner import run_sequential
from captum_certified.attr._core.settings_runner import run_settings
from captum_certified.certify import CertificationTarget, Certifier
from captum_certified.noise import GaussianNoise, NoiseDistribution
from captum_certified.transforms import AttributionTransform, Identity

__all__ = ["NOISY_ARGMAX", "CertifiedWrapper"]


class CertifiedWrapper(Attribution):
    r"""Smooth any Captum attribution over input noise, optionally with a certificate.

    For each example ``x`` it draws ``nt_samples`` noisy copies ``x + eps_t``, attributes
    each with the wrapped method, maps each attribution through a per-sample ``transform``
    and streams per-example statistics chunk by chunk (peak memory depends on
    ``nt_samples_batch_size``, never on ``nt_samples``). With the identity transform and
    Gaussian noise it computes exactly what :class:`captum.attr.NoiseTunnel` computes, from
    the same random numbers. With a [0, 1]-valued transform, ``return_certificate=True``
    adds a certificate of how much the expected smoothed map's top-K can change.

    Presets (:class:`SparseSmoothGrad`, :class:`RenyiRobustSmooth`,
    :class:`UniformSmoothedAttribution`) are this engine with other configuration: the
    defaults of :meth:`attribute` (shown in its signature), the noise, the transform, the
    certifier and the validation of the noise scale.

    Args:
        attribution_method (Attribution): Any Captum attribution instance (``Saliency``,
                    ``IntegratedGradients``, a layer method, ...). A ``NoiseTunnel``
                    (Captum's or this package's drop-in) is unwrapped to the method it wraps.
        noise (NoiseDistribution, optional): Default noise, e.g.
                    :class:`~captum_certified.noise.LaplaceNoise` ``()``; None:
                    :class:`~captum_certified.noise.GaussianNoise` ``()``. Default: None
        transform (AttributionTransform, optional): Default per-sample map.
                    Default: :class:`~captum_certified.transforms.Identity`
        certifier (Certifier, optional): Certificate builder; None uses the noise's default
                    (Levine et al.'s Phi-bound top-K certificate for Gaussian noise).
                    Default: None
        noise_layer (torch.nn.Module, optional): Add the noise to this module's output (a
                    text model's embedding) instead of to the inputs, which then pass through
                    unchanged (token ids stay integers); ``attribute_to_layer_input=True`` in
                    :meth:`attribute` adds it to the module's input. The wrapped method runs
                    on the module's activation (a layer method on the same module is replaced
                    by its activation-space twin, which computes the same map); certificates
                    are stated for l2 perturbations of that activation
                    (:doc:`/certificates`, section 11). None: the inputs. Default: None

    Examples::

        >>> from captum.attr import IntegratedGradients
        >>> cw = CertifiedWrapper(IntegratedGradients(model))
        >>> attr = cw.attribute(x, nt_type="smoothgrad", nt_samples=64, stdevs=0.2,
        ...                     target=3, generator=torch.Generator().manual_seed(0))
    """

    #: Noise classes :meth:`attribute` accepts (a preset may narrow them).
    noise_types: ClassVar[tuple[type[NoiseDistribution], ...]] = (NoiseDistribution,)
    #: ``nt_type`` values :meth:`attribute` accepts (a preset returns the mean map only).
    nt_types: ClassVar[tuple[str, ...]] = NT_TYPES

    def __init__(
        self,
        attribution_method: Attribution,
        *,
        noise: NoiseDistribution | None = None,
        transform: AttributionTransform | None = None,
        certifier: Certifier | None = None,
        noise_layer: nn.Module | None = None,
    ) -> None:
        if isinstance(attribution_method, NoiseTunnel):
            attribution_method = attribution_method.attribution_method
        attribution_method = _unwrap_drop_in(attribution_method)
        if isinstance(attribution_method, CertifiedWrapper):
            # smoothing a smoothed method would draw its inner noise from the global RNG (not
            # `generator`) and certify a map the caller did not ask for
            raise ValueError(
                f"`attribution_method` is a {type(attribution_method).__name__}, which already "
                "smooths: wrap its base method (`.attribution_method`) instead, or use it directly"
            )
        if not isinstance(attribution_method, Attribution):
            raise TypeError(
                "`attribution_method` must be a captum.attr.Attribution instance, got "
                f"{type(attribution_method).__name__}"
            )
        self.attribution_method = attribution_method
        self.noise = GaussianNoise() if noise is None else check_noise(noise, self.noise_types)
        self.transform = check_transform(transform if transform is not None else Identity())
        #: The per-sample map of certified calls; None: :attr:`transform`.
        self.certified_transform: AttributionTransform | None = None
        self.certifier = certifier
        self.noise_layer = None if noise_layer is None else check_layer(noise_layer)
        #: Defaults of the wrapped method's own arguments (a call's arguments override them).
        self.method_defaults: dict[str, Any] = {}
        super().__init__(attribution_method.forward_func)

    @property
    def multiplies_by_inputs(self) -> bool:
        return self.attribution_method.multiplies_by_inputs

    def has_convergence_delta(self) -> bool:
        return self.attribution_method.has_convergence_delta()

    def noise_scales(
        self,
        value: Any,
        inputs: tuple[Tensor, ...],
        *,
        noise: NoiseDistribution,
        relative: bool,
        name: str,
    ) -> tuple[Tensor, ...]:
        """One checked scale tensor per input (a preset may constrain the scales).

        Args:
            value: The call's ``stdevs`` or ``noise_scale``.
            inputs: The formatted inputs.
            noise: The call's noise.
            relative: Whether ``value`` is a fraction of each example's value range.
            name: The argument's name, for errors.
        """
        return parse_scales(value, inputs, relative=relative, name=name, allow_zero=True)

    @log_usage()
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        nt_type: str = "smoothgrad",
        nt_samples: int = 5,
        nt_samples_batch_size: int | None = None,
        stdevs: float | int | Tensor | tuple[float | int | Tensor, ...] | None = 1.0,
        draw_baseline_from_distrib: bool = False,
        *,
        noise: NoiseDistribution | None = None,
        noise_scale: float | int | Tensor | tuple[float | int | Tensor, ...] | None = None,
        relative_stdevs: bool = False,
        relative_noise_scale: bool = False,
        transform: AttributionTransform | None = None,
        generator: torch.Generator | None = None,
        return_certificate: bool = False,
        alpha: float = 0.05,
        bound: str | None = None,
        stop_when: CertificationTarget | None = None,
        create_graph: bool = False,
        **kwargs: Any,
    ) -> Any:
        r"""Smoothed attributions (and optionally a certificate).

        The defaults are this class's (a preset shows its own in the signature).

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Input batch (dim 0 = examples), floating
                        point. Tuple in, tuple out. For tuple inputs a transform and a
                        certificate run over all features of all tensors together (the norm
                        of the concatenated perturbation).
            nt_type (str, optional): ``"smoothgrad"`` (mean of the per-sample maps),
                        ``"smoothgrad_sq"`` (mean of squares) or ``"vargrad"`` (variance,
                        computed with a streaming Chan/Welford update). Only
                        ``"smoothgrad"`` returns the certified map ``E[s]``: the others are
                        refused with ``return_certificate=True``, and by the presets (which
                        return the mean map only).
            nt_samples (int, optional): Noisy samples per example.
            nt_samples_batch_size (int, optional): Samples per example evaluated together;
                        bounds peak memory. None evaluates all at once.
            stdevs (float, int, Tensor or tuple, optional): Standard deviation of Gaussian
                        noise (Captum's name and meaning). A tensor may give per-example,
                        per-channel or per-feature scales (broadcast against the input); a
                        tuple gives one scale per input tensor. Other noises take
                        ``noise_scale``; with them ``stdevs`` must keep its default.
            draw_baseline_from_distrib (bool, optional): Draw each noisy sample's baseline
                        from the rows of ``baselines`` (with ``generator``).
            noise (NoiseDistribution, optional): Overrides the wrapper's noise, e.g.
                        ``LaplaceNoise()``. Default: None
            noise_scale (float, int, Tensor or tuple, optional): The native scale of a
                        non-Gaussian noise, in the same forms as ``stdevs``: the scale ``b``
                        of Laplace noise (standard deviation ``sqrt(2) b``), the density scale
                        ``sigma`` of generalized Gaussian noise (at ``q = 2`` that is
                        ``N(0, sigma^2 / 2)``), the half-width of the uniform cube, the radius
                        of the uniform l2 ball. Refused with Gaussian noise (pass ``stdevs``).
                        None: the number ``stdevs`` defaults to.
            relative_stdevs (bool, optional): Interpret ``stdevs`` as a fraction of each
                        example's value range ``max(x) - min(x)`` (the SmoothGrad paper's
                        and zennit's convention) instead of an absolute scale. Refused with
                        ``return_certificate=True``: the scale would depend on the input,
                        which the certificate's theorem excludes; pass an absolute ``stdevs``
                        (e.g. computed once from the dataset's range). Default: False
            relative_noise_scale (bool, optional): ``relative_stdevs`` for ``noise_scale``.
                        Default: False
            transform (AttributionTransform, optional): Overrides the wrapper's per-sample
                        map. Default: None
            generator (torch.Generator, optional): Source of all randomness (noise and
                        baseline draws). None uses the global torch RNG. Default: None
            return_certificate (bool, optional): Also return a certificate (needs a
                        transform with values in [0, 1]). Refused, with a ``ValueError``,
                        when the certificate's conditions cannot hold: a relative scale, a
                        noise the certifier is not proven for, a method that shares
                        randomness across rows (``ShapleyValueSampling``,
                        ``FeaturePermutation``), a batch-statistics layer (BatchNorm in train
                        mode) in the model, an ``nt_type`` other than ``"smoothgrad"``; and,
                        with a ``TypeError``, 16-bit inputs (``float16``, ``bfloat16``: cast
                        them to float32). Every argument's status is listed in :doc:`/guide`.
                        Default: False
            alpha (float, optional): Failure probability of the certificate's confidence
                        band (confidence ``1 - alpha``). Default: 0.05
            bound (str, optional): Band method: ``"clopper_pearson"`` (binary maps only),
                        ``"kl"`` (Bernoulli-KL, any [0, 1] map), ``"hoeffding"`` (any [0, 1]
                        map, the paper's), ``"betting"`` (variance-adaptive, any [0, 1] map),
                        or None for the transform's ``default_bound`` (``"betting"`` for the
                        rank-linear map), else Clopper-Pearson on binary maps and KL otherwise.
                        Default: None
            stop_when (CertificationTarget, optional): Sequential certification: each
                        example draws chunks of ``nt_samples_batch_size`` until its
                        certificate reaches the target, or no band containing the expected
                        map could reach it, or ``nt_samples`` (the budget ``N_max``) are
                        spent; decided examples leave the batch. The band is a betting
                        confidence sequence, valid at any stopping time (``cert.bound`` is
                        ``"betting_sequence"``); ``cert.samples_used`` holds each example's
                        samples and the attributions are the means of those samples.
                        ``CertificationTarget(k=..., overlap=..., precision=...)`` instead
                        samples until the certified radius at ``overlap`` is known to
                        ``precision`` (``cert.stop_radius``, ``cert.stop_radius_best``);
                        ``cert.stop_decision`` records each example's decision. Needs
                        ``return_certificate=True`` and a top-K certifier. Default: None
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
        plan = resolve_plan(
            self,
            Mode.GRAPH if create_graph else Mode.STREAM,
            inputs,
            nt_type=nt_type,
            nt_samples=nt_samples,
            nt_samples_batch_size=nt_samples_batch_size,
            stdevs=stdevs,
            stdevs_default=_attribute_signature(type(self)).parameters["stdevs"].default,
            draw_baseline_from_distrib=draw_baseline_from_distrib,
            noise=noise,
            noise_scale=noise_scale,
            relative_stdevs=relative_stdevs,
            relative_noise_scale=relative_noise_scale,
            transform=transform,
            generator=generator,
            return_certificate=return_certificate,
            alpha=alpha,
            bound=bound,
            kwargs=kwargs,
            stop_when=stop_when,
        )
        if create_graph:
            return run_graph(plan)
        return run_stream(plan) if plan.stop_when is None else run_sequential(plan)

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
            **attribute_kwargs: Arguments of :meth:`attribute`, with its defaults
                        (``nt_type="smoothgrad"`` only; the noise is replayed from
                        ``generator``, or from a generator seeded from the global RNG when
                        None).

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
        if wrt is None:  # differentiate fresh leaves: the caller's tensors stay untouched
            items: tuple[Any, ...] = inputs if isinstance(inputs, tuple) else (inputs,)
            leaves = tuple(
                t.detach().requires_grad_() if isinstance(t, Tensor) else t for t in items
            )
            inputs = leaves if isinstance(inputs, tuple) else leaves[0]
            wrt = leaves
        signature = _attribute_signature(type(self))
        call = signature.bind(self, inputs, **attribute_kwargs)
        call.apply_defaults()
        arguments = dict(call.arguments)
        del arguments["self"], arguments["create_graph"]  # always differentiable here
        plan = resolve_plan(
            self,
            Mode.LOSS_GRADIENT,
            stdevs_default=signature.parameters["stdevs"].default,
            **arguments,
        )
        return run_loss_gradient(plan, loss_fn, wrt)

    def attribute_settings(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        transforms: Sequence[AttributionTransform],
        *,
        alpha: float | Sequence[float] = 0.05,
        return_certificate: bool = True,
        **attribute_kwargs: Any,
    ) -> list[Any]:
        r"""Several settings (transforms) from one sampling pass.

        The noisy attributions are computed once per chunk and every transform's statistics
        are accumulated side by side (e.g. top-tau binarization for several tau), so setting
        ``i`` gets exactly what ``attribute(..., transform=transforms[i])`` would give with the
        same generator, at about the cost of one pass.

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Input batch.
            transforms (Sequence[AttributionTransform]): One per-sample map per setting.
            alpha (float or Sequence[float], optional): Failure probability of each setting's
                        certificate: one for all, or one per setting. Each certificate holds
                        at its own alpha; for all of them to hold at once with probability
                        ``1 - alpha``, pass ``alpha / len(transforms)`` each (or any split
                        summing to ``alpha``): they share the samples, so only the union
                        bound is claimed. Default: 0.05
            return_certificate (bool, optional): Return ``(attributions, certificate)`` per
                        setting; False returns the attributions only. Default: True
            **attribute_kwargs: The other arguments of :meth:`attribute` (``nt_type``,
                        ``create_graph``, ``stop_when`` and ``transform`` excepted).

        Returns:
            list: one entry per setting, in the order of ``transforms``.

        Examples::

            >>> from captum_certified.attr import SparseSmoothGrad
            >>> from captum_certified.transforms import TopKBinarize
            >>> ssg = SparseSmoothGrad(model)
            >>> out = ssg.attribute_settings(
            ...     x, [TopKBinarize(t) for t in (0.05, 0.1, 0.2)], alpha=0.05 / 3,
            ...     target=3, nt_samples=256, stdevs=0.25)
            >>> [cert.alpha for _, cert in out] == [0.05 / 3] * 3
            True
        """
        transforms = list(transforms)
        if not transforms:
            raise ValueError("`transforms` must hold at least one transform")
        alphas: list[Any] = (
            list(alpha) if isinstance(alpha, Sequence) else [alpha] * len(transforms)
        )
        if len(alphas) != len(transforms):
            raise ValueError(f"`alpha` has {len(alphas)} entries for {len(transforms)} transforms")
        for name in ("transform", "stop_when", "create_graph", "nt_type"):
            if name in attribute_kwargs:
                raise ValueError(f"`{name}` is not an argument of attribute_settings")
        signature = _attribute_signature(type(self))
        plans = []
        for transform, setting_alpha in zip(transforms, alphas):
            call = signature.bind(
                self,
                inputs,
                transform=transform,
                alpha=setting_alpha,
                return_certificate=return_certificate,
                **attribute_kwargs,
            )
            call.apply_defaults()
            arguments = dict(call.arguments)
            del arguments["self"], arguments["create_graph"]
            plans.append(
                resolve_plan(
                    self,
                    Mode.STREAM,
                    stdevs_default=signature.parameters["stdevs"].default,
                    **arguments,
                )
            )
        if plans[0].want_delta:
            raise ValueError("attribute_settings does not return convergence deltas")
        return run_settings(plans)

    def attribute_future(self) -> None:
        r"""Not supported: smoothing runs synchronously."""
        raise NotImplementedError("attribute_future is not implemented for CertifiedWrapper")


def _unwrap_drop_in(method: Any) -> Any:
    """This package's drop-in ``NoiseTunnel`` is unwrapped like Captum's (not smoothed twice)."""
    from captum_certified.attr._core.noise_tunnel import NoiseTunnel as DropIn

    if type(method) is not DropIn:
        return method
    if (
        not method.transform.is_identity
        or method.certifier is not None
        or not isinstance(method.noise, GaussianNoise)
    ):
        raise ValueError(
            "`attribution_method` is a NoiseTunnel with its own noise, transform or certifier, "
            "which the wrapper would not use: pass them to the wrapper and wrap "
            "NoiseTunnel.attribution_method"
        )
    return method.attribution_method


def _attribute_signature(cls: type[CertifiedWrapper]) -> inspect.Signature:
    """The engine's signature with ``cls``'s defaults (a preset's included).

    The nearest ``attribute`` along the MRO that has the engine's parameters: a user subclass
    may override ``attribute`` with its own signature (``def attribute(self, inputs, **kw)``)
    and call ``super().attribute``; its preset's defaults still apply.
    """
    for klass in cls.__mro__:
        method = klass.__dict__.get("attribute")
        if method is None:
            continue
        signature = inspect.signature(method)
        if "stdevs" in signature.parameters and "noise_scale" in signature.parameters:
            return signature
    return inspect.signature(CertifiedWrapper.attribute)
