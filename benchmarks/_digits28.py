"""An MNIST-sized stand-in for the benchmarks: scikit-learn's digits upsampled to 28x28.

MNIST cannot be downloaded everywhere, so this builds a d = 784 problem from data that ships
with scikit-learn: the 8x8 digits (values in [0, 1]) upsampled bilinearly to 1x28x28 (the
values stay in [0, 1]), the same train/test split as the embedded digits model, and
``_harness.SmallCNN`` (two 3x3 conv layers with max-pooling + a linear head, the MNIST-style
CNN the other benchmarks time) trained by Adam, single-threaded and deterministically, in a
few seconds. The weights are cached next to the embedded digits model (``$CAPTUM_CERTIFIED_CACHE``
or ``~/.cache/captum_certified``) with their SHA-256, like ``captum_certified.cli``'s default.

    from _digits28 import digits28_model, digits28_split
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from _harness import SmallCNN
from torch import Tensor, nn

from captum_certified.cli._digits import (
    _cache_dir,
    fit_classifier,
    load_digits_split,
    load_or_train,
)

#: Bump when the data, the architecture or the training recipe changes.
RECIPE_VERSION = 1


def upsample28(x: Tensor) -> Tensor:
    """``(N, 1, 8, 8)`` in [0, 1] -> ``(N, 1, 28, 28)``, bilinear, clamped to [0, 1]."""
    return F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)


def digits28_split(seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_test, y_test)``: the embedded model's split, upsampled."""
    x_train, y_train, x_test, y_test = load_digits_split(seed=seed)
    return upsample28(x_train), y_train, upsample28(x_test), y_test


def train_digits28(epochs: int = 8, seed: int = 0) -> tuple[nn.Module, float]:
    """Train ``SmallCNN`` on the upsampled digits (1 thread, seeded); model and test accuracy."""
    g = torch.Generator().manual_seed(seed)
    split = digits28_split(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN()
    return model, fit_classifier(model, split, epochs, g)


def digits28_model(seed: int = 0, cache: bool = True) -> tuple[nn.Module, float]:
    """The trained model (from the cache or trained and cached once) and its test accuracy."""
    key = hashlib.sha256(f"digits28-smallcnn-v{RECIPE_VERSION}-seed{seed}".encode()).hexdigest()
    path = _cache_dir() / f"digits28_cnn_{key[:12]}.pt"
    model = load_or_train(path, SmallCNN(), lambda: train_digits28(seed=seed)[0], cache)
    _, _, x_test, y_test = digits28_split(seed)
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return model, accuracy
