"""Singh et al.'s Attributional Robustness Training (ART): a triplet soft margin between the
input and its class gradients, and the top-k alignment attack that feeds it."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from captum_certified._utils.validation import (
    check_count_spec,
    check_int,
    check_positive,
    resolve_count,
)
from captum_certified.train._core.checks import (
    SurrogateForward,
    check_box,
    check_generator,
    frozen_eval,
)
from captum_certified.train._core.inner_max import linf_pgd
from captum_certified.train._core.reduce import ReducedRegularizer


def class_gradients(model, x: Tensor, y: Tensor, *, create_graph: bool = True) -> tuple:
    """``g+ = grad mean(z_y)`` and ``g- = grad mean(max_{c != y} z_c)`` w.r.t. ``x`` (a new
    leaf unless ``x`` already requires grad), each ``(bsz, D)``."""
    with torch.enable_grad():
        point = x if x.requires_grad else x.detach().requires_grad_()
        z = model(point)
        true = z.gather(1, y.reshape(-1, 1)).squeeze(1)
        other = z.masked_fill(F.one_hot(y, z.shape[1]).bool(), float("-inf")).amax(dim=1)
        (gp,) = torch.autograd.grad(
            true.mean(), point, create_graph=create_graph, retain_graph=True
        )
        (gn,) = torch.autograd.grad(other.mean(), point, create_graph=create_graph)
    b = x.shape[0]
    return gp.reshape(b, -1), gn.reshape(b, -1)


def _cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """``1 - <a_i, b_j> / ((|a_i| + 1e-8)(|b_j| + 1e-8))`` for all pairs, ``(n, n)``."""
    na = a.norm(dim=1) + 1e-8
    nb = b.norm(dim=1) + 1e-8
    return 1.0 - (a @ b.T) / na.unsqueeze(1) / nb.unsqueeze(0)


def art_triplet(model, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
    r"""ART's triplet term per row of ``X = [x; x_adv]``, ``(2 bsz,)``:
    ``ln(1 + exp(-(d_an - d_ap)))`` with ``d+(i, j) = 1 - cos(X_i, g+_j)``,
    ``d-(i, j) = 1 - cos(X_i, g-_j)`` and batch-hard mining over the pair of row ``i``
    (``j`` in {the clean row, the adversarial row} of the same example):
    ``d_ap = max_j d+``, ``d_an = min_j d-``."""
    b = x.shape[0]
    xx = torch.cat([x, x_adv], dim=0).detach()
    yy = torch.cat([y, y], dim=0)
    gp, gn = class_gradients(model, xx, yy)
    flat = xx.reshape(2 * b, -1)
    dp, dn = _cosine_distance(flat, gp), _cosine_distance(flat, gn)
    pair = torch.arange(b, device=x.device).repeat(2)
    same = pair.unsqueeze(0) == pair.unsqueeze(1)
    d_ap = dp.masked_fill(~same, float("-inf")).amax(dim=1)
    d_an = dn.masked_fill(~same, float("inf")).amin(dim=1)
    return F.softplus(-(d_an - d_ap))


class ARTRegularizer(ReducedRegularizer):
    r"""ART's triplet soft margin (see :func:`art_triplet`), reduced over the ``2 bsz`` rows.

    The input is aligned with the true-class gradient and pushed away from the gradient of
    the most-competing class, on both the clean and the adversarial point.

    Args:
        reduction (str, optional): ``"mean"`` (Singh et al.'s SoftMarginLoss) or ``"sum"``.
                    Default: "mean"

    Examples::

        >>> reg = ARTRegularizer()
        >>> value = reg(model, x, x_adv, y)
    """

    def per_example(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        return art_triplet(model, x, x_adv, y)


class ARTAttack:
    r"""ART's top-k alignment attack.

    From ``x + U(-radius, radius)`` (clipped to the box), fix the ``k`` features of largest
    ``|g+|`` (of the original model at the start), then take ``step_num`` sign-ascent steps on
    ``ln(1 + exp(-(d- - d+)))`` computed on those features only, with ``d+ = 1 - cos(x',
    g+)`` and ``d- = 1 - cos(x', g-)`` per example and the gradients taken on a
    Softplus(``softplus_beta``) twin. The walk runs in eval mode with frozen parameters.

    Args:
        radius (float, optional): l_inf radius. Default: 8/255
        step_size (float, optional): Sign-step length. Default: 5/255
        step_num (int, optional): Number of steps. Default: 3
        k (int or float, optional): Features kept: a count (<= number of features) or a
                    fraction. Default: 1000
        softplus_beta (float, optional): Twin's sharpness (None: the model). Default: 50.0
        lower_bound (float, optional): Smallest input value. Default: 0.0
        upper_bound (float, optional): Largest input value. Default: 1.0
        generator (torch.Generator, optional): Random-start source. Default: None

    Examples::

        >>> attack = ARTAttack(radius=0.1, step_size=0.05, k=0.3)
        >>> x_adv = attack(model, x, y)
    """

    def __init__(
        self,
        radius: float = 8 / 255,
        step_size: float = 5 / 255,
        step_num: int = 3,
        k: int | float = 1000,
        softplus_beta: float | None = 50.0,
        lower_bound: float = 0.0,
        upper_bound: float = 1.0,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.radius = check_positive(radius, "radius")
        self.step_size = check_positive(step_size, "step_size")
        self.step_num = check_int(step_num, "step_num", 1)
        self.k = check_count_spec(k, "k")
        self.surrogate = SurrogateForward(softplus_beta)
        self.lower, self.upper = check_box(lower_bound, upper_bound)
        self.generator = check_generator(generator)

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        b = x.shape[0]
        k = resolve_count(self.k, int(x[0].numel()), "k")
        with frozen_eval(model):
            forward = self.surrogate(model)
            # the random start, then the top-k of |g+| of the original model there
            start = linf_pgd(
                None,
                x,
                self.radius,
                self.step_size,
                0,
                self.lower,
                self.upper,
                generator=self.generator,
            )
            gp, _ = class_gradients(model, start, y, create_graph=False)
            idx = gp.abs().topk(k, dim=1).indices
            mask = torch.zeros_like(gp).scatter_(1, idx, 1.0).reshape(x.shape)

            def objective(z: Tensor) -> Tensor:
                g1, g2 = class_gradients(forward, z, y)
                m = mask.reshape(b, -1)
                flat = z.reshape(b, -1) * m
                d_p = 1 - F.cosine_similarity(flat, g1 * m, dim=1, eps=1e-6)
                d_n = 1 - F.cosine_similarity(flat, g2 * m, dim=1, eps=1e-6)
                return F.softplus(-(d_n - d_p))

            return linf_pgd(
                objective,
                x,
                self.radius,
                self.step_size,
                self.step_num,
                self.lower,
                self.upper,
                random_start=False,
                generator=self.generator,
                init=start,
            )
