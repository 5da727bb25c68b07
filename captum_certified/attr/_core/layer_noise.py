"""Noise at a layer: the wrapped method moved to the layer's activation space (Captum #1281).

Captum issue #1281's workaround, made general: capture the activation ``h = layer(...)`` of the
inputs once, build a *substituted forward* ``f(h', *inputs, *args)`` that runs the model on the
original inputs (token ids, masks) with the layer's output replaced by ``h'``, and attribute
``f`` with respect to ``h'``. Smoothing then adds noise to ``h`` exactly as it adds noise to
float inputs: one independent draw per noisy row, from the caller's generator, so the engine,
its statistics and its certificates are unchanged and speak about l2 perturbations of ``h``
(``docs/certificates.rst``, "Noise at a layer").

A layer method on the same layer is replaced by its activation-space twin, which computes the
same map (``LayerIntegratedGradients(model, layer)`` on ids with baselines ``b`` is
``IntegratedGradients(f)`` on ``h(ids)`` with baselines ``h(b)``); any other Captum method is
applied to the activation (``Saliency``, ``FeatureAblation``, ...; baselines given in the
layer's space).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from captum.attr import (
    Attribution,
    DeepLift,
    DeepLiftShap,
    FeatureAblation,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerDeepLift,
    LayerDeepLiftShap,
    LayerFeatureAblation,
    LayerGradientShap,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    Saliency,
)
from torch import Tensor, nn

from captum_certified._utils.layers import capture_activation, check_layer

Tensors = tuple[Tensor, ...]

# layer method -> its activation-space twin (the same map as a function of the activation)
_TWINS: tuple[tuple[type, type], ...] = (
    (LayerIntegratedGradients, IntegratedGradients),
    (LayerGradientShap, GradientShap),
    (LayerDeepLiftShap, DeepLiftShap),  # before LayerDeepLift: it subclasses it
    (LayerDeepLift, DeepLift),
    (LayerGradientXActivation, InputXGradient),
    (LayerFeatureAblation, FeatureAblation),
)


class LayerSubstitutedForward(nn.Module):
    r"""``f(h, *inputs, *args)``: the model on ``inputs`` with the layer's output set to ``h``.

    The model (a module, or the module a bound method belongs to) is a submodule, so the
    engine's checks (batch statistics) see it. The layer must run exactly once per forward:
    a second call (the same embedding applied to two inputs) is refused, because the
    certificate would then be about two copies of one activation moving together.
    """

    def __init__(
        self,
        forward_func: Callable[..., Any],
        layer: nn.Module,
        num_inputs: int,
        *,
        layer_input: bool = False,
    ) -> None:
        super().__init__()
        owner = forward_func if isinstance(forward_func, nn.Module) else None
        owner = owner or getattr(forward_func, "__self__", None)
        self.model = owner if isinstance(owner, nn.Module) else None
        self._forward_func = forward_func
        self._layer = [layer]  # a list: not registered twice as a submodule
        self.num_inputs = num_inputs
        self.layer_input = layer_input

    def forward(self, h: Tensor, *rest: Any) -> Any:
        inputs, args = rest[: self.num_inputs], rest[self.num_inputs :]
        calls = [0]

        def check(value: Tensor) -> None:
            calls[0] += 1
            if calls[0] > 1:
                raise ValueError(
                    "`noise_layer` runs more than once in one forward; noise at such a layer "
                    "is not supported (hook a module that runs once, e.g. a wrapper around "
                    "both calls)"
                )
            if value.shape != h.shape:
                raise ValueError(
                    f"`noise_layer` produced shape {tuple(value.shape)} but the substituted "
                    f"activation has shape {tuple(h.shape)}"
                )

        layer = self._layer[0]
        if self.layer_input:

            def pre(module: nn.Module, margs: tuple) -> tuple:
                check(margs[0])
                return (h, *margs[1:])

            handle = layer.register_forward_pre_hook(pre)
        else:

            def post(module: nn.Module, margs: tuple, out: Tensor) -> Tensor:
                check(out)
                return h

            handle = layer.register_forward_hook(post)
        try:
            out = self._forward_func(*inputs, *args)
        finally:
            handle.remove()
        if calls[0] == 0:
            raise ValueError("`noise_layer` did not run in the forward")
        return out


@dataclasses.dataclass(frozen=True)
class LayerSpaceCall:
    """A method call moved to the layer's activation space.

    Attributes:
        inputs: the activations ``(h,)`` the noise is added to.
        method: the method to run on them (the twin of a layer method, or a copy of an input
            method whose forward is the substituted forward).
        kwargs: the call's keyword arguments, with ``additional_forward_args`` set to the
            original inputs and arguments, and layer-method baselines mapped through the layer.
        forward: the substituted forward.
    """

    inputs: Tensors
    method: Attribution
    kwargs: dict[str, Any]
    forward: LayerSubstitutedForward


def _twin(method: Attribution, forward: LayerSubstitutedForward, kwargs: dict[str, Any]) -> Any:
    for layer_cls, twin_cls in _TWINS:
        if isinstance(method, layer_cls):
            multiply = bool(getattr(method, "multiplies_by_inputs", True))
            if twin_cls is InputXGradient and not multiply:
                kwargs.setdefault("abs", False)  # the plain gradient, signed
                return Saliency(forward)
            if twin_cls in (InputXGradient, FeatureAblation):
                return twin_cls(forward)
            return twin_cls(forward, multiply_by_inputs=multiply)  # type: ignore[call-arg]
    raise TypeError(
        f"noise at a layer does not support {type(method).__name__}: use a layer method "
        "with an activation-space twin (LayerIntegratedGradients, LayerGradientXActivation, "
        "LayerGradientShap, LayerDeepLift, LayerDeepLiftShap, LayerFeatureAblation) or an "
        "input method (Saliency, IntegratedGradients, FeatureAblation, ...), which is then "
        "applied to the layer's activation"
    )


def _layer_of(method: Attribution) -> nn.Module | None:
    layer = getattr(method, "layer", None)
    return layer if isinstance(layer, nn.Module) else None


def _input_baselines(baselines: Any, inputs: Tensors) -> Tensors:
    """A layer method's input-space baselines as one tensor per input, batch-sized."""
    if baselines is None:
        baselines = tuple(torch.zeros_like(x) for x in inputs)
    if not isinstance(baselines, tuple):
        baselines = (baselines,)
    if len(baselines) != len(inputs):
        raise ValueError(
            f"`baselines` has {len(baselines)} entries but there are {len(inputs)} inputs"
        )
    out = []
    for b, x in zip(baselines, inputs):
        if not isinstance(b, Tensor):
            b = torch.full_like(x, b)
        b = b.to(device=x.device, dtype=x.dtype)
        if b.dim() == x.dim() and b.shape[0] == 1 and x.shape[0] != 1:
            b = b.expand_as(x)
        if b.shape != x.shape:
            raise ValueError(
                f"`baselines` of shape {tuple(b.shape)} do not match the input's "
                f"{tuple(x.shape)} (noise at a layer maps them through the layer)"
            )
        out.append(b)
    return tuple(out)


def to_layer_space(
    method: Attribution,
    layer: nn.Module,
    inputs: Tensors,
    kwargs: dict[str, Any],
    *,
    layer_input: bool | None = None,
) -> LayerSpaceCall:
    r"""Move ``method.attribute(inputs, **kwargs)`` to ``layer``'s activation space.

    Args:
        method: A Captum method on the model (``forward_func`` takes ``inputs``).
        layer: The module whose output (or input) the noise is added to.
        inputs: The model's inputs (token ids, masks, ...), unchanged.
        kwargs: The call's keyword arguments; ``additional_forward_args`` are kept and passed
            after the inputs; a layer method's ``baselines`` (input space) become
            ``layer(baselines)``, an input method's are used as given (layer space).
        layer_input: Noise at the layer's input instead of its output; None takes a layer
            method's ``attribute_to_layer_input`` (default False).

    Returns:
        The call to run instead, with noise to be added to ``call.inputs``.
    """
    layer = check_layer(layer)
    kwargs = dict(kwargs)
    method_layer = _layer_of(method)
    is_layer_method = isinstance(method, LayerAttribution)
    to_input = bool(kwargs.pop("attribute_to_layer_input", False))
    if layer_input is None:
        layer_input = to_input
    elif is_layer_method and to_input != layer_input:
        raise ValueError("`attribute_to_layer_input` must match where the noise enters the layer")
    if is_layer_method and method_layer is not layer:
        raise ValueError(
            f"{type(method).__name__} attributes to another layer than `noise_layer`: a layer "
            "method must be built on the layer the noise is added to"
        )
    args = kwargs.pop("additional_forward_args", None)
    extra: tuple = () if args is None else (args if isinstance(args, tuple) else (args,))
    forward_func = method.forward_func
    forward = LayerSubstitutedForward(
        forward_func, layer, len(inputs), layer_input=bool(layer_input)
    )
    h = capture_activation(forward_func, layer, inputs, args, layer_input=bool(layer_input))
    if h.shape[0] != inputs[0].shape[0]:
        raise ValueError(
            f"`noise_layer`'s activation has {h.shape[0]} rows for a batch of "
            f"{inputs[0].shape[0]}: its first dimension must be the batch"
        )
    if is_layer_method:
        twin = _twin(method, forward, kwargs)
        if isinstance(method, LayerFeatureAblation):
            if "layer_baselines" in kwargs:
                kwargs["baselines"] = kwargs.pop("layer_baselines")
            if "layer_mask" in kwargs:
                kwargs["feature_mask"] = kwargs.pop("layer_mask")
        elif isinstance(method, (LayerGradientShap, LayerDeepLiftShap)) and "baselines" in kwargs:
            # a distribution of baselines: its rows are mapped through the layer one by one
            raw = kwargs["baselines"]
            raw_t = raw if isinstance(raw, tuple) else (raw,)
            kwargs["baselines"] = capture_activation(
                forward_func, layer, tuple(raw_t), args, layer_input=bool(layer_input)
            )
        elif not isinstance(method, LayerGradientXActivation):
            base = _input_baselines(kwargs.get("baselines"), inputs)
            kwargs["baselines"] = capture_activation(
                forward_func, layer, base, args, layer_input=bool(layer_input)
            )
    else:
        twin = copy.copy(method)
        twin.forward_func = forward
        if hasattr(twin, "model") and isinstance(getattr(twin, "model", None), nn.Module):
            twin.model = forward  # DeepLift's hooks walk the (substituted) model
    kwargs["additional_forward_args"] = (*inputs, *extra)
    return LayerSpaceCall(inputs=(h,), method=twin, kwargs=kwargs, forward=forward)
