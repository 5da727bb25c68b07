"""Run configuration: every parameter of a run, validated, saved next to its results."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

METHODS = ("sparse_smoothgrad", "renyi", "uniform")
NOISES = {
    "sparse_smoothgrad": ("gaussian",),
    "renyi": ("gaussian", "laplace"),
    "uniform": ("l2_ball",),
}
NORMS = ("l1", "l2", "linf")
TARGETS = ("label", "predicted", "noisy_argmax")
CERTIFICATES = ("topk", "feature")


class ConfigError(ValueError):
    """A parameter is invalid; the message names it."""


@dataclass
class RunConfig:
    """All parameters of a ``certify`` run (see ``captum-certified certify --help``)."""

    method: str = "sparse_smoothgrad"
    noise: str = "auto"
    norm: str = "l2"
    model: str = "digits"
    data: str = "digits"
    out: str = "runs/default"
    n_examples: int = 100
    start: int = 0
    nt_samples: int = 2048
    nt_samples_batch_size: int = 512
    stdevs: float = 0.5
    sparsity: float = 0.2
    k: float = 0.2
    alpha: float = 0.05
    bound: str = "auto"
    target: str = "label"
    seed: int = 0
    radii: list[float] = field(default_factory=lambda: [round(0.05 * i, 2) for i in range(11)])
    level: float = 0.5
    threads: int = 1
    image_size: int = 0
    certificate: str = "topk"

    def validate(self) -> RunConfig:
        if self.method not in METHODS:
            raise ConfigError(f"--method must be one of {METHODS}, got {self.method!r}")
        if self.noise == "auto":
            self.noise = NOISES[self.method][0]
        if self.noise not in NOISES[self.method]:
            raise ConfigError(
                f"--noise for --method {self.method} must be one of {NOISES[self.method]}, "
                f"got {self.noise!r}"
            )
        if self.certificate not in CERTIFICATES:
            raise ConfigError(
                f"--certificate must be one of {CERTIFICATES}, got {self.certificate!r}"
            )
        if self.certificate == "feature" and self.method != "sparse_smoothgrad":
            raise ConfigError("--certificate feature needs --method sparse_smoothgrad (Gaussian)")
        if self.norm not in NORMS:
            raise ConfigError(f"--norm must be one of {NORMS}, got {self.norm!r}")
        if self.method != "renyi" and self.norm != "l2":
            raise ConfigError(f"--norm {self.norm} needs --method renyi (the others certify l2)")
        if not 0 < self.level <= 1:
            raise ConfigError(f"--level must be in (0, 1], got {self.level}")
        if self.target not in TARGETS:
            raise ConfigError(f"--target must be one of {TARGETS}, got {self.target!r}")
        if self.bound not in ("auto", "clopper_pearson", "hoeffding"):
            raise ConfigError(
                f"--bound must be auto, clopper_pearson or hoeffding, got {self.bound!r}"
            )
        for name in ("n_examples", "nt_samples", "nt_samples_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        if self.start < 0 or self.image_size < 0 or self.seed < 0 or self.threads < 0:
            raise ConfigError("--start, --image-size, --seed and --threads must be >= 0")
        if not (math.isfinite(self.stdevs) and self.stdevs > 0):
            raise ConfigError(f"--stdevs must be > 0, got {self.stdevs}")
        for name in ("sparsity", "k"):
            value = getattr(self, name)
            if not (0 < value <= 1 or (value >= 1 and float(value).is_integer())):
                raise ConfigError(f"--{name} must be a fraction in (0, 1] or a count, got {value}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha must be in (0, 1), got {self.alpha}")
        if not self.radii or any(not math.isfinite(r) or r < 0 for r in self.radii):
            raise ConfigError("--radii must be a non-empty list of finite radii >= 0")
        self.radii = sorted(float(r) for r in self.radii)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown configuration keys: {unknown}")
        return cls(**values)

    # -- files -------------------------------------------------------------------------

    def dump_toml(self) -> str:
        lines = []
        for key, value in self.to_dict().items():
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a TOML (``.toml``), YAML (``.yaml``/``.yml``, needs PyYAML) or JSON file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"--config file {path} does not exist")
        text = path.read_text()
        if path.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                try:
                    import tomli as tomllib  # type: ignore[no-redef]
                except ModuleNotFoundError as err:
                    raise ConfigError(
                        "reading TOML on Python 3.10 needs `pip install tomli`"
                    ) from err
            values = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ModuleNotFoundError as err:
                raise ConfigError("reading YAML configs needs `pip install pyyaml`") from err
            values = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            values = json.loads(text)
        else:
            raise ConfigError(f"--config must be a .toml, .yaml or .json file, got {path.name}")
        return cls.from_dict(values)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
