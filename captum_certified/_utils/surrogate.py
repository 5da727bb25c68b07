"""Softplus surrogates of ReLU networks, for second-order (attribution) gradients."""

from __future__ import annotations

import copy

from torch import Tensor, nn

from captum_certified._utils.validation import check_positive


class SoftplusReLU6(nn.Module):
    r"""Smooth ReLU6: ``softplus_beta(x) - softplus_beta(x - 6)``.

    It tends to ``min(max(x, 0), 6)`` as ``beta`` grows (the error is at most
    ``ln(2) / beta``), the way ``nn.Softplus(beta)`` tends to ReLU.

    Args:
        beta (float): Sharpness.
    """

    def __init__(self, beta: float) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, x: Tensor) -> Tensor:
        f = nn.functional.softplus
        return f(x, beta=self.beta) - f(x - 6.0, beta=self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


def _check_beta(beta: float) -> float:
    return check_positive(beta, "beta")


def softplus_surrogate(model: nn.Module, beta: float, *, relu6: bool = True) -> nn.Module:
    r"""A deep copy of ``model`` with its ReLU modules replaced by ``Softplus(beta)``.

    ReLU networks have a zero second derivative almost everywhere, so the gradient of a
    gradient-based attribution map with respect to the input vanishes and attacks that
    differentiate through the map cannot move. Every reference attack code base (Ghorbani et
    al., Dombrowski et al., Levine et al.) therefore differentiates a copy of the model in
    which ``ReLU(x)`` becomes ``Softplus_beta(x) = ln(1 + exp(beta * x)) / beta``, and checks
    labels and reports metrics on the original model. The attacks of this package do the same.

    Replaced: every ``torch.nn.ReLU`` submodule (``inplace=True`` or not) becomes
    ``torch.nn.Softplus(beta)``; with ``relu6=True`` every ``torch.nn.ReLU6`` becomes
    :class:`SoftplusReLU6` (``softplus(x) - softplus(x - 6)``). Not replaced: functional calls
    inside ``forward`` (``torch.relu``, ``F.relu``, ``x.clamp(min=0)``), other activations
    (``LeakyReLU``, ``GELU``, ... are left as they are) and a model that *is* a bare
    ``nn.ReLU`` (the copy of a module cannot replace itself; wrap it in ``nn.Sequential``).
    The copy keeps the original's train/eval mode and ``requires_grad`` flags; the original
    model is not modified. ``max |surrogate(x) - model(x)|`` shrinks as ``beta`` grows (each
    replaced unit is off by at most ``ln(2) / beta``).

    Args:
        model (torch.nn.Module): The ReLU network.
        beta (float): Softplus sharpness, > 0. Known choices: 10 -> 100 (Dombrowski et al.,
                    grown during the attack), 50 (ART).
        relu6 (bool, optional): Also replace ``nn.ReLU6`` modules. Default: True

    Returns:
        torch.nn.Module: the surrogate (a new module; ``model`` is untouched).

    Examples::

        >>> twin = softplus_surrogate(model, beta=10.0)
        >>> from captum_certified.robust import AttributionPGD
        >>> attack = AttributionPGD(model, surrogate=twin, lower_bound=0, upper_bound=1)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    beta = _check_beta(beta)
    twin = copy.deepcopy(model)
    for module in list(twin.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, name, nn.Softplus(beta=beta))
            elif relu6 and isinstance(child, nn.ReLU6):
                setattr(module, name, SoftplusReLU6(beta))
    return twin


def set_softplus_beta(model: nn.Module, beta: float) -> None:
    """Set ``beta`` of every Softplus unit of a surrogate (used for beta growth)."""
    for module in model.modules():
        if isinstance(module, (nn.Softplus, SoftplusReLU6)):
            module.beta = beta
