"""The embedded default digits CNN, trained once per test process and shared by the tests."""

from __future__ import annotations

import functools

import torch

from captum_certified.cli import load_digits_split, train_digits_cnn


@functools.lru_cache(maxsize=1)
def trained_digits_cnn() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, float]:
    """Return (model in eval mode, params frozen; test x; test y; test accuracy)."""
    model, accuracy = train_digits_cnn(seed=0)
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
