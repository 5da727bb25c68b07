"""The Quantus ``explain_func`` adapter returns exactly what our ``attribute`` (or Captum) returns.

These tests do not need Quantus: they call the adapter with Quantus's calling convention
(keyword ``model``, numpy ``inputs`` and ``targets``, ``device`` among the keyword arguments).
test_quantus_metrics.py runs Quantus itself when it is installed.
"""

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency
from torch import nn

from captum_certified.attr import (
    CertifiedWrapper,
    RenyiRobustSmooth,
    SparseSmoothGrad,
    UniformSmoothedAttribution,
)
from captum_certified.interop import quantus_explain_func
from captum_certified.noise import UniformCubeNoise


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    ).eval()


def _batch(bsz: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((bsz, 1, 8, 8), dtype=np.float32), rng.integers(0, 5, bsz)


CASES = {
    "sparse_smoothgrad": (SparseSmoothGrad, {"sparsity": 0.2}, {"stdevs": 0.3}),
    "renyi": (RenyiRobustSmooth, {"sparsity": 0.2}, {"stdevs": 0.3}),
    "uniform": (UniformSmoothedAttribution, {}, {"noise_scale": 0.3, "noise": UniformCubeNoise()}),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("bsz", [1, 3])
def test_adapter_equals_attribute(name, bsz):
    cls, init, kwargs = CASES[name]
    model = _model()
    x, y = _batch(bsz)
    explain = quantus_explain_func(cls, method_kwargs=init, seed=7, nt_samples=32, **kwargs)
    got = explain(model=model, inputs=x, targets=y, device="cpu")
    want = cls(model, **init).attribute(
        torch.from_numpy(x),
        target=torch.from_numpy(y),
        nt_samples=32,
        generator=torch.Generator().manual_seed(7),
        **kwargs,
    )
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(got, want.numpy())


def test_factory_with_captum_method_equals_noise_tunnel():
    model = _model()
    x, y = _batch()
    explain = quantus_explain_func(
        lambda m: CertifiedWrapper(IntegratedGradients(m)),
        seed=3,
        nt_type="smoothgrad_sq",
        nt_samples=6,
        stdevs=0.2,
        n_steps=5,
    )
    got = explain(model, x, y)
    torch.manual_seed(3)
    want = NoiseTunnel(IntegratedGradients(model)).attribute(
        torch.from_numpy(x),
        nt_type="smoothgrad_sq",
        nt_samples=6,
        stdevs=0.2,
        target=torch.from_numpy(y),
        n_steps=5,
    )
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-8)


def test_layer_method_with_postprocess_equals_noise_tunnel():
    model = _model()
    x, y = _batch()

    def upsample(a: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return LayerAttribution.interpolate(a, tuple(inputs.shape[-2:]))

    explain = quantus_explain_func(
        lambda m: CertifiedWrapper(LayerGradCam(m, m[0])),
        seed=5,
        postprocess=upsample,
        nt_samples=4,
        stdevs=0.1,
    )
    got = explain(model, x, y)
    torch.manual_seed(5)
    layer = NoiseTunnel(LayerGradCam(model, model[0])).attribute(
        torch.from_numpy(x), nt_samples=4, stdevs=0.1, target=torch.from_numpy(y)
    )
    want = upsample(layer, torch.from_numpy(x))
    assert got.shape == x.shape
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-5, atol=1e-8)


def test_seed_makes_calls_deterministic_and_none_uses_global_rng():
    model = _model()
    x, y = _batch()
    fixed = quantus_explain_func(SparseSmoothGrad, nt_samples=16, stdevs=0.3)
    np.testing.assert_array_equal(fixed(model, x, y), fixed(model, x, y))
    free = quantus_explain_func(SparseSmoothGrad, seed=None, nt_samples=16, stdevs=0.3)
    torch.manual_seed(11)
    first = free(model, x, y)
    torch.manual_seed(11)
    np.testing.assert_array_equal(first, free(model, x, y))
    assert not np.array_equal(first, free(model, x, y))  # the global stream moved on


def test_call_kwargs_override_defaults_and_model_state_is_kept():
    model = _model().train()
    x, y = _batch()
    explain = quantus_explain_func(Saliency, seed=None, abs=True)
    got = explain(model, x, y, abs=False)
    want = Saliency(model).attribute(
        torch.from_numpy(x).requires_grad_(), target=torch.from_numpy(y), abs=False
    )
    np.testing.assert_array_equal(got, want.detach().numpy())
    assert (got < 0).any()  # the override took effect
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_float64_model_and_integer_targets():
    model = _model().double()
    x, y = _batch()
    explain = quantus_explain_func(SparseSmoothGrad, nt_samples=8, stdevs=0.3)
    got = explain(model, x, [int(v) for v in y])
    assert got.dtype == np.float64
    want = SparseSmoothGrad(model).attribute(
        torch.from_numpy(x).double(),
        target=torch.from_numpy(y),
        nt_samples=8,
        stdevs=0.3,
        generator=torch.Generator().manual_seed(0),
    )
    np.testing.assert_array_equal(got, want.numpy())


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="method"):
        quantus_explain_func(3)
    with pytest.raises(TypeError, match="seed"):
        quantus_explain_func(SparseSmoothGrad, seed=1.5)
    with pytest.raises(ValueError, match="return_certificate"):
        quantus_explain_func(SparseSmoothGrad, return_certificate=True)
    explain = quantus_explain_func(SparseSmoothGrad, nt_samples=4)
    x, y = _batch()
    with pytest.raises(ValueError, match="return_certificate"):
        explain(_model(), x, y, return_certificate=True)
    with pytest.raises(TypeError, match="targets"):
        explain(_model(), x, y.astype(np.float32))
    with pytest.raises(TypeError, match="inputs"):
        explain(_model(), x.tolist(), y)
    with pytest.raises(TypeError, match="attribute"):
        quantus_explain_func(lambda m: m)(_model(), x, y)
