"""The ``captum-certified`` command line and its embedded default (a digits CNN).

The names are imported on first use so that ``captum-certified --help`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DigitsCNN": "captum_certified.cli._digits",
    "default_digits_model": "captum_certified.cli._digits",
    "load_digits_split": "captum_certified.cli._digits",
    "train_digits_cnn": "captum_certified.cli._digits",
    "main": "captum_certified.cli._main",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["DigitsCNN", "default_digits_model", "load_digits_split", "main", "train_digits_cnn"]
