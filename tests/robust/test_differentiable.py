"""The differentiable attribution path and the softplus surrogate.

- forward values equal Captum's Saliency / InputXGradient / IntegratedGradients (and
  NoiseTunnel(Saliency) for the SmoothGrad guide, from the same random numbers);
- gradients of the maps (create_graph=True) match central finite differences in float64;
- the surrogate replaces (inplace) ReLUs, leaves the original intact and converges to it.
"""

from __future__ import annotations

import pytest
import torch
from _toys import small_mlp
from captum.attr import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency
from torch import nn

from captum_certified.attr import differentiable_attribution
from captum_certified.robust import SoftplusReLU6, softplus_surrogate


class TwoInputNet(nn.Module):
    """Tuple inputs plus an additional forward argument (a per-example scale)."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            self.a = nn.Linear(5, 6)
            self.b = nn.Linear(3, 6)
            self.head = nn.Linear(6, 4)

    def forward(self, x1, x2, scale):
        return self.head(nn.functional.softplus(self.a(x1) + self.b(x2), beta=3.0)) * scale


def _data(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(3, 5, generator=g, dtype=dtype)
    x2 = torch.randn(3, 3, generator=g, dtype=dtype)
    scale = torch.rand(3, 1, generator=g, dtype=dtype) + 0.5
    return x1, x2, scale


@pytest.mark.parametrize(
    "name, method, kwargs",
    [
        ("saliency", Saliency, {}),
        ("input_x_gradient", InputXGradient, {}),
        ("integrated_gradients", IntegratedGradients, {"n_steps": 20}),
        (
            "integrated_gradients",
            IntegratedGradients,
            {"n_steps": 7, "method": "riemann_trapezoid"},
        ),
    ],
)
def test_maps_equal_captum(name, method, kwargs):
    model = TwoInputNet().to(torch.float64)
    x1, x2, scale = _data()
    target = [0, 3, 1]
    baselines = (torch.full_like(x1[:1], 0.2), 0.1) if name == "integrated_gradients" else None
    extra = {"baselines": baselines} if baselines is not None else {}
    ours = differentiable_attribution(
        model, (x1, x2), target, name, scale, create_graph=True, **kwargs, **extra
    )
    theirs = method(model).attribute(
        (x1, x2), target=target, additional_forward_args=scale, **kwargs, **extra
    )
    assert isinstance(ours, tuple) and len(ours) == 2
    for o, t in zip(ours, theirs):
        assert o.requires_grad  # graph kept through the model's parameters
        # Captum casts the IG weights to float32 (torch.tensor(step_sizes)): 1e-7 relative
        assert torch.allclose(o.detach(), t, rtol=1e-6, atol=1e-12)
    single = differentiable_attribution(model.a, x1, 2, name, **kwargs)
    ref = method(model.a).attribute(x1, target=2, **kwargs)
    assert isinstance(single, torch.Tensor) and torch.allclose(single, ref, atol=1e-12)


def test_smoothgrad_guide_equals_noise_tunnel_from_the_same_numbers():
    # float32: NoiseTunnel draws float32 noise whatever the input dtype
    model = TwoInputNet()
    x1, x2, scale = _data(torch.float32)
    ours = differentiable_attribution(
        model,
        (x1, x2),
        [1, 2, 0],
        "smoothgrad",
        scale,
        n_guide=5,
        stdevs=0.3,
        generator=torch.Generator().manual_seed(7),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        theirs = NoiseTunnel(Saliency(model)).attribute(
            (x1, x2),
            nt_type="smoothgrad",
            nt_samples=5,
            stdevs=0.3,
            target=[1, 2, 0],
            additional_forward_args=scale,
        )
    for o, t in zip(ours, theirs):
        assert torch.allclose(o.detach(), t, rtol=1e-5, atol=1e-7)


def _fd_check(fn, x: torch.Tensor, eps: float = 1e-6) -> float:
    """Max |autograd - central difference| of the scalar fn at x (float64)."""
    x = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(fn(x), x)
    fd = torch.zeros_like(x).flatten()
    flat = x.detach().flatten()
    for i in range(flat.numel()):
        e = torch.zeros_like(flat)
        e[i] = eps
        fd[i] = (fn((flat + e).reshape(x.shape)) - fn((flat - e).reshape(x.shape))) / (2 * eps)
    return (g.flatten() - fd).abs().max().item() / max(1.0, fd.abs().max().item())


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("saliency", {}),
        ("input_x_gradient", {}),
        ("integrated_gradients", {"n_steps": 8}),
        ("smoothgrad", {"n_guide": 4, "stdevs": 0.2}),
        ("sparse_smoothgrad", {"n_guide": 4, "stdevs": 0.2}),
    ],
)
def test_map_gradients_match_finite_differences(name, kwargs):
    # A softplus surrogate of a ReLU MLP in float64: smooth, so second derivatives exist.
    twin = softplus_surrogate(small_mlp(), beta=5.0)
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    w = torch.randn(2, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)

    def objective(z):
        # fixed noise for the smoothed maps: same seed at every evaluation
        a = differentiable_attribution(
            twin, z, [0, 2], name, generator=torch.Generator().manual_seed(5), **kwargs
        )
        m = a.abs() / a.abs().sum(1, keepdim=True)  # a normalized map, as the attacks use
        return (m * w).sum() + (a**2).sum()

    err = _fd_check(objective, x)
    print(f"\n[{name}] max relative |autograd - finite difference| = {err:.2e}")
    # central differences with eps 1e-6 in float64 are accurate to ~1e-8 here (measured
    # 1e-10 .. 1e-9); a wrong or missing second-order term is off by O(1)
    assert err < 1e-6


def test_softplus_surrogate_replaces_relus_and_leaves_the_original_intact():
    model = small_mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    twin = softplus_surrogate(model, beta=10.0)
    assert isinstance(model[1], nn.ReLU) and model[1].inplace  # original untouched
    assert isinstance(model[3], nn.ReLU6)
    assert isinstance(twin[1], nn.Softplus) and twin[1].beta == 10.0
    assert isinstance(twin[3], SoftplusReLU6)
    assert not any(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in twin.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.requires_grad for p in twin.parameters())
    twin[0].weight.data.add_(1.0)  # a deep copy: no shared parameters
    assert torch.equal(model[0].weight, before["0.weight"])
    keep6 = softplus_surrogate(model, 10.0, relu6=False)
    assert isinstance(keep6[3], nn.ReLU6)


def test_surrogate_converges_to_the_original_as_beta_grows():
    from _digits import trained_digits_cnn

    model, x, _, _ = trained_digits_cnn()
    x = x[:64]
    with torch.no_grad():
        ref = model(x)
        diffs = [
            (softplus_surrogate(model, b)(x) - ref).abs().max().item() for b in (1, 10, 100, 1000)
        ]
    print(f"\n[digits CNN] max |surrogate - original| logits, beta 1/10/100/1000: {diffs}")
    assert all(a > b for a, b in zip(diffs, diffs[1:]))  # strictly decreasing
    assert diffs[-1] < 0.05 * diffs[0]


def test_surrogate_input_checks():
    with pytest.raises(TypeError, match="model"):
        softplus_surrogate(lambda x: x, 1.0)
    with pytest.raises(ValueError, match="beta"):
        softplus_surrogate(small_mlp(), 0.0)
    with pytest.raises(TypeError, match="beta"):
        softplus_surrogate(small_mlp(), "10")


@pytest.mark.parametrize("create_graph", [True, False])
def test_attribute_with_graph_runs_captum_and_leaves_the_inputs_alone(create_graph):
    from captum_certified.attr._core.graph_attribution import attribute_with_graph

    model = TwoInputNet().to(torch.float64)
    x1, x2, scale = _data()
    target = torch.tensor([2, 0, 3])
    out = attribute_with_graph(
        IntegratedGradients,
        model,
        (x1, x2),
        target,
        (scale,),
        create_graph=create_graph,
        n_steps=6,
    )
    ref = IntegratedGradients(model).attribute(
        (x1, x2), target=target, additional_forward_args=scale, n_steps=6
    )
    for o, r in zip(out, ref):
        assert torch.equal(o.detach(), r)  # Captum's own code: the same numbers
        assert o.requires_grad == create_graph
    assert not x1.requires_grad and not x2.requires_grad  # caller's tensors untouched
    if create_graph:
        # double backprop through Captum's IG: d/dtheta of a function of the map
        (g,) = torch.autograd.grad(out[0].pow(2).sum(), model.a.weight)
        assert g.abs().sum() > 0
    with pytest.raises(ValueError, match="target"):
        attribute_with_graph(Saliency, model, (x1, x2), None, (scale,))
