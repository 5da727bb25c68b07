"""What an attack achieved, per example."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class AttackReport:
    r"""Per-example outcome of one ``perturb`` call (also stored as ``attack.last_report``).

    Attributes:
        success (Tensor): ``(bsz,)`` bool. True where the attack found an iterate satisfying its
                    label policy; False where it found none: those examples are returned
                    **unchanged** (the clean input).
        label (Tensor): ``(bsz,)`` int64, the original model's clean prediction, i.e. the label
                    that the policy keeps.
        label_kept (Tensor): ``(bsz,)`` bool, the original model's prediction on the returned
                    input equals ``label`` (always True under the hard policies).
        metric (Tensor): ``(bsz,)`` value of ``metric_name`` between the clean and the returned
                    input's attributions (original model; clean inputs give the metric's
                    no-change value, e.g. 1 for top-k intersection).
        metric_name (str): The selection metric.
        higher_is_stronger (bool): Direction of ``metric``.
        objective (Tensor): ``(bsz,)`` the attack's loss (lower = stronger) at the returned input,
                    evaluated on the original model; NaN where it is not defined.
        restart (Tensor): ``(bsz,)`` int64, the run (restart) the returned input came from,
                    -1 where the example failed.
        policy (str): The label policy used.
        extra (dict): Attack-specific values (documented by each attack).
    """

    success: Tensor
    label: Tensor
    label_kept: Tensor
    metric: Tensor
    metric_name: str
    higher_is_stronger: bool
    objective: Tensor
    restart: Tensor
    policy: str
    extra: dict = field(default_factory=dict)

    @property
    def failed(self) -> Tensor:
        """Indices of the examples for which no admissible iterate was found."""
        return torch.nonzero(~self.success, as_tuple=False).flatten()

    @property
    def success_rate(self) -> float:
        return float(self.success.to(torch.float64).mean().item()) if self.success.numel() else 0.0

    def __repr__(self) -> str:
        return (
            f"AttackReport(policy={self.policy!r}, success={int(self.success.sum())}/"
            f"{self.success.numel()}, {self.metric_name}: mean "
            f"{self.metric.to(torch.float64).mean().item():.4f})"
        )
