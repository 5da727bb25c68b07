"""Wang et al.'s Smoothed Surrogate Regularization (SSR): the top eigenvalue of a
Gauss-Newton proxy of the loss's input Hessian."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from captum_certified.train._core.reduce import ReducedRegularizer


def logit_jacobian(model, x: Tensor, *, create_graph: bool = True) -> tuple[Tensor, Tensor]:
    """The logits ``(bsz, C)`` and their input Jacobian ``W`` as ``(bsz, C, D)``, with the
    channel axis 1 averaged for inputs of more than two dims (``D = H * W``), by ``C``
    vector-Jacobian products with ``create_graph``."""
    with torch.enable_grad():
        point = x.detach().requires_grad_()
        z = model(point)
        rows = []
        for c in range(z.shape[1]):
            (g,) = torch.autograd.grad(
                z[:, c].sum(), point, create_graph=create_graph, retain_graph=True
            )
            if g.dim() > 2:
                g = g.mean(dim=1)
            rows.append(g.reshape(g.shape[0], -1))
    return z, torch.stack(rows, dim=1)


def ssr_curvature(model, x: Tensor) -> tuple[Tensor, Tensor]:
    r"""The curvature ``c(x) = lambda_max(W A W^T)`` per example (Wang et al.'s ``beta(x)``),
    and the logits.

    ``A = diag(p) - p p^T`` (the Hessian of the cross-entropy w.r.t. the logits) factors as
    ``A = F^T F`` with ``F = diag(sqrt p) (I - 1 p^T)`` (``A`` is the covariance of the
    one-hot label under ``p``), so ``W A W^T = (W F^T)(W F^T)^T`` shares its non-zero
    eigenvalues with the ``C x C`` matrix ``F W^T W F^T``, whose largest eigenvalue is taken
    with ``torch.linalg.eigvalsh``. This avoids differentiating an eigendecomposition of
    ``A`` (whose eigenvalues are degenerate near one-hot ``p``).
    """
    z, jac = logit_jacobian(model, x)  # (b, C, D): rows are W^T
    logp = torch.log_softmax(z, dim=1)
    p = logp.exp()
    eye = torch.eye(p.shape[1], dtype=p.dtype, device=p.device)
    f = (0.5 * logp).exp().unsqueeze(2) * (
        eye - p.unsqueeze(1)
    )  # (b, C, C): diag(sqrt p)(I - 1 p^T)
    wf = f @ jac  # (b, C, D) = F W^T
    gram = wf @ wf.transpose(1, 2)
    return torch.linalg.eigvalsh(gram)[:, -1], z


class SSRRegularizer(ReducedRegularizer):
    r"""SSR's curvature term ``c(x) = lambda_max(W A W^T)`` (see :func:`ssr_curvature`), at the
    clean point (``x_adv`` is ignored), reduced over the batch.

    ``W`` is the input Jacobian of the logits with the channel axis averaged; ``A = diag(p)
    - p p^T``. It costs ``C`` vector-Jacobian products with ``create_graph`` and one ``C x C``
    eigenvalue problem per example.

    Args:
        reduction (str, optional): ``"mean"`` (Wang et al.) or ``"sum"``. Default: "mean"

    Examples::

        >>> reg = SSRRegularizer()
        >>> value = reg(model, x, x, y)
    """

    def per_example(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        return ssr_curvature(model, x)[0]
