"""An ``explain_func`` with Quantus's calling convention for any of our attribution classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

_RESERVED = ("return_certificate", "return_convergence_delta")


def quantus_explain_func(
    method: Callable[..., Any],
    *,
    method_kwargs: dict[str, Any] | None = None,
    seed: int | None = 0,
    postprocess: Callable[[Tensor, Tensor], Tensor] | None = None,
    **attribute_kwargs: Any,
) -> Callable[..., np.ndarray]:
    r"""Wrap an attribution class as a Quantus ``explain_func``.

    Quantus (Hedström et al., ``pip install quantus``) calls
    ``explain_func(model=model, inputs=x_batch, targets=y_batch, **explain_func_kwargs)`` with
    numpy batches and expects a numpy array of attributions. The returned function does that
    for :class:`~captum_certified.attr.SparseSmoothGrad`,
    :class:`~captum_certified.attr.RenyiRobustSmooth`,
    :class:`~captum_certified.attr.UniformSmoothedAttribution`,
    :class:`~captum_certified.attr.CertifiedWrapper` (through a factory, see below) or any
    Captum attribution: it builds the method on the model Quantus passes (Quantus may pass a
    perturbed copy of the model), converts the batch to a tensor on the model's device (or
    Quantus's ``device``) with the model's floating dtype, calls ``attribute`` once for the
    whole batch and returns ``attributions.detach().cpu().numpy()``.

    **Randomness.** With ``seed`` an int, every call draws its noise from a fresh
    ``torch.Generator().manual_seed(seed)``: the explanation is a deterministic function of the
    input (common random numbers), so Quantus's robustness metrics measure how the smoothed map
    moves with the input rather than Monte-Carlo noise, and results are reproducible (Quantus
    issue #130). ``seed=None`` draws from the global torch RNG. A ``generator`` in the keyword
    arguments takes precedence over ``seed``.

    The model's mode and ``requires_grad`` flags are left as found.

    Args:
        method (type or Callable): An attribution class, called as
                    ``method(model, **method_kwargs)``, or any callable taking the model and
                    returning an object with an ``attribute`` method, e.g.
                    ``lambda m: CertifiedWrapper(IntegratedGradients(m))``.
        method_kwargs (dict, optional): Constructor arguments of ``method``. Default: None
        seed (int, optional): Seed of the generator created for each call; None uses the
                    global torch RNG. Default: 0
        postprocess (Callable, optional): ``postprocess(attributions, inputs) -> Tensor``
                    applied before conversion, e.g. to upsample a layer attribution to the
                    input's shape (Quantus requires attributions shaped like the input, up to
                    a channel dimension of 1). Default: None
        **attribute_kwargs: Arguments of ``attribute`` (``nt_samples``, ``stdevs``,
                    ``nt_samples_batch_size``, ...). Keyword arguments given by Quantus
                    (``explain_func_kwargs``) override them; ``device`` selects the device.

    Returns:
        **explain_func** (*Callable*): ``explain_func(model, inputs, targets, **kwargs)
        -> np.ndarray``, shaped like ``inputs`` (or as ``postprocess`` returns).

    Examples::

        >>> import quantus
        >>> from captum_certified.attr import SparseSmoothGrad
        >>> from captum_certified.interop import quantus_explain_func
        >>> explain = quantus_explain_func(SparseSmoothGrad, method_kwargs={"sparsity": 0.2},
        ...                                nt_samples=256, stdevs=0.25)
        >>> metric = quantus.MaxSensitivity(nr_samples=10, disable_warnings=True)
        >>> scores = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(),
        ...                 explain_func=explain, device="cpu")
    """
    if not callable(method):
        raise TypeError(f"`method` must be a class or a callable, got {type(method).__name__}")
    if method_kwargs is not None and not isinstance(method_kwargs, dict):
        raise TypeError(f"`method_kwargs` must be a dict, got {type(method_kwargs).__name__}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"`seed` must be an int or None, got {type(seed).__name__}")
    if postprocess is not None and not callable(postprocess):
        raise TypeError("`postprocess` must be callable")
    for name in _RESERVED:
        if attribute_kwargs.get(name):
            raise ValueError(f"`{name}` cannot be used: Quantus expects one array of attributions")
    init_kwargs = dict(method_kwargs or {})
    defaults = dict(attribute_kwargs)

    def explain_func(model: Any, inputs: Any, targets: Any = None, **kwargs: Any) -> np.ndarray:
        if hasattr(model, "get_model") and not isinstance(model, nn.Module):
            model = model.get_model()  # a Quantus ModelInterface
        options = {**defaults, **kwargs}
        device = options.pop("device", None)
        for name in _RESERVED:
            if options.pop(name, False):
                raise ValueError(
                    f"`{name}` cannot be used: Quantus expects one array of attributions"
                )
        x = _as_input(inputs, model, device)
        target = _as_target(targets, x.device)
        if seed is not None and options.get("generator") is None:
            options["generator"] = torch.Generator().manual_seed(seed)
        explainer = method(model, **init_kwargs)
        if not hasattr(explainer, "attribute"):
            raise TypeError(
                f"`method` returned {type(explainer).__name__}, which has no `attribute` method"
            )
        attributions = explainer.attribute(x, target=target, **options)
        if isinstance(attributions, tuple):
            raise TypeError(
                "the attribution method returned a tuple; Quantus needs a single tensor "
                "(single-tensor inputs, no convergence delta or certificate)"
            )
        if postprocess is not None:
            attributions = postprocess(attributions, x)
        return attributions.detach().cpu().numpy()

    return explain_func


def _as_input(inputs: Any, model: Any, device: Any) -> Tensor:
    """The batch as a tensor with the model's floating dtype, on the model's (or ``device``)."""
    if isinstance(inputs, Tensor):
        x = inputs.detach()
    elif isinstance(inputs, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(inputs))
    else:
        raise TypeError(f"`inputs` must be a numpy array or a Tensor, got {type(inputs).__name__}")
    if x.ndim == 0:
        raise ValueError("`inputs` must be a batch (dim 0 = examples), got a scalar")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    target_device = x.device
    if isinstance(model, nn.Module):
        param = next((p for p in model.parameters() if p.is_floating_point()), None)
        if param is not None:
            dtype, target_device = param.dtype, param.device
    if device is not None:
        target_device = torch.device("cuda" if device == "gpu" else device)
    return x.to(device=target_device, dtype=dtype)


def _as_target(targets: Any, device: torch.device) -> Any:
    """Quantus's labels as a Captum target: an int64 tensor of one class per example."""
    if targets is None or isinstance(targets, int):
        return targets
    if isinstance(targets, np.integer):
        return int(targets)
    if isinstance(targets, np.ndarray):
        if not np.issubdtype(targets.dtype, np.integer):
            raise TypeError(f"`targets` must hold integers, got dtype {targets.dtype}")
        return torch.from_numpy(targets.astype(np.int64).reshape(-1)).to(device)
    if isinstance(targets, Tensor):
        return targets.to(device=device, dtype=torch.int64).reshape(-1)
    if isinstance(targets, list):  # one per example (a tuple keeps Captum's meaning)
        return torch.as_tensor(targets, dtype=torch.int64, device=device).reshape(-1)
    if isinstance(targets, tuple):
        return targets
    raise TypeError(f"`targets` must be an int or an array of ints, got {type(targets).__name__}")
