"""Sarkar, Sarkar and Balasubramanian's regularizers (AAAI 2021): L_CACR and L_WACR.

Notation as in the authors' code: ``x`` clean, ``x'`` the point of the inner maximisation,
IG with right Riemann sums over ``m`` points, ``p = softmax(logits)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from captum_certified.train._core.paths import class_ig, loss_ig, pixel_map
from captum_certified.train._core.reduce import PathRegularizer


def cacr(model, x_adv: Tensor, y: Tensor, n_steps: int) -> Tensor:
    r"""``KL(U || q_N) - KL(U || q_T)`` per example, ``(bsz,)``.

    ``q_T = softmax(sum_c TCA)`` and ``q_N = softmax(sum_c NCA)`` over pixels, where TCA/NCA
    are the IG of ``p_y`` / ``p_{c*(z)}`` along ``0 -> x'`` (channels summed with their sign)
    and U is uniform over the ``n`` pixels: ``KL(U || q) = -log n - mean_i log q_i``.
    """
    tca = pixel_map(class_ig(model, x_adv, y, n_steps, "true"), "sum")
    nca = pixel_map(class_ig(model, x_adv, y, n_steps, "other"), "sum")
    n = tca.shape[1]

    def kl_uniform(a: Tensor) -> Tensor:
        return -math.log(n) - torch.log_softmax(a, dim=1).mean(dim=1)

    return kl_uniform(nca) - kl_uniform(tca)


def wacr(model, x: Tensor, x_adv: Tensor, y: Tensor, n_steps: int) -> Tensor:
    r"""``sum_i [sign b_i = sign c_i] b_i c_i + [sign b_i != sign c_i] |c_i|`` per example,
    over all features, with ``b`` the IG of ``p_y`` along ``0 -> x`` and ``c = -IG_loss(x,
    x')``."""
    b = class_ig(model, x, y, n_steps, "true").reshape(x.shape[0], -1)
    c = -loss_ig(model, x, x_adv, y, n_steps).reshape(x.shape[0], -1)
    same = torch.sign(b) == torch.sign(c)
    return torch.where(same, b * c, c.abs()).sum(dim=1)


class CACRRegularizer(PathRegularizer):
    r"""Sarkar et al.'s class attribution change regularizer L_CACR (see :func:`cacr`),
    reduced over the batch. Inputs with more than two dims are ``(bsz, C, ...)``; the
    attributions are summed over the channel axis 1 before the pixel softmax.

    Args:
        n_steps (int, optional): IG path points ``m``. Default: 50
        reduction (str, optional): ``"sum"`` (the authors' code) or ``"mean"``.
                    Default: "sum"

    Examples::

        >>> reg = CACRRegularizer()
        >>> value = reg(model, x, x_adv, y)
    """

    def per_example(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        return cacr(model, x_adv, y, self.n_steps)


class WACRRegularizer(PathRegularizer):
    r"""Sarkar et al.'s weighted attribution change regularizer L_WACR (see :func:`wacr`),
    reduced over the batch.

    Args:
        n_steps (int, optional): IG path points ``m``. Default: 50
        reduction (str, optional): ``"sum"`` or ``"mean"``. Default: "sum"

    Examples::

        >>> reg = WACRRegularizer()
        >>> value = reg(model, x, x_adv, y)
    """

    def per_example(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        return wacr(model, x, x_adv, y, self.n_steps)
