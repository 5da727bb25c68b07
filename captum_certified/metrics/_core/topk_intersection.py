#!/usr/bin/env python3
"""Top-k intersection between attribution maps."""

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.validation import resolve_count
from captum_certified.metrics._core.preprocess import TensorOrTuple, _prepare_pair_flat
from captum_certified.metrics.kernels import topk_overlap_count
from captum_certified.transforms import topk_mask


@log_usage()
@torch.no_grad()
def topk_intersection(
    attr_a: TensorOrTuple,
    attr_b: TensorOrTuple,
    k: int | float,
    reduce_channels: str | None = None,
    normalize: str | None = None,
    protocol: str | None = None,
) -> Tensor:
    r"""
    Fraction of the top-k features of ``attr_a`` that are also among the top-k features of
    ``attr_b``, per example: :math:`|T_k(s) \cap T_k(s')| / k`, where :math:`T_k(s)` holds the
    indices of the k largest entries of the preprocessed map s (Ghorbani et al., RAR, ART, SSR;
    Levine et al. with ``k`` a fraction of d).

    **Ties** are broken by lowest index: among equal values, the feature with the smaller
    flattened index is ranked higher, so the result is deterministic and reproducible with a
    plain Python loop. (The papers' code uses ``argsort(s)[-k:]`` / ``tf.nn.top_k``, whose tie
    order is arbitrary; the two can differ only on maps with ties at the k-th value.)

    Args:

        attr_a (Tensor or tuple[Tensor, ...]): Attributions with the batch in dim 0, e.g. the
                output of ``method.attribute``. Tuples are preprocessed element by element,
                then flattened and concatenated per example; the top-k is taken over the
                concatenation.
        attr_b (Tensor or tuple[Tensor, ...]): Attributions with the same structure and shapes
                as ``attr_a``.
        k (int or float): The number of top features, an ``int`` in 1..d, or a ``float``
                fraction in (0, 1] of the number d of features *after* channel reduction, in
                which case :math:`\lfloor k d \rfloor` features are used (at least 1).
        reduce_channels (str, optional): ``"sum_abs"``, ``"mean_abs"``, ``"abs"`` or None;
                see :func:`preprocess_attributions`. With None the top-k of the raw signed
                values is taken.
                Default: None
        normalize (str, optional): ``"sum_to_hw"``, ``"sum_to_one"`` or None. The top-k set
                does not depend on it (up to ties created by floating-point rescaling).
                Default: None
        protocol (str, optional): A key of :data:`PRESETS`, which sets ``reduce_channels``
                and ``normalize``.
                Default: None

    Returns:

        **intersection** (Tensor):
                ``(bsz,)`` fractions in [0, 1], in the attributions' floating dtype.

    Examples::

        >>> from captum.attr import Saliency
        >>> saliency = Saliency(net)
        >>> a = saliency.attribute(x, target=y)              # (N, 3, 16, 16)
        >>> b = saliency.attribute(x_adv, target=y)
        >>> topk_intersection(a, b, k=100, protocol="ghorbani")  # (N,)
        tensor([0.950, 0.960, 0.950, 0.920])
        >>> topk_intersection(a, b, k=0.25, protocol="levine")   # 25 % of 3*16*16 elements
        tensor([0.916, 0.947, 0.947, 0.890])
    """
    fa, fb, dtype = _prepare_pair_flat(attr_a, attr_b, reduce_channels, normalize, protocol)
    count = resolve_count(k, fa.shape[1], "k")
    return topk_overlap_count(topk_mask(fa, count), topk_mask(fb, count), count).to(dtype)
