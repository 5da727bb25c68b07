#!/usr/bin/env python3
"""Center of mass of attribution maps and its shift (Ghorbani et al.)."""

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified.metrics._core.preprocess import (
    TensorOrTuple,
    _check_pair,
    _format_attr,
    _normalize_one,
    _reduce_one,
)
from captum_certified.metrics.kernels import centers, com_shift, resolve_conventions


def _prepare_2d(
    attrs: tuple[Tensor, ...],
    is_tuple: bool,
    name: str,
    reduce_channels: str | None,
    normalize: str | None,
) -> Tensor:
    """Preprocess formatted attributions into a non-negative (bsz, H, W) map."""
    if is_tuple:
        if len(attrs) != 1:
            raise ValueError(
                f"{name} must be a single tensor (or a 1-tuple) for the center of mass, got a "
                f"tuple of {len(attrs)} tensors"
            )
    s = _normalize_one(_reduce_one(attrs[0], reduce_channels), normalize)
    if s.dim() != 3:
        hint = (
            " (a 4-D (N, C, H, W) map needs reduce_channels='sum_abs' or 'mean_abs')"
            if attrs[0].dim() == 4
            else ""
        )
        raise ValueError(
            f"{name} must give a 2-D (H, W) map per example after channel reduction; got a "
            f"map of shape {tuple(s.shape[1:])} per example from reduce_channels="
            f"{reduce_channels!r}{hint}"
        )
    if (s < 0).any():
        raise ValueError(
            f"{name} has negative entries after preprocessing; the center of mass needs a "
            "non-negative map (use reduce_channels='sum_abs', 'mean_abs' or 'abs')"
        )
    return s


@log_usage()
@torch.no_grad()
def center_of_mass(
    attr: TensorOrTuple,
    reduce_channels: str | None = None,
    normalize: str | None = None,
    protocol: str | None = None,
    round_centers: bool = False,
) -> Tensor:
    r"""
    Center of mass of each preprocessed attribution map,
    :math:`C(s) = \left(\sum_{ij} s_{ij}\, i,\ \sum_{ij} s_{ij}\, j\right) / \sum_{ij} s_{ij}`,
    in pixel coordinates (row i, column j, 0-based).

    Ghorbani et al. divide by H·W instead of :math:`\sum s`, which is the same thing only for
    maps normalised to sum H·W (``normalize="sum_to_hw"``); dividing by :math:`\sum s` gives the
    same centers under any normalisation (or none).

    Args:

        attr (Tensor): Attributions with the batch in dim 0 whose preprocessed map is 2-D
                per example: ``(N, H, W)``, or ``(N, C, H, W)`` with
                ``reduce_channels="sum_abs"`` / ``"mean_abs"``. The map must be non-negative.
                A 1-tuple is accepted; longer tuples are not.
        reduce_channels (str, optional): See :func:`preprocess_attributions`.
                Default: None
        normalize (str, optional): See :func:`preprocess_attributions`; it does not change
                the centers.
                Default: None
        protocol (str, optional): A key of :data:`PRESETS`.
                Default: None
        round_centers (bool, optional): If True, floor each coordinate to an integer pixel,
                as Ghorbani et al.'s code does (``.astype(int)`` of non-negative centers);
                1e-9 is added first, so that a center that is an integer in exact arithmetic
                stays on its pixel despite rounding errors.
                Default: False

    Returns:

        **centers** (Tensor):
                ``(bsz, 2)`` (row, column) centers in the attributions' floating dtype. An
                all-zero map has no center: NaN.

    Examples::

        >>> c = center_of_mass(saliency.attribute(x, target=y), reduce_channels="sum_abs")
    """
    reduce_channels, normalize = resolve_conventions(reduce_channels, normalize, protocol)
    s = _prepare_2d(*_format_attr(attr, "attr"), "attr", reduce_channels, normalize)
    return centers(s, round_centers).to(s.dtype)


@log_usage()
@torch.no_grad()
def center_of_mass_shift(
    attr_a: TensorOrTuple,
    attr_b: TensorOrTuple,
    reduce_channels: str | None = None,
    normalize: str | None = None,
    protocol: str | None = None,
    round_centers: bool = False,
) -> Tensor:
    r"""
    Center-of-mass dislocation (Ghorbani et al.): the Euclidean distance, in pixels, between
    the centers of mass of two attribution maps, :math:`\|C(s) - C(s')\|_2`, per example. See
    :func:`center_of_mass` for :math:`C`. This is a *distance*: 0 means identical centers, and
    larger is less similar.

    Args:

        attr_a (Tensor): Attributions with the batch in dim 0 whose preprocessed map is 2-D
                per example (``(N, H, W)``, or ``(N, C, H, W)`` with a channel reduction) and
                non-negative.
        attr_b (Tensor): Attributions of the same shape as ``attr_a``.
        reduce_channels (str, optional): See :func:`preprocess_attributions`.
                Default: None
        normalize (str, optional): See :func:`preprocess_attributions`; it does not change
                the result.
                Default: None
        protocol (str, optional): A key of :data:`PRESETS`.
                Default: None
        round_centers (bool, optional): Floor both centers to integer pixels before taking
                the distance (Ghorbani et al.'s code).
                Default: False

    Returns:

        **shift** (Tensor):
                ``(bsz,)`` distances in pixels, in the attributions' floating dtype; NaN where
                either map is all zeros.

    Examples::

        >>> a = saliency.attribute(x, target=y)
        >>> b = saliency.attribute(x_adv, target=y)
        >>> center_of_mass_shift(a, b, protocol="ghorbani", round_centers=True)
        tensor([1., 0., 0., 0.])
    """
    reduce_channels, normalize = resolve_conventions(reduce_channels, normalize, protocol)
    a, a_is_tuple = _format_attr(attr_a, "attr_a")
    b, b_is_tuple = _format_attr(attr_b, "attr_b")
    _check_pair(a, b, a_is_tuple, b_is_tuple)
    sa = _prepare_2d(a, a_is_tuple, "attr_a", reduce_channels, normalize)
    sb = _prepare_2d(b, b_is_tuple, "attr_b", reduce_channels, normalize)
    dtype = torch.promote_types(sa.dtype, sb.dtype)
    shift = com_shift(centers(sa, round_centers), centers(sb, round_centers))
    return shift.to(dtype)
