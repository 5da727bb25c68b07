"""With identity transform and Gaussian noise the engine must reproduce Captum's NoiseTunnel."""

import pytest
import torch
from captum.attr import (
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
)
from torch import nn

from captum_certified.attr import CertifiedWrapper


class TwoInputModel(nn.Module):
    """forward(x1, x2, scale) with a per-example additional tensor argument."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 4)
        self.b = nn.Linear(3, 4)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.a(x1)) * scale.unsqueeze(1) + torch.sigmoid(self.b(x2)) ** 2


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def _noise_tunnel(method, inputs, seed, **kwargs):
    torch.manual_seed(seed)
    return NoiseTunnel(method).attribute(inputs, **kwargs)


def _ours(method, inputs, seed, **kwargs):
    return CertifiedWrapper(method).attribute(
        inputs, generator=torch.Generator().manual_seed(seed), **kwargs
    )


METHODS = {
    "saliency": (Saliency, {}),
    "input_x_gradient": (InputXGradient, {}),
    "integrated_gradients": (IntegratedGradients, {"n_steps": 7}),
}
TARGETS = {
    "int": 1,
    "tuple_of_one": (2,),
    "one_element_tensor": torch.tensor([0]),
    "list": [0, 2, 1, 1],
    "tensor": torch.tensor([2, 0, 1, 2]),
}


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
@pytest.mark.parametrize("method_name", sorted(METHODS))
@pytest.mark.parametrize("target_name", sorted(TARGETS))
@pytest.mark.parametrize("batch_size", [None, 3])
def test_tensor_input_matches_noise_tunnel(nt_type, method_name, target_name, batch_size):
    model = _model()
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    cls, extra = METHODS[method_name]
    kwargs = dict(
        nt_type=nt_type,
        nt_samples=7,
        nt_samples_batch_size=batch_size,
        stdevs=0.3,
        target=TARGETS[target_name],
        **extra,
    )
    if cls is IntegratedGradients:
        kwargs["baselines"] = torch.randn(4, 5, generator=torch.Generator().manual_seed(2))
    expected = _noise_tunnel(cls(model), x, 11, **kwargs)
    got = _ours(cls(model), x, 11, **kwargs)
    # float32 sums (Captum) vs float64 streaming (ours): relative 1e-5 is ~100 ulps of float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method_name", sorted(METHODS))
@pytest.mark.parametrize("batch_size", [None, 2])
def test_tuple_inputs_with_additional_forward_args(method_name, batch_size):
    torch.manual_seed(0)
    model = TwoInputModel()
    g = torch.Generator().manual_seed(3)
    inputs = (torch.randn(3, 6, generator=g), torch.randn(3, 3, generator=g))
    scale = torch.tensor([0.5, 1.0, 2.0])
    cls, extra = METHODS[method_name]
    kwargs = dict(
        nt_type="smoothgrad",
        nt_samples=5,
        nt_samples_batch_size=batch_size,
        stdevs=(0.2, 0.4),
        target=[1, 0, 3],
        additional_forward_args=(scale,),
        **extra,
    )
    if cls is IntegratedGradients:
        kwargs["baselines"] = (torch.zeros(1, 6), 0.1)
    expected = _noise_tunnel(cls(model), inputs, 5, **kwargs)
    got = _ours(cls(model), inputs, 5, **kwargs)
    assert isinstance(got, tuple) and len(got) == 2
    for g_, e_ in zip(got, expected):
        assert g_.shape == e_.shape
        torch.testing.assert_close(g_, e_, rtol=1e-5, atol=1e-6)


def test_convergence_delta_matches_noise_tunnel():
    model = _model()
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
    kwargs = dict(
        nt_samples=6,
        nt_samples_batch_size=4,
        stdevs=0.2,
        target=0,
        n_steps=5,
        return_convergence_delta=True,
    )
    exp_attr, exp_delta = _noise_tunnel(IntegratedGradients(model), x, 3, **kwargs)
    got_attr, got_delta = _ours(IntegratedGradients(model), x, 3, **kwargs)
    torch.testing.assert_close(got_attr, exp_attr, rtol=1e-5, atol=1e-6)
    # one delta per noisy sample, partition-major, as NoiseTunnel returns them
    assert got_delta.shape == (2 * 6,)
    torch.testing.assert_close(got_delta, exp_delta, rtol=1e-5, atol=1e-6)


def test_wrapping_a_noise_tunnel_unwraps_it():
    model = _model()
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
    expected = _noise_tunnel(Saliency(model), x, 9, nt_samples=4, stdevs=0.5, target=1)
    got = CertifiedWrapper(NoiseTunnel(Saliency(model))).attribute(
        x, nt_samples=4, stdevs=0.5, target=1, generator=torch.Generator().manual_seed(9)
    )
    torch.testing.assert_close(got, expected)


def test_global_rng_is_used_when_no_generator_is_given():
    model = _model()
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
    expected = _noise_tunnel(Saliency(model), x, 4, nt_samples=3, stdevs=0.5, target=1)
    torch.manual_seed(4)
    got = CertifiedWrapper(Saliency(model)).attribute(x, nt_samples=3, stdevs=0.5, target=1)
    torch.testing.assert_close(got, expected)


def test_int_stdevs_accepted_where_noise_tunnel_asserts_float():
    model = _model()
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(1))
    with pytest.raises(AssertionError):
        NoiseTunnel(Saliency(model)).attribute(x, nt_samples=3, stdevs=1, target=1)
    expected = _noise_tunnel(Saliency(model), x, 4, nt_samples=3, stdevs=1.0, target=1)
    got = _ours(Saliency(model), x, 4, nt_samples=3, stdevs=1, target=1)
    torch.testing.assert_close(got, expected)
