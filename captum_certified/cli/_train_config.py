"""Configuration of `captum-certified train` (no torch import: ``--help`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from captum_certified.cli._config import (
    ConfigError,
    check_known_keys,
    check_options_at_least_one,
    check_positive_options,
    check_threads,
    check_types,
)

LOSSES = ("natural", "ig_norm", "ig_sum_norm", "sarkar", "sarkar_adv", "ssr", "art")


@dataclass
class TrainConfig:
    """All parameters of a ``train`` run (see ``captum-certified train --help``).

    The robust losses' defaults are scaled to the 8x8 digits: the MNIST radius of Chen et al.
    (0.3) with fewer, longer PGD steps and a 10-point IG path, so that an epoch takes seconds.
    """

    loss: str = "natural"
    out: str = "runs/natural"
    model: str = "digits"
    data: str = "digits"
    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    radius: float = 0.3
    step_num: int = 5
    step_size: float = 0.1
    n_steps: int = 10
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
        if not isinstance(data, dict):
            raise ConfigError(f"a train config must hold an object of options, got {data!r}")
        check_known_keys(cls, data, "unknown train option(s)")
        check_types(cls, data)
        return cls(**data)
