"""Attack objectives on attribution maps (Ghorbani et al., Levine et al.).

Every objective is a per-example *loss to minimize* over the attacked input; the attacks step
against its gradient. Maps follow the evaluation conventions of the metrics (docs/metrics.rst,
"Map conventions"): each attribution tensor is channel-reduced and normalized per example, then
flattened and concatenated over the tuple.
"""

from __future__ import annotations

import torch
from torch import Tensor

from captum_certified.metrics import preprocess_attributions
from captum_certified.metrics.kernels import center_kernel, flatten_cat, resolve_conventions
from captum_certified.transforms import topk_mask

Tensors = tuple[Tensor, ...]

OBJECTIVES = ("topk", "mass_center", "targeted", "random")


def check_conventions(reduce_channels: str | None, normalize: str | None) -> None:
    """The metrics' map conventions (one list of choices, one check)."""
    resolve_conventions(reduce_channels, normalize, None)


def attack_maps(
    attributions: Tensors, reduce_channels: str | None, normalize: str | None
) -> Tensors:
    r"""Per-tensor maps, preprocessed by :func:`captum_certified.metrics.preprocess_attributions`.

    ``"sum_abs"`` / ``"mean_abs"``: ``sum_c |a_c|`` / ``mean_c |a_c|`` for ``(N, C, H, W)``
    tensors and ``|a|`` otherwise; ``"abs"``: ``|a|`` with all elements kept (Levine et al.'s
    element maps); None: the raw values. ``"sum_to_hw"``: ``s * P / sum(s)`` with ``P`` the
    number of map positions (mean 1, Ghorbani et al.); ``"sum_to_one"``: ``s / sum(s)``
    (Levine et al., Dombrowski et al.); an all-zero map is left as it is. Differentiable.
    """
    maps = preprocess_attributions(
        attributions, reduce_channels=reduce_channels, normalize=normalize, flatten=False
    )
    return maps if isinstance(maps, tuple) else (maps,)


def flatten_maps(maps: Tensors) -> Tensor:
    """``(bsz, d)``: every map flattened, concatenated over the tuple (the metrics' layout)."""
    return flatten_cat(maps)


def center_of_mass(m: Tensor) -> Tensor:
    r"""``(sum_ij s_ij i, sum_ij s_ij j) / sum_ij s_ij`` over the last two dims (others
    summed), shape ``(bsz, 2)``, differentiable (as
    :func:`captum_certified.metrics.center_of_mass`, which has no graph). With ``sum_to_hw``
    maps it is Ghorbani et al.'s ``C(s) = (sum s_ij i, sum s_ij j) / (H W)``."""
    if m.dim() < 3:
        raise ValueError(
            "objective='mass_center' needs maps with two spatial dims (e.g. (N, C, H, W) inputs)"
        )
    m = m.reshape((m.shape[0], -1) + tuple(m.shape[-2:])).sum(dim=1)
    return center_kernel(m, min_total=torch.finfo(m.dtype).tiny)


class Objective:
    r"""A loss on the attacked map, given the clean map (both preprocessed).

    - ``"topk"``: ``sum_{i in T_k(s(x_0))} s_i(x)``, the mass left on the clean top-k;
    - ``"mass_center"``: ``-||C(s(x)) - floor(C(s(x_0)))||_2^2`` (single-tensor image inputs;
      the clean centre is floored to a pixel as in Ghorbani et al.'s code);
    - ``"targeted"``: ``-sum_i s_i(x) r_i`` for a region ``r`` (0/1 or weights, one value per
      map position), to pull attribution into it;
    - ``"random"``: no loss; the direction is random (Ghorbani et al.'s baseline).
    """

    def __init__(
        self,
        name: str,
        clean_maps: Tensors,
        k: int,
        region: Tensor | None = None,
    ) -> None:
        self.name = name
        self.k = k
        flat = flatten_maps(clean_maps).detach()
        self.topk = topk_mask(flat, k).to(flat.dtype) if name == "topk" else None
        if name == "mass_center":
            if len(clean_maps) != 1:
                raise ValueError("objective='mass_center' needs a single input tensor")
            self.center = center_of_mass(clean_maps[0].detach()).floor()
        self.region = region

    @property
    def needs_gradient(self) -> bool:
        return self.name != "random"

    def __call__(self, maps: Tensors) -> Tensor:
        if self.name == "topk":
            assert self.topk is not None
            return (flatten_maps(maps) * self.topk).sum(dim=1)
        if self.name == "mass_center":
            return -(center_of_mass(maps[0]) - self.center).pow(2).sum(dim=1)
        if self.name == "targeted":
            assert self.region is not None
            return -(flatten_maps(maps) * self.region).sum(dim=1)
        raise RuntimeError("the random objective has no loss")
