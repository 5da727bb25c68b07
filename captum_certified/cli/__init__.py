"""The ``captum-certified`` command line and its embedded default (a digits CNN)."""

from captum_certified.cli._digits import (
    DigitsCNN,
    default_digits_model,
    load_digits_split,
    train_digits_cnn,
)
from captum_certified.cli._main import main

__all__ = ["DigitsCNN", "default_digits_model", "load_digits_split", "main", "train_digits_cnn"]
