#!/usr/bin/env python3
"""Worst-case (or mean) attribution similarity under random input perturbations."""

import warnings
from collections.abc import Callable
from inspect import signature
from typing import Any

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.expansion import expand_additional_forward_args, expand_target
from captum_certified._utils.validation import check_int, format_inputs
from captum_certified.metrics._core.pair_metric import (
    METRIC_HIGHER_IS_SIMILAR,
    PairMetric,
    make_metric,
)
from captum_certified.metrics._core.preprocess import TensorOrTuple, _format_attr
from captum_certified.metrics.kernels import resolve_conventions

_REDUCTIONS = ("worst", "mean", "min", "max")

__all__ = ["METRIC_HIGHER_IS_SIMILAR", "attribution_robustness", "default_perturb_func"]


class _CallableMetric(PairMetric):
    """A user metric ``metric(attr_ref, attr_perturbed) -> (M,)`` on raw attributions, with
    the direction it is given."""

    name = "callable"

    def __init__(self, fn: Callable[..., Tensor], higher_is_similar: bool) -> None:
        super().__init__(None, None)
        self.fn = fn
        self.higher_is_similar = higher_is_similar

    def prepare(self, attrs: tuple[Tensor, ...], is_tuple: bool, name: str) -> TensorOrTuple:
        return attrs if is_tuple else attrs[0]

    def compare(self, rep_a: Any, rep_b: Any) -> Tensor:
        out = self.fn(rep_a, rep_b)
        n = (rep_b[0] if isinstance(rep_b, tuple) else rep_b).shape[0]
        if not isinstance(out, Tensor) or tuple(out.shape) != (n,):
            raise ValueError(
                f"metric must return a ({n},) tensor for {n} attribution pairs, got "
                f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}"
            )
        return out


def _repeat(rep: Any, n: int) -> Any:
    if isinstance(rep, tuple):
        return tuple(t.repeat_interleave(n, dim=0) for t in rep)
    return rep.repeat_interleave(n, dim=0)


def _resolve_metric(
    metric: object,
    k: int | float | None,
    reduce_channels: str | None,
    normalize: str | None,
    protocol: str | None,
    metric_kwargs: dict[str, Any] | None,
    higher_is_similar: bool | None,
) -> PairMetric:
    """The metric object (kernel and direction) of :func:`attribution_robustness`'s
    arguments."""
    if isinstance(metric, str):
        if metric not in METRIC_HIGHER_IS_SIMILAR:
            raise ValueError(
                f"metric must be one of {sorted(METRIC_HIGHER_IS_SIMILAR)} or a callable, "
                f"got {metric!r}"
            )
        if higher_is_similar is not None:
            raise ValueError(
                "higher_is_similar is only for a callable metric; named metrics know theirs"
            )
        reduce_channels, normalize = resolve_conventions(reduce_channels, normalize, protocol)
        return make_metric(metric, reduce_channels, normalize, k, metric_kwargs)
    if callable(metric):
        conventions = (k, reduce_channels, normalize, protocol)
        if metric_kwargs or any(c is not None for c in conventions):
            raise ValueError(
                "k, reduce_channels, normalize, protocol and metric_kwargs apply to the named "
                "metrics only; a callable metric receives the raw attributions"
            )
        # a callable is taken to be a similarity unless told otherwise
        return _CallableMetric(metric, higher_is_similar is not False)
    raise TypeError(f"metric must be a metric name or a callable, got {metric!r}")


@log_usage()
def default_perturb_func(
    inputs: TensorOrTuple,
    perturb_radius: float = 0.02,
    generator: torch.Generator | None = None,
) -> TensorOrTuple:
    r"""
    Add noise drawn uniformly from the L-infinity ball of radius ``perturb_radius``,
    :math:`U[-r, r]` independently per element, in each input's own dtype and device (Captum's
    ``default_perturb_func`` always draws float32 through ``torch.FloatTensor``).

    Args:

        inputs (Tensor or tuple[Tensor, ...]): Floating tensors to perturb. For a tuple, the
                noise of each element is drawn in order.
        perturb_radius (float, optional): Half-width r of the uniform noise.
                Default: 0.02
        generator (torch.Generator, optional): The source of randomness (on the inputs'
                device); None uses the global torch RNG.
                Default: None

    Returns:

        **perturbed** (Tensor or tuple[Tensor, ...]):
                ``inputs`` plus noise, with the structure of ``inputs``.

    Examples::

        >>> g = torch.Generator().manual_seed(0)
        >>> x_noisy = default_perturb_func(x, 0.1, generator=g)
    """
    is_tuple = isinstance(inputs, tuple)
    elems = inputs if isinstance(inputs, tuple) else (inputs,)
    out = []
    for i, t in enumerate(elems):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(
                f"inputs{f'[{i}]' if is_tuple else ''} must be a floating tensor for the "
                "default perturbation (pass your own perturb_func otherwise)"
            )
        noise = torch.empty_like(t).uniform_(-perturb_radius, perturb_radius, generator=generator)
        out.append(t + noise)
    return tuple(out) if is_tuple else out[0]


def _expand_kwargs(kwargs: dict[str, Any], n: int, bsz: int) -> dict[str, Any]:
    """Captum's ``repeat_interleave`` expansion (sensitivity_max / NoiseTunnel) of the
    per-example arguments, for a batch holding n perturbations of each example in a row."""
    out = dict(kwargs)
    if "target" in out:
        out["target"] = expand_target(out["target"], n, bsz)
    if out.get("additional_forward_args") is not None:
        out["additional_forward_args"] = expand_additional_forward_args(
            out["additional_forward_args"], n
        )

    def per_example(t: Any) -> Any:
        if isinstance(t, Tensor) and t.dim() > 0 and t.shape[0] == bsz and bsz > 1:
            return t.repeat_interleave(n, dim=0)
        return t  # scalars and one-row tensors broadcast

    for name in ("baselines", "feature_mask"):
        value = out.get(name)
        if value is not None:
            out[name] = (
                tuple(per_example(v) for v in value)
                if isinstance(value, tuple)
                else per_example(value)
            )
    return out


def _predict(forward_func: Callable[..., Tensor], inputs: tuple[Tensor, ...], afa: Any) -> Tensor:
    extra = () if afa is None else (afa if isinstance(afa, tuple) else (afa,))
    out = forward_func(*inputs, *extra)
    n = inputs[0].shape[0]
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != n:
        raise ValueError(
            f"forward_func must return (N, n_classes) scores to compare predicted labels; got "
            f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__} for N={n}"
        )
    return out.argmax(dim=1)


def _check_same_layout(
    attrs: tuple[Tensor, ...], ref: tuple[Tensor, ...], rows: int, name: str
) -> None:
    if len(attrs) != len(ref) or any(
        a.shape[0] != rows or a.shape[1:] != r.shape[1:] for a, r in zip(attrs, ref)
    ):
        raise ValueError(
            f"{name} returned attributions of shapes {[tuple(a.shape) for a in attrs]} for "
            f"the perturbed batch; expected {[(rows,) + tuple(r.shape[1:]) for r in ref]}"
        )


@log_usage()
def attribution_robustness(
    explanation_func: Callable[..., TensorOrTuple],
    inputs: TensorOrTuple,
    metric: str | Callable[..., Tensor] = "topk_intersection",
    perturb_func: Callable[..., TensorOrTuple] | None = None,
    perturb_radius: float = 0.02,
    n_perturb_samples: int = 10,
    max_examples_per_batch: int | None = None,
    reduction: str = "worst",
    k: int | float | None = None,
    reduce_channels: str | None = None,
    normalize: str | None = None,
    protocol: str | None = None,
    metric_kwargs: dict[str, Any] | None = None,
    higher_is_similar: bool | None = None,
    forward_func: Callable[..., Tensor] | None = None,
    exclude_label_changes: bool = False,
    return_excluded: bool = False,
    generator: torch.Generator | None = None,
    **kwargs: Any,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""
    Attribution robustness under random perturbations, in the form of Captum's
    ``sensitivity_max``: the attributions of ``inputs`` are compared, with a map metric, to
    the attributions of ``n_perturb_samples`` random perturbations of each example, and the
    values are reduced per example (by default to the worst case).

    The attributions of ``inputs`` are computed once. The perturbed inputs are processed in
    chunks of at most ``max_examples_per_batch`` examples, laid out as Captum does
    (``repeat_interleave``: all the perturbations of example 0, then of example 1, ...), and
    the per-example arguments in ``kwargs`` are expanded the same way: ``target`` (a list, or
    a tensor with more than one element), the tensors of ``additional_forward_args`` with
    ndim > 0, ``baselines`` whose dim 0 equals the batch size (> 1), and ``feature_mask``
    with more than one row.

    **Random stream.** ``perturb_func`` is called once per perturbation index j = 0, 1, ...,
    ``n_perturb_samples - 1`` on the *un-expanded* inputs, and returns perturbation j of every
    example. (``sensitivity_max`` instead calls it on an expanded chunk.) The noise, and so
    the result, therefore do not depend on ``max_examples_per_batch``.

    **Label changes.** With ``exclude_label_changes=True``, a perturbation whose predicted
    label, ``forward_func(...).argmax(1)``, differs from the prediction on the unperturbed
    example is left out of the reduction (the papers compare maps only where the label is
    kept). An example whose every perturbation is excluded gets **NaN**;
    ``return_excluded=True`` also returns the number of excluded perturbations per example.

    A metric value that is itself NaN (e.g. Kendall's tau of a constant map) propagates into
    the reduced value of its example.

    The whole computation runs under ``torch.no_grad()``, as ``sensitivity_max`` does: Captum's
    attribution methods enable gradients themselves. A custom ``explanation_func`` that needs
    autograd must do the same (``with torch.enable_grad():``).

    Args:

        explanation_func (Callable): The explanation function, usually
                ``method.attribute``. It is called as ``explanation_func(inputs, **kwargs)``.
        inputs (Tensor or tuple[Tensor, ...]): The examples, batch in dim 0 (a tuple for
                multi-input models, passed to ``explanation_func`` as a tuple).
        metric (str or Callable, optional): ``"topk_intersection"``, ``"kendall_tau"``,
                ``"spearman_rho"``, ``"cosine_similarity"``, ``"center_of_mass_shift"``, or a
                callable ``metric(attr_ref, attr_perturbed) -> (M,)`` on raw attributions
                (tensors or tuples as returned by ``explanation_func``, M pairs).
                Default: ``"topk_intersection"``
        perturb_func (Callable, optional): Perturbation of the inputs. It is called as
                ``perturb_func(inputs, perturb_radius)`` when it has more than one parameter,
                else as ``perturb_func(inputs)``, with a tensor for a single input or a tuple,
                and returns perturbed inputs of the same structure and shapes. None uses
                :func:`default_perturb_func` with ``generator``.
                Default: None
        perturb_radius (float, optional): Passed to ``perturb_func`` (the half-width of the
                uniform noise of the default).
                Default: 0.02
        n_perturb_samples (int, optional): Perturbations per example.
                Default: 10
        max_examples_per_batch (int, optional): The most perturbed examples given to
                ``explanation_func`` at once: chunks hold
                ``max(max_examples_per_batch // bsz, 1)`` perturbations of every example (so at
                least ``bsz`` examples; a warning is raised when it is below ``bsz``). None
                processes all ``bsz * n_perturb_samples`` at once.
                Default: None
        reduction (str, optional): ``"worst"`` (the minimum of a similarity, the maximum of a
                distance such as ``center_of_mass_shift``), ``"mean"``, or literally ``"min"``
                / ``"max"``.
                Default: ``"worst"``
        k (int or float, optional): The top-k size for ``metric="topk_intersection"``
                (required there, and rejected by the other metrics): an int in 1..d or a
                fraction in (0, 1] of d.
                Default: None
        reduce_channels (str, optional): Map convention for the named metrics; see
                :func:`preprocess_attributions`.
                Default: None
        normalize (str, optional): Map convention for the named metrics.
                Default: None
        protocol (str, optional): A key of :data:`PRESETS`, for the named metrics.
                Default: None
        metric_kwargs (dict, optional): Extra metric options: ``{"round_centers": True}`` for
                ``"center_of_mass_shift"``.
                Default: None
        higher_is_similar (bool, optional): For a callable ``metric`` only: whether larger
                values mean more similar maps, which decides what ``"worst"`` picks. None
                means True for a callable.
                Default: None
        forward_func (Callable, optional): The model, ``forward_func(*inputs,
                *additional_forward_args) -> (N, n_classes)``, used only with
                ``exclude_label_changes=True``.
                Default: None
        exclude_label_changes (bool, optional): Leave out the perturbations that change the
                model's predicted label. Requires ``forward_func``.
                Default: False
        return_excluded (bool, optional): Also return the number of excluded perturbations
                per example (zeros when nothing is excluded).
                Default: False
        generator (torch.Generator, optional): The random source of the default
                ``perturb_func`` (ignored by a custom one). None uses the global torch RNG.
                Default: None
        **kwargs (Any, optional): Forwarded to ``explanation_func`` (``target``,
                ``additional_forward_args``, ``baselines``, ...), expanded as described above
                for the perturbed chunks.

    Returns:

        **values** (Tensor), or (**values**, **n_excluded**) with ``return_excluded=True``:
                - **values** (*Tensor*): ``(bsz,)`` reduced metric values, in the inputs'
                  floating dtype (the attributions' dtype for non-floating inputs); NaN where
                  every perturbation was excluded.
                - **n_excluded** (*Tensor*): ``(bsz,)`` int64 counts of excluded
                  perturbations.

    Examples::

        >>> from captum.attr import Saliency
        >>> saliency = Saliency(net)
        >>> g = torch.Generator().manual_seed(0)
        >>> # worst top-100 intersection over 10 uniform perturbations of radius 0.1
        >>> worst = attribution_robustness(saliency.attribute, x, metric="topk_intersection",
        ...                                k=100, protocol="ghorbani", perturb_radius=0.1,
        ...                                n_perturb_samples=10, max_examples_per_batch=64,
        ...                                generator=g, target=y)
        >>> vals, n_excl = attribution_robustness(
        ...     saliency.attribute, x, metric="kendall_tau", forward_func=net,
        ...     exclude_label_changes=True, return_excluded=True, target=y)
    """
    inputs_t, is_tuple = format_inputs(inputs)
    bsz = inputs_t[0].shape[0]
    check_int(n_perturb_samples, "n_perturb_samples", 1)
    if max_examples_per_batch is not None:
        check_int(max_examples_per_batch, "max_examples_per_batch", 1)
        if max_examples_per_batch < bsz:
            warnings.warn(
                f"max_examples_per_batch={max_examples_per_batch} is smaller than the batch size "
                f"{bsz}; every chunk still holds one perturbation of each of the {bsz} examples",
                stacklevel=2,
            )
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if exclude_label_changes and forward_func is None:
        raise ValueError("exclude_label_changes=True needs forward_func (the model)")
    if forward_func is not None and not callable(forward_func):
        raise TypeError("forward_func must be callable")
    if not callable(explanation_func):
        raise TypeError("explanation_func must be callable")
    spec = _resolve_metric(
        metric, k, reduce_channels, normalize, protocol, metric_kwargs, higher_is_similar
    )

    if perturb_func is None:

        def perturb(x: TensorOrTuple) -> TensorOrTuple:
            return default_perturb_func(x, perturb_radius, generator=generator)

    else:
        two_args = len(signature(perturb_func).parameters) > 1

        def perturb(x: TensorOrTuple) -> TensorOrTuple:
            return perturb_func(x, perturb_radius) if two_args else perturb_func(x)

    with torch.no_grad():
        x_arg = inputs_t if is_tuple else inputs_t[0]
        attr0, attr0_is_tuple = _format_attr(
            explanation_func(x_arg, **kwargs), "explanation_func output"
        )
        _check_same_layout(attr0, attr0, bsz, "explanation_func")
        ref = spec.prepare(attr0, attr0_is_tuple, "explanation_func output")
        pred0 = (
            _predict(forward_func, inputs_t, kwargs.get("additional_forward_args"))
            if exclude_label_changes and forward_func is not None
            else None
        )
        per_chunk = (
            n_perturb_samples
            if max_examples_per_batch is None
            else min(max(max_examples_per_batch // bsz, 1), n_perturb_samples)
        )
        values: list[Tensor] = []
        excluded: list[Tensor] = []
        done = 0
        while done < n_perturb_samples:
            cur = min(per_chunk, n_perturb_samples - done)
            draws = []
            for _ in range(cur):
                p = perturb(x_arg)
                p_t = p if isinstance(p, tuple) else (p,)
                if len(p_t) != len(inputs_t) or any(
                    not isinstance(a, Tensor) or a.shape != b.shape for a, b in zip(p_t, inputs_t)
                ):
                    raise ValueError(
                        "perturb_func must return perturbed inputs with the structure and "
                        "shapes of inputs"
                    )
                draws.append(p_t)
            chunk = tuple(
                torch.stack([d[i] for d in draws], dim=1).reshape((bsz * cur,) + t.shape[1:])
                for i, t in enumerate(inputs_t)
            )
            kw = _expand_kwargs(kwargs, cur, bsz)
            attr, attr_is_tuple = _format_attr(
                explanation_func(chunk if is_tuple else chunk[0], **kw),
                "explanation_func output",
            )
            _check_same_layout(attr, attr0, bsz * cur, "explanation_func")
            vals = spec.compare(
                _repeat(ref, cur), spec.prepare(attr, attr_is_tuple, "explanation_func output")
            )
            values.append(vals.reshape(bsz, cur).to(torch.float64))
            if pred0 is not None and forward_func is not None:
                preds = _predict(forward_func, chunk, kw.get("additional_forward_args"))
                excluded.append((preds != pred0.repeat_interleave(cur)).reshape(bsz, cur))
            done += cur

        vals_all = torch.cat(values, dim=1)
        if excluded:
            excl = torch.cat(excluded, dim=1)
        else:
            excl = torch.zeros_like(vals_all, dtype=torch.bool)
        if reduction == "worst":
            reduction = "min" if spec.higher_is_similar else "max"
        if reduction == "min":
            out = vals_all.masked_fill(excl, float("inf")).min(dim=1).values
        elif reduction == "max":
            out = vals_all.masked_fill(excl, float("-inf")).max(dim=1).values
        else:
            kept = (~excl).sum(dim=1)
            out = vals_all.masked_fill(excl, 0.0).sum(dim=1) / kept
        out = torch.where(excl.all(dim=1), torch.full_like(out, float("nan")), out)
        dtype = inputs_t[0].dtype if inputs_t[0].is_floating_point() else attr0[0].dtype
        out = out.to(dtype)
        if return_excluded:
            return out, excl.sum(dim=1)
        return out
