"""The embedded default digits CNN, trained once per test session and shared by the tests.

Under pytest-xdist every worker is its own process: the first one to need the model trains it
and saves it in a folder the whole session shares (``SHARED_DIR``, set by tests/conftest.py);
the others load it (a file lock makes them wait). The training is deterministic, so every
process gets the same weights either way.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from filelock import FileLock

from captum_certified.cli import DigitsCNN, load_digits_split, train_digits_cnn

# a folder shared by all processes of this test session (None: train in this process)
SHARED_DIR: Path | None = None


def _train_or_load() -> tuple[torch.nn.Module, float]:
    if SHARED_DIR is None:
        return train_digits_cnn(seed=0)
    path = SHARED_DIR / "digits_cnn_seed0.pt"
    with FileLock(f"{path}.lock"):
        if not path.exists():
            model, accuracy = train_digits_cnn(seed=0)
            torch.save({"state": model.state_dict(), "accuracy": accuracy}, path)
            return model, accuracy
    saved = torch.load(path, weights_only=True)
    model = DigitsCNN()
    model.load_state_dict(saved["state"])
    return model.eval(), float(saved["accuracy"])


@functools.lru_cache(maxsize=1)
def trained_digits_cnn() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, float]:
    """Return (model in eval mode, params frozen; test x; test y; test accuracy)."""
    model, accuracy = _train_or_load()
    for p in model.parameters():
        p.requires_grad_(False)
    _, _, x_test, y_test = load_digits_split(seed=0)
    return model, x_test, y_test, accuracy


def pick_examples(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first correctly classified digit of each of ``count`` different classes."""
    with torch.no_grad():
        pred = model(x).argmax(1)
    chosen, seen = [], set()
    for i in range(len(x)):
        if pred[i] == y[i] and int(y[i]) not in seen:
            chosen.append(i)
            seen.add(int(y[i]))
        if len(chosen) == count:
            break
    return x[chosen], y[chosen]
