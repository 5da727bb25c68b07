"""Configuration of `captum-certified train` (no torch import: ``--help`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from captum_certified.cli._config import (
    ConfigError,
    check_options_at_least_one,
    check_positive_options,
    check_threads,
    config_from_dict,
)

LOSSES = ("natural", "ig_norm", "ig_sum_norm", "sarkar", "sarkar_adv", "ssr", "art")


@dataclass
class TrainConfig:
    """All parameters of a ``train`` run (see ``captum-certified train --help``).

    The robust losses' attack budget and weights are those of the matched-accuracy study on
    the 8x8 digits (docs/train_comparison.rst): l_inf radius 0.1, 3 PGD steps of 0.05, an
    8-point IG path (4 in the inner PGD), and per loss the weight that cost 0.03 test accuracy
    there (see ``build_loss``).
    """

    loss: str = "natural"
    out: str = "runs/natural"
    model: str = "digits"
    data: str = "digits"
    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    radius: float = 0.1
    step_num: int = 3
    step_size: float = 0.05
    n_steps: int = 8
    approx_factor: int = 2
    weight: float = -1.0  # -1: the loss's own default
    k: float = 0.3
    mixing: float = 0.3
    reduction: str = "mean"
    threads: int = 1
    image_size: int = 0

    def validate(self) -> TrainConfig:
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss must be one of {LOSSES}, got {self.loss!r}")
        check_options_at_least_one(
            self, ("epochs", "batch_size", "step_num", "n_steps", "approx_factor")
        )
        check_positive_options(self, ("lr", "radius", "step_size", "k"))
        if not 0 <= self.mixing <= 1:
            raise ConfigError(f"--mixing must be in [0, 1], got {self.mixing}")
        if self.n_steps % self.approx_factor:
            raise ConfigError("--n-steps must be a multiple of --approx-factor")
        if self.reduction not in ("sum", "mean"):
            raise ConfigError("--reduction must be sum or mean")
        if self.seed < 0 or self.threads < 0 or self.image_size < 0:
            raise ConfigError("--seed, --threads and --image-size must be >= 0")
        check_threads(self.threads)
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return config_from_dict(
            cls, data, "a train config must hold an object of options", "unknown train option(s)"
        )
