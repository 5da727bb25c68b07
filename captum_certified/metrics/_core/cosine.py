#!/usr/bin/env python3
"""Cosine similarity between attribution maps."""

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified.metrics._core.preprocess import TensorOrTuple, _prepare_pair_flat
from captum_certified.metrics.kernels import cosine_flat


@log_usage()
@torch.no_grad()
def cosine_similarity(
    attr_a: TensorOrTuple,
    attr_b: TensorOrTuple,
    reduce_channels: str | None = None,
    normalize: str | None = None,
    protocol: str | None = None,
) -> Tensor:
    r"""
    Cosine similarity :math:`\langle s, s' \rangle / (\|s\|_2 \|s'\|_2)` between two
    preprocessed attribution maps, per example.

    SSR reports the cosine *distance* ``scipy.spatial.distance.cosine(s, s')``, which is
    ``1 - cosine_similarity(...)``, on normalised pixel maps (``protocol="ssr"``). The sums are
    taken in float64.

    Args:

        attr_a (Tensor or tuple[Tensor, ...]): Attributions with the batch in dim 0. Tuples
                are preprocessed element by element, then flattened and concatenated per
                example.
        attr_b (Tensor or tuple[Tensor, ...]): Attributions with the same structure and shapes
                as ``attr_a``.
        reduce_channels (str, optional): ``"sum_abs"``, ``"mean_abs"``, ``"abs"`` or None;
                see :func:`preprocess_attributions`.
                Default: None
        normalize (str, optional): ``"sum_to_hw"``, ``"sum_to_one"`` or None. Cosine
                similarity is invariant to the per-example rescaling, except for tuples, whose
                elements are normalised separately.
                Default: None
        protocol (str, optional): A key of :data:`PRESETS`, which sets ``reduce_channels``
                and ``normalize``.
                Default: None

    Returns:

        **cosine** (Tensor):
                ``(bsz,)`` values in [-1, 1], in the attributions' floating dtype; NaN where
                either map is all zeros (undefined, as with scipy).

    Examples::

        >>> cos = cosine_similarity(attr, attr_perturbed, protocol="ssr")
        >>> cosine_distance = 1 - cos
    """
    fa, fb, dtype = _prepare_pair_flat(attr_a, attr_b, reduce_channels, normalize, protocol)
    return cosine_flat(fa, fb).to(dtype)
