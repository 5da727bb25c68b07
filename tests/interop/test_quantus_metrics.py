"""Quantus's MaxSensitivity and LocalLipschitzEstimate run on SparseSmoothGrad through the adapter.

Skipped when Quantus (an optional extra, ``pip install quantus``) is absent. The perturbations
come from a seeded numpy generator that the test replays, so the scores Quantus reports are
recomputed independently here from our own ``attribute`` outputs.
"""

import numpy as np
import pytest
import torch
from torch import nn

from captum_certified.attr import SparseSmoothGrad
from captum_certified.interop import quantus_explain_func

quantus = pytest.importorskip("quantus")

N_PERTURB = 3
SCALE = 0.05
SEED = 4


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    ).eval()


def _perturb_func():
    rng = np.random.default_rng(1)

    def perturb(arr: np.ndarray, indices=None, **kwargs) -> np.ndarray:
        return arr + SCALE * rng.standard_normal(arr.shape)

    return perturb


def _ours(model: nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    attr = SparseSmoothGrad(model, sparsity=0.2).attribute(
        torch.from_numpy(x).float(),
        target=torch.from_numpy(y),
        nt_samples=64,
        stdevs=0.3,
        generator=torch.Generator().manual_seed(SEED),
    )
    return attr.numpy().reshape(len(x), -1).astype(np.float64)


def _reference(model, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Max over the replayed perturbations of Quantus's two ratios, from our own maps."""
    a = _ours(model, x, y)
    replay = _perturb_func()
    flat = x.reshape(len(x), -1)
    sens, lips = [], []
    for _ in range(N_PERTURB):
        x_p = replay(flat)
        a_p = _ours(model, x_p.reshape(x.shape), y)
        diff = np.linalg.norm(a - a_p, axis=1)
        sens.append(diff / np.linalg.norm(a, axis=1))
        lips.append(diff / (np.linalg.norm(flat - x_p, axis=1) + 1e-10))
    return np.max(sens, axis=0), np.max(lips, axis=0)


def test_max_sensitivity_and_local_lipschitz_match_our_maps():
    model = _model()
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).argmax(1).numpy()
    explain = quantus_explain_func(
        SparseSmoothGrad, method_kwargs={"sparsity": 0.2}, seed=SEED, nt_samples=64, stdevs=0.3
    )
    common = dict(nr_samples=N_PERTURB, normalise=False, abs=False, disable_warnings=True)
    call = dict(model=model, x_batch=x, y_batch=y, explain_func=explain, device="cpu")
    sensitivity = quantus.MaxSensitivity(perturb_func=_perturb_func(), **common)(**call)
    lipschitz = quantus.LocalLipschitzEstimate(perturb_func=_perturb_func(), **common)(**call)
    want_sens, want_lips = _reference(model, x, y)
    np.testing.assert_allclose(np.asarray(sensitivity), want_sens, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(lipschitz), want_lips, rtol=1e-5)
    assert (want_sens > 0).all()  # the smoothed map does move: the comparison has content
