"""The embedded default: a small CNN trained on scikit-learn's real 8x8 digits.

Training is deterministic (local generators, fixed seeds) and takes a few seconds on CPU; the
trained weights are cached on disk so the command line trains once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

#: Bump when the architecture or the training recipe changes (invalidates cached weights).
RECIPE_VERSION = 1


class DigitsCNN(nn.Module):
    """Two 3x3 conv layers and a linear head for 1x8x8 inputs in [0, 1], 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def load_digits_split(
    seed: int = 0, n_train: int = 1400, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 digits as ``(N, 1, 8, 8)`` float32 in [0, 1], split at random.

    The split is drawn from ``generator`` (default: a new one seeded with ``seed``).

    Returns:
        tuple: ``(x_train, y_train, x_test, y_test)``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the embedded digits default needs scikit-learn: pip install 'captum-certified[cli]'"
        ) from err
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=generator)
    train, test = perm[:n_train], perm[n_train:]
    return x[train], y[train], x[test], y[test]


def train_digits_cnn(epochs: int = 15, seed: int = 0) -> tuple[DigitsCNN, float]:
    """Train :class:`DigitsCNN` with Adam; returns the model (eval mode) and test accuracy.

    Training runs single-threaded (the thread count changes float summation order, hence the
    weights), so every machine gets the same model. The global RNG and the thread count are
    left as found.
    """
    g = torch.Generator().manual_seed(seed)
    x_train, y_train, x_test, y_test = load_digits_split(generator=g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # parameter initialization
        model = DigitsCNN()
    return model, fit_classifier(model, (x_train, y_train, x_test, y_test), epochs, g)


def fit_classifier(
    model: nn.Module,
    split: tuple[Tensor, Tensor, Tensor, Tensor],
    epochs: int,
    generator: torch.Generator,
) -> float:
    """Train ``model`` on ``split = (x_train, y_train, x_test, y_test)`` with Adam (lr 3e-3,
    batches of 64 shuffled by ``generator``), single-threaded so every machine gets the same
    weights; leaves it in eval mode and returns its test accuracy. The thread count is left as
    found."""
    x_train, y_train, x_test, y_test = split
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(epochs):
            for idx in torch.randperm(len(x_train), generator=generator).split(64):
                loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            return (model(x_test).argmax(1) == y_test).float().mean().item()
    finally:
        torch.set_num_threads(threads)


def _cache_dir() -> Path:
    root = os.environ.get("CAPTUM_CERTIFIED_CACHE") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    return base / "captum_certified" if not os.environ.get("CAPTUM_CERTIFIED_CACHE") else base


def cached_model_path(seed: int = 0) -> Path:
    """Where :func:`default_digits_model` caches the weights trained with ``seed``."""
    key = hashlib.sha256(f"digits-cnn-v{RECIPE_VERSION}-seed{seed}".encode()).hexdigest()[:12]
    return _cache_dir() / f"digits_cnn_{key}.pt"


def save_cached_model(state_dict: dict, path: Path) -> None:
    """Write cached weights and, next to them, the SHA-256 of the file (``.sha256``)."""
    import io

    from captum_certified.cli._run_folder import write_bytes, write_text

    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, data)
    write_text(path.with_suffix(".sha256"), hashlib.sha256(data).hexdigest() + "\n")


def _load_cached(path: Path) -> dict | None:
    """The cached weights if the file matches its recorded SHA-256 (else None)."""
    sidecar = path.with_suffix(".sha256")
    if path.is_symlink() or not path.is_file() or not sidecar.is_file():
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sidecar.read_text().strip():
        return None  # planted or damaged: retrained
    import io

    return torch.load(io.BytesIO(data), weights_only=True)


def default_digits_model(seed: int = 0, cache: bool = True) -> DigitsCNN:
    """The trained default model, loaded from the cache or trained (and cached) once.

    The cache lives in ``$CAPTUM_CERTIFIED_CACHE`` (or ``~/.cache/captum_certified``) with
    the SHA-256 of each weights file next to it; a file that does not match its hash (planted,
    corrupt) or is stale is ignored and rewritten.
    """
    model = load_or_train(
        cached_model_path(seed), DigitsCNN(), lambda: train_digits_cnn(seed=seed)[0], cache
    )
    assert isinstance(model, DigitsCNN)
    return model


def load_or_train(
    path: Path, model: nn.Module, train: Callable[[], nn.Module], cache: bool = True
) -> nn.Module:
    """``model`` with the weights cached at ``path`` if they match their recorded SHA-256, else
    ``train()``'s model (its weights then cached at ``path`` when ``cache``); eval mode."""
    if cache:
        try:
            state = _load_cached(path)
            if state is not None:
                model.load_state_dict(state)
                return model.eval()
        except Exception:  # noqa: BLE001 - a broken cache file is retrained
            pass
    model = train()
    if cache:
        save_cached_model(model.state_dict(), path)
    return model.eval()
