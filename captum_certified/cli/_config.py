"""Run configuration: every parameter of a run, validated, saved next to its results."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

_Config = TypeVar("_Config")

METHODS = ("sparse_smoothgrad", "renyi", "uniform")
NOISES = {
    "sparse_smoothgrad": ("gaussian",),
    "renyi": ("gaussian", "laplace"),
    "uniform": ("l2_ball",),
}
NORMS = ("l1", "l2", "linf")
TARGETS = ("label", "predicted", "noisy_argmax")
DEVICES = ("cpu", "cuda", "auto")
#: Points of the default radius grid (``radii = "auto"``): 0 and 10 positive radii.
AUTO_RADII = 11
CERTIFICATES = ("topk", "feature")
#: auto = the method's default band (Clopper-Pearson on the binary maps the CLI certifies)
BOUND_CHOICES = ("auto", "clopper_pearson", "kl", "hoeffding", "betting")
#: The most noise samples per example (a run of more would not finish; counts stay exact).
MAX_NT_SAMPLES = 10**9


def max_threads() -> int:
    """The largest ``--threads``: four per CPU core (more only slows a run down)."""
    return 4 * (os.cpu_count() or 1)


#: The default noise scale (``noise_scale``).
DEFAULT_NOISE_SCALE = 0.5


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
    noise_scale: float = DEFAULT_NOISE_SCALE
    #: One value, or several answered from one sampling pass (each at ``alpha / m``).
    sparsity: int | float | list[int | float] = 0.2
    k: int | float = 0.2
    alpha: float = 0.05
    bound: str = "auto"
    target: str = "label"
    seed: int = 0
    radii: list[float] | str = "auto"
    level: float = 0.5
    threads: int = 1
    image_size: int = 0
    device: str = "cpu"
    certificate: str = "topk"

    @property
    def scale(self) -> float:
        """``noise_scale`` as a float."""
        return float(self.noise_scale)

    @property
    def sparsities(self) -> list[Any]:
        """The sparsities of the run: ``[sparsity]``, or the list of several."""
        return list(self.sparsity) if isinstance(self.sparsity, list) else [self.sparsity]

    @property
    def setting_alpha(self) -> float:
        """Each sparsity's alpha: ``alpha / m`` for ``m`` sparsities, so that all ``m``
        certificates hold together with probability at least ``1 - alpha`` (union bound)."""
        return self.alpha / len(self.sparsities) if len(self.sparsities) > 1 else self.alpha

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
        if self.bound not in BOUND_CHOICES:
            raise ConfigError(
                f"--bound must be one of {', '.join(BOUND_CHOICES)}, got {self.bound!r}"
            )
        check_options_at_least_one(self, ("n_examples", "nt_samples", "nt_samples_batch_size"))
        if self.start < 0 or self.image_size < 0 or self.seed < 0 or self.threads < 0:
            raise ConfigError("--start, --image-size, --seed and --threads must be >= 0")
        check_threads(self.threads)
        if self.nt_samples > MAX_NT_SAMPLES:
            raise ConfigError(
                f"--nt-samples must be at most {MAX_NT_SAMPLES:,} per example, got "
                f"{self.nt_samples:,}"
            )
        check_positive_options(self, ("noise_scale",))
        self.sparsity = parse_sparsities(self.sparsity)
        if isinstance(self.sparsity, list):
            if self.method == "uniform":
                raise ConfigError(
                    "several --sparsity values need a method with a sparsity (sparse_smoothgrad "
                    "or renyi); --method uniform has none"
                )
            if self.certificate == "feature":
                raise ConfigError("several --sparsity values need --certificate topk")
        self.k = parse_count(self.k, "--k")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha must be in (0, 1), got {self.alpha}")
        if self.device not in DEVICES:
            raise ConfigError(f"--device must be one of {DEVICES}, got {self.device!r}")
        if self.radii != "auto":
            if isinstance(self.radii, str) or not self.radii:
                raise ConfigError(f"--radii must be 'auto' or a list of radii, got {self.radii!r}")
            if any(not math.isfinite(r) or r < 0 for r in self.radii):
                raise ConfigError("--radii must be a non-empty list of finite radii >= 0")
            self.radii = sorted(float(r) for r in self.radii)
        return self

    def radius_grid(self, num_features: int) -> list[float]:
        """The radii of the run: ``radii`` as given, or the grid derived from the noise scale,
        the norm and the number of features ``d`` (``radii = "auto"``).

        The certified radii of each method scale with its noise scale: ``sigma`` for Gaussian
        noise in l2 (and l1, since ``||.||_2 <= ||.||_1``), ``3 b`` for Laplace noise in l1
        (its certificate decays more slowly), the ball radius ``R`` over ``sqrt(d)`` for
        uniform l2-ball noise; a norm other than the
        noise's own divides by the norm ratio (``sqrt(d)`` between l2 and l1 or linf, ``d``
        between l1 and linf). The grid has 11 points from 0 to that scale.
        """
        if self.radii != "auto":
            return list(self.radii)  # type: ignore[arg-type]
        d = max(1, int(num_features))
        scale = self.scale
        if self.method == "uniform":
            top = scale / math.sqrt(d)
        elif self.noise == "laplace":
            top = 3 * scale * {"l1": 1.0, "l2": 1 / math.sqrt(d), "linf": 1 / d}[self.norm]
        else:
            top = {"l1": scale, "l2": scale, "linf": scale / math.sqrt(d)}[self.norm]
        step = top / (AUTO_RADII - 1)
        return [float(f"{step * i:.6g}") for i in range(AUTO_RADII)]

    def resolved(self, num_features: int) -> RunConfig:
        """A copy with the radius grid made explicit (what ``config.toml`` records)."""
        return dataclasses.replace(self, radii=self.radius_grid(num_features))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        return config_from_dict(
            cls, values, "a config file must hold a table of options", "unknown configuration keys:"
        )

    # -- files -------------------------------------------------------------------------

    def dump_toml(self) -> str:
        lines = []
        for key, value in self.to_dict().items():
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a TOML (``.toml``), YAML (``.yaml``/``.yml``, needs PyYAML) or JSON file."""
        return cls.from_dict(read_config_file(path))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The keys of a ``--config`` file: TOML (``.toml``), YAML (``.yaml``/``.yml``, needs
    PyYAML) or JSON (``.json``); the one reader of every command.

    Every failure (missing file, unknown suffix, a syntax error, a file that is not a table of
    options) is a one-line :class:`ConfigError` naming ``--config``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config file {path} does not exist")
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise ConfigError(f"--config must be a .toml, .yaml or .json file, got {path.name}")
    text = path.read_text(encoding="utf-8")
    try:
        values = _parse(path, text)
    except (ValueError, ImportError) as err:
        if isinstance(err, ConfigError):
            raise
        what = f"--config file {path} is not valid {path.suffix[1:]}"
        raise ConfigError(f"{what}: {_first_line(err)}") from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"--config file {path} must hold a table of options, got {type(values).__name__}"
        )
    return values


def check_source_specs(model: str, data: str) -> None:
    """``--model`` and ``--data`` as far as they can be checked without torch: the spelling of
    each spec and that the named file or folder exists (the command line calls this before it
    imports torch, so a typo is told in a second)."""
    if model != "digits" and (":" not in model or not all(model.partition(":")[::2])):
        raise ConfigError(f"--model must be 'digits' or 'module:callable', got {model!r}")
    if data == "digits":
        return
    kind, _, location = data.partition(":")
    if kind == "tensors" and location:
        if not Path(location).is_file():
            raise ConfigError(f"--data file {location} does not exist")
    elif kind == "imagefolder" and location:
        if not Path(location).is_dir():
            raise ConfigError(f"--data image folder {location} does not exist")
    elif kind == "text" and location:
        if not Path(location).is_file():
            raise ConfigError(f"--data text file {location} does not exist")
    else:
        raise ConfigError(
            "--data must be 'digits', 'tensors:PATH', 'imagefolder:DIR' or 'text:FILE', got "
            f"{data!r}"
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def _parse(path: Path, text: str) -> Any:
    """The values of a TOML, YAML or JSON config (a YAML tag is refused, as any parse error)."""
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            try:
                import tomli as tomllib
            except ModuleNotFoundError as err:
                raise ConfigError("reading TOML on Python 3.10 needs `pip install tomli`") from err
        values = tomllib.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError as err:
            raise ConfigError("reading YAML configs needs `pip install pyyaml`") from err
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise ConfigError(
                f"--config {path} cannot be read: {' '.join(str(err).split())}"
            ) from None
    elif path.suffix == ".json":
        values = json.loads(text)
    else:
        raise ConfigError(f"--config must be a .toml, .yaml or .json file, got {path.name}")
    return values


def check_threads(threads: int) -> None:
    """``ConfigError`` unless ``0 <= threads <= max_threads()``."""
    if threads > max_threads():
        raise ConfigError(
            f"--threads must be at most {max_threads()} (4 per CPU core), got {threads}"
        )


#: The value types a config file may give, by the annotation of the field.
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "float | None": (int, float, type(None)),
    "int | float": (int, float, str),
    "int | float | list[int | float]": (int, float, str, list),
    "list[float] | str": (list, str),
}
#: The item types a list may hold, by the annotation of the field (default: numbers).
_ITEM_TYPES: dict[str, tuple[type, ...]] = {
    "int | float | list[int | float]": (int, float, str),
}


def check_types(cls: type, values: dict[str, Any], extra: dict[str, str] | None = None) -> None:
    """``ConfigError`` naming a key of ``values`` whose value has the wrong type."""
    kinds = {f.name: str(f.type) for f in fields(cls) if f.init} | dict(extra or {})
    for key, value in values.items():
        allowed = _TYPES.get(kinds.get(key, ""), (object,))
        if isinstance(value, bool) or not isinstance(value, allowed):
            names = " or ".join(t.__name__ for t in allowed if t is not type(None))
            raise ConfigError(
                f"config key `{key}` must be {names}, got {type(value).__name__} {value!r}"
            )
        items = _ITEM_TYPES.get(kinds.get(key, ""), (int, float))
        if isinstance(value, list) and not all(
            isinstance(v, items) and not isinstance(v, bool) for v in value
        ):
            what = "numbers" if str not in items else "counts, fractions or percentages"
            raise ConfigError(f"config key `{key}` must be a list of {what}, got {value!r}")


def option(name: str) -> str:
    """The command-line spelling of a configuration key."""
    return "--" + name.replace("_", "-")


def check_options_at_least_one(config: Any, names: tuple[str, ...]) -> None:
    """``ConfigError`` naming the option unless each of ``names`` is >= 1."""
    for name in names:
        if getattr(config, name) < 1:
            raise ConfigError(f"{option(name)} must be >= 1")


def check_positive_options(
    config: Any, keys: tuple[str, ...], names: tuple[str, ...] | None = None
) -> None:
    """``ConfigError`` naming the option (``names``: as the user spelled it) unless each of
    ``keys`` is a finite number > 0."""
    for key, name in zip(keys, names or keys):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{option(name)} must be a number, got {value!r}")
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{option(name)} must be > 0, got {value}")


def check_known_keys(
    cls: type, values: dict[str, Any], message: str, extra: tuple[str, ...] = ()
) -> None:
    """``ConfigError`` listing the keys of ``values`` that ``cls`` does not take."""
    known = {f.name for f in fields(cls) if f.init} | set(extra)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{message} {unknown}")


def config_from_dict(cls: type[_Config], values: Any, shape: str, unknown: str) -> _Config:
    """``cls(**values)`` after the checks every configuration file gets: ``values`` is a
    dict (else ``ConfigError`` ``"{shape}, got ..."``), every key is known (else ``unknown``
    and the list), every value has its field's type."""
    if not isinstance(values, dict):
        raise ConfigError(f"{shape}, got {values!r}")
    check_known_keys(cls, values, unknown)
    check_types(cls, values)
    return cls(**values)


def apply_arguments(config: Any, args: Any) -> None:
    """Set each configuration key the command line gave (not None) on ``config``."""
    for f in fields(config):
        value = getattr(args, f.name, None)
        if f.init and value is not None:
            setattr(config, f.name, value)


def parse_count(value: Any, option: str) -> int | float:
    """``--k`` / ``--sparsity``: an int count, a fraction in (0, 1) or a percentage ``"20%"``.

    Returns an ``int`` for a count and a ``float`` in (0, 1] for a fraction (the Python API's
    convention: ``1.0`` is all features). On the command line (strings) ``"1"`` is one feature,
    ``"20%"`` a fifth, ``"100%"`` all of them, and ``"1.0"`` is refused as ambiguous. In config
    files a float that is a whole number above 1 (written by older versions) is a count.
    """
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, bool):
        raise ConfigError(f"{option} must be a count, a fraction or a percentage, got {value!r}")
    if text is not None:
        try:
            if text.endswith("%"):
                percent = float(text[:-1])
                if not 0 < percent <= 100:
                    raise ConfigError(f"{option} as a percentage must be in (0%, 100%], got {text}")
                return percent / 100.0
            if text.isdigit():
                value = int(text)
            else:
                value = float(text)
                if value == 1.0:
                    raise ConfigError(
                        f"{option} 1.0 is ambiguous: write 1 for one feature or 100% for all"
                    )
                if value > 1:
                    raise ConfigError(
                        f"{option} {text}: a count is an integer without a decimal point "
                        f"(e.g. {int(value) if value.is_integer() else round(value)})"
                    )
        except ValueError as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(
                f"{option} must be a count (5), a fraction (0.2) or a percentage (20%), got "
                f"{text!r}"
            ) from None
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"{option} as a count must be >= 1, got {value}")
        return value
    if isinstance(value, float):
        if 0 < value <= 1:
            return value
        if value > 1 and value.is_integer():
            return int(value)
    raise ConfigError(
        f"{option} must be a count (>= 1), a fraction in (0, 1) or a percentage, got {value!r}"
    )


def parse_sparsities(value: Any) -> int | float | list[int | float]:
    """``--sparsity``: one value (:func:`parse_count`) or a list of several, distinct ones.

    A list of one is that value (the run is the same as with the value alone).
    """
    if not isinstance(value, list):
        return parse_count(value, "--sparsity")
    if not value:
        raise ConfigError("--sparsity must hold at least one value, got an empty list")
    parsed = [parse_count(v, "--sparsity") for v in value]
    seen: dict[tuple[type, float], Any] = {}
    for raw, v in zip(value, parsed):
        key = (type(v), v)
        if key in seen:
            raise ConfigError(
                f"--sparsity lists the same value twice ({seen[key]!s} and {raw!s}); give "
                "each sparsity once"
            )
        seen[key] = raw
    return parsed[0] if len(parsed) == 1 else parsed


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # a JSON string is a valid TOML basic string; non-ASCII text is written as itself
        # (JSON's \ud83d\ude00 surrogate pairs are not valid TOML escapes)
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
