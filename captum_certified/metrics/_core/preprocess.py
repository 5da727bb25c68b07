#!/usr/bin/env python3
r"""Map conventions shared by the robustness metrics, with one preset per paper.

Every metric in :mod:`captum_certified.metrics` first turns an attribution tensor (or a tuple of
them) into a *map* with the same three explicit choices:

* ``reduce_channels``: how the channel axis is removed;
* ``normalize``: how each example's map is rescaled;
* ``k`` (top-k metrics only): an ``int`` count or a ``float`` fraction of the number of features
  *after* channel reduction.

``protocol`` names a paper's evaluation protocol and fills in ``reduce_channels`` and ``normalize``
from :data:`PRESETS`. The table is repeated in ``docs/metrics.rst``.
"""

from typing import Any

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified.metrics.kernels import (
    flatten_cat,
    resolve_conventions,
)

TensorOrTuple = Tensor | tuple[Tensor, ...]


def _format_attr(attr: object, name: str) -> tuple[tuple[Tensor, ...], bool]:
    """Tensor or tuple of tensors -> (tuple, is_tuple), with type/shape/NaN checks."""
    is_tuple = isinstance(attr, tuple)
    elems: tuple[Any, ...] = attr if isinstance(attr, tuple) else (attr,)
    if len(elems) == 0:
        raise ValueError(f"{name} is an empty tuple")
    out = []
    for i, t in enumerate(elems):
        where = f"{name}[{i}]" if is_tuple else name
        if not isinstance(t, Tensor):
            raise TypeError(
                f"{where} must be a torch.Tensor (or {name} a tuple of tensors), "
                f"got {type(t).__name__}"
            )
        if t.dim() < 2:
            raise ValueError(
                f"{where} must have a batch dimension and at least one feature dimension, "
                f"shape (bsz, ...); got shape {tuple(t.shape)}"
            )
        if t.shape[0] == 0 or t[0].numel() == 0:
            raise ValueError(f"{where} is empty: shape {tuple(t.shape)}")
        if t.is_complex():
            raise TypeError(f"{where} must be real-valued, got dtype {t.dtype}")
        if not t.is_floating_point():
            t = t.to(torch.get_default_dtype())
        if torch.isnan(t).any():
            raise ValueError(f"{where} contains NaN")
        out.append(t)
    bsz = out[0].shape[0]
    for i, t in enumerate(out):
        if t.shape[0] != bsz:
            raise ValueError(f"{name}[{i}] has batch size {t.shape[0]}, but {name}[0] has {bsz}")
    return tuple(out), is_tuple


def _check_pair(
    a: tuple[Tensor, ...], b: tuple[Tensor, ...], a_is_tuple: bool, b_is_tuple: bool
) -> None:
    if a_is_tuple != b_is_tuple or len(a) != len(b):
        raise ValueError(
            "attr_a and attr_b must have the same structure: "
            f"attr_a is {'a tuple of ' + str(len(a)) if a_is_tuple else 'a single'} tensor(s), "
            f"attr_b is {'a tuple of ' + str(len(b)) if b_is_tuple else 'a single'} tensor(s)"
        )
    for i, (ta, tb) in enumerate(zip(a, b)):
        if ta.shape != tb.shape:
            where = f"[{i}]" if a_is_tuple else ""
            raise ValueError(
                f"shape mismatch: attr_a{where} has shape {tuple(ta.shape)}, "
                f"attr_b{where} has shape {tuple(tb.shape)}"
            )
        if ta.device != tb.device:
            raise ValueError(
                f"attr_a and attr_b are on different devices ({ta.device} vs {tb.device})"
            )


def _reduce_one(t: Tensor, reduce_channels: str | None) -> Tensor:
    if reduce_channels is None:
        return t
    if reduce_channels == "abs" or t.dim() != 4:
        # Only 4-D (N, C, H, W) maps have a channel axis (dim 1); others just take |.|.
        return t.abs()
    if reduce_channels == "sum_abs":
        return t.abs().sum(dim=1)
    return t.abs().mean(dim=1)  # "mean_abs"


def _normalize_one(t: Tensor, normalize: str | None) -> Tensor:
    if normalize is None:
        return t
    feat_dims = tuple(range(1, t.dim()))
    total = t.sum(dim=feat_dims, keepdim=True)
    # All-zero maps (sum 0) are left unchanged instead of becoming NaN.
    total = torch.where(total == 0, torch.ones_like(total), total)
    if normalize == "sum_to_one":
        return t / total
    n_pos = t[0].numel()  # H*W for a reduced image map: mean 1 after rescaling
    return t * (n_pos / total)


def _preprocess_tuple(
    attrs: tuple[Tensor, ...], reduce_channels: str | None, normalize: str | None
) -> tuple[Tensor, ...]:
    return tuple(_normalize_one(_reduce_one(t, reduce_channels), normalize) for t in attrs)


def _prepare_flat(
    attr: object,
    name: str,
    reduce_channels: str | None,
    normalize: str | None,
) -> tuple[Tensor, bool, int]:
    """Validate and preprocess one attribution -> ((bsz, d) map, is_tuple, n_elements)."""
    attrs, is_tuple = _format_attr(attr, name)
    maps = _preprocess_tuple(attrs, reduce_channels, normalize)
    return flatten_cat(maps), is_tuple, len(attrs)


def _prepare_pair_flat(
    attr_a: object,
    attr_b: object,
    reduce_channels: str | None,
    normalize: str | None,
    protocol: str | None,
) -> tuple[Tensor, Tensor, torch.dtype]:
    """Validate a pair of attributions and return their (bsz, d) maps and the output dtype."""
    reduce_channels, normalize = resolve_conventions(reduce_channels, normalize, protocol)
    a, a_is_tuple = _format_attr(attr_a, "attr_a")
    b, b_is_tuple = _format_attr(attr_b, "attr_b")
    _check_pair(a, b, a_is_tuple, b_is_tuple)
    fa = flatten_cat(_preprocess_tuple(a, reduce_channels, normalize))
    fb = flatten_cat(_preprocess_tuple(b, reduce_channels, normalize))
    dtype = torch.promote_types(fa.dtype, fb.dtype)
    return fa.to(dtype), fb.to(dtype), dtype


@log_usage()
def preprocess_attributions(
    attributions: TensorOrTuple,
    reduce_channels: str | None = None,
    normalize: str | None = None,
    protocol: str | None = None,
    flatten: bool = True,
) -> TensorOrTuple:
    r"""
    Apply the map conventions used by the metrics of :mod:`captum_certified.metrics`.

    Processing is per example and, for tuples, per tuple element:

    1. ``reduce_channels``. For a 4-D ``(N, C, H, W)`` attribution the channel axis is dim 1:
       ``"sum_abs"`` gives :math:`s = \sum_c |a_c|`, ``"mean_abs"`` gives
       :math:`s = \frac{1}{C}\sum_c |a_c|`, ``"abs"`` gives :math:`|a|` with the channel axis
       kept (element maps over C·H·W), ``None`` keeps the raw signed values. Attributions of any
       other rank have no channel axis: the three reductions then only take :math:`|a|`.
    2. ``normalize``. ``"sum_to_hw"`` rescales each map to :math:`s \cdot P / \sum s`, where P
       is the number of positions after reduction (H·W for an image map), i.e. mean 1;
       ``"sum_to_one"`` rescales to :math:`s / \sum s`; ``None`` does nothing. A map whose sum
       is 0 is left unchanged. Normalisation is meant for non-negative maps.
    3. ``flatten``. Each element becomes ``(bsz, -1)`` and the elements of a tuple are
       concatenated per example, in order.

    The named presets (``protocol=``, the read-only dict :data:`PRESETS`; the full table with
    the papers' k and aggregation rules is in ``docs/metrics.rst``):

    ==============  ===============  ================  ========================================
    protocol        reduce_channels  normalize         paper (code)
    ==============  ===============  ================  ========================================
    ``ghorbani``    ``"sum_abs"``    ``"sum_to_hw"``   Ghorbani et al., AAAI 2019 (amiratag)
    ``rar``         ``"sum_abs"``    ``"sum_to_hw"``   Chen et al., RAR, NeurIPS 2019 (jfc43)
    ``art``         ``"mean_abs"``   ``"sum_to_hw"``   Singh et al., ART (nupurkmr9)
    ``ssr``         ``"sum_abs"``    ``"sum_to_hw"``   Wang et al., SSR / UG (zifanw)
    ``levine``      ``"abs"``        None              Levine et al., 1905.12105 (element maps)
    ``dombrowski``  ``"sum_abs"``    ``"sum_to_one"``  Dombrowski et al., NeurIPS 2019
    ==============  ===============  ================  ========================================

    The metrics of this module are invariant to a positive per-example rescaling, so
    ``normalize`` (and ``"sum_abs"`` vs ``"mean_abs"``) only changes their values through ties
    created by floating-point rounding, or for tuples, whose elements are normalised
    separately.

    Args:

        attributions (Tensor or tuple[Tensor, ...]): Attributions whose dim 0 is the batch.
                Non-floating tensors are converted to the default dtype.
        reduce_channels (str, optional): ``"sum_abs"``, ``"mean_abs"``, ``"abs"`` or None.
                Default: None
        normalize (str, optional): ``"sum_to_hw"``, ``"sum_to_one"`` or None.
                Default: None
        protocol (str, optional): A key of :data:`PRESETS` (``"ghorbani"``, ``"rar"``,
                ``"art"``, ``"ssr"``, ``"levine"``, ``"dombrowski"``). It sets
                ``reduce_channels`` and ``normalize``, which must then be left as None (or
                equal the preset's values).
                Default: None
        flatten (bool, optional): If True, return one ``(bsz, d)`` tensor. If False, return
                the reduced maps with the structure of ``attributions``.
                Default: True

    Returns:

        **maps** (Tensor or tuple[Tensor, ...]):
                The preprocessed maps, in the attributions' floating dtype and device.

    Examples::

        >>> attr = torch.randn(2, 3, 8, 8)
        >>> maps = preprocess_attributions(attr, protocol="ghorbani", flatten=False)
        >>> maps.shape  # channel sum of |a|, rescaled so that each map sums to 8 * 8
        torch.Size([2, 8, 8])
    """
    reduce_channels, normalize = resolve_conventions(reduce_channels, normalize, protocol)
    attrs, is_tuple = _format_attr(attributions, "attributions")
    maps = _preprocess_tuple(attrs, reduce_channels, normalize)
    if flatten:
        return flatten_cat(maps)
    return maps if is_tuple else maps[0]
