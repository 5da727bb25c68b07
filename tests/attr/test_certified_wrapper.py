"""Engine behaviour beyond NoiseTunnel equivalence: input checks, hygiene, determinism."""

import pytest
import torch
from captum.attr import Attribution, IntegratedGradients, NoiseTunnel, Saliency
from torch import nn

from captum_certified.attr import CertifiedWrapper
from captum_certified.transforms import ClipNormalize, TopKBinarize


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))


def _x(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 5, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            dict(stdevs=0.0, return_certificate=True, transform=TopKBinarize(2)),
            ValueError,
            "stdevs",
        ),
        (dict(stdevs=-1.0), ValueError, "stdevs"),
        (dict(stdevs=float("nan")), ValueError, "stdevs"),
        (dict(stdevs="0.1"), TypeError, "stdevs"),
        (dict(stdevs=(0.1, 0.2)), ValueError, "stdevs"),
        (dict(stdevs=torch.ones(3, 5)), ValueError, "stdevs"),
        (dict(nt_type="smoothgrad_avg"), ValueError, "nt_type"),
        (dict(nt_samples=0), ValueError, "nt_samples"),
        (dict(nt_samples=2.5), TypeError, "nt_samples"),
        (dict(nt_samples_batch_size=0), ValueError, "nt_samples_batch_size"),
        (dict(noise="laplace"), TypeError, "noise"),  # a noise object, not a name
        (dict(transform="topk"), TypeError, "transform"),
        (dict(target=[0, 1, 2]), ValueError, "target"),
        (dict(target=torch.tensor([0, 1, 2])), ValueError, "target"),
        (dict(target="top"), ValueError, "target"),
        (dict(return_certificate=True), ValueError, "return_certificate"),
        (
            dict(return_certificate=True, transform=TopKBinarize(2), alpha=0.0),
            ValueError,
            "alpha",
        ),
        (
            dict(return_certificate=True, transform=TopKBinarize(2), alpha=1.5),
            ValueError,
            "alpha",
        ),
        (
            dict(return_certificate=True, transform=ClipNormalize(2, 1), bound="clopper_pearson"),
            ValueError,
            "bound",
        ),
        (
            dict(return_certificate=True, transform=TopKBinarize(2), bound="bernstein"),
            ValueError,
            "bound",
        ),
        (dict(transform=TopKBinarize(6)), ValueError, "sparsity"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, error, match):
    cw = CertifiedWrapper(Saliency(_model()))
    kwargs.setdefault("target", 0)
    kwargs.setdefault("nt_samples", 3)
    with pytest.raises(error, match=match):
        cw.attribute(_x(), **kwargs)


def test_bad_inputs():
    cw = CertifiedWrapper(Saliency(_model()))
    x = _x()
    x[0, 1] = float("nan")
    with pytest.raises(ValueError, match="inputs"):
        cw.attribute(x, nt_samples=2, target=0)
    with pytest.raises(TypeError, match="inputs"):
        cw.attribute(torch.ones(2, 5, dtype=torch.long), nt_samples=2, target=0)
    with pytest.raises(TypeError, match="inputs"):
        cw.attribute([_x()], nt_samples=2, target=0)
    with pytest.raises(ValueError, match="inputs"):
        cw.attribute((), nt_samples=2, target=0)
    ig = CertifiedWrapper(IntegratedGradients(_model()))
    with pytest.raises(ValueError, match="baselines"):
        ig.attribute(_x(), nt_samples=2, target=0, baselines=(0.0, 0.0))
    with pytest.raises(TypeError, match="attribution_method"):
        CertifiedWrapper(_model())


def test_certificate_queries_reject_bad_k_and_radius():
    cw = CertifiedWrapper(Saliency(_model()), transform=TopKBinarize(2))
    _, cert = cw.attribute(_x(), nt_samples=20, target=0, return_certificate=True)
    for k in (0, 6, 1.5, 0.0, -0.1):
        with pytest.raises(ValueError, match="k"):
            cert.topk_overlap(k=k, radius=0.1)
    with pytest.raises(TypeError, match="k"):
        cert.topk_overlap(k="2", radius=0.1)
    for radius in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="radius"):
            cert.topk_overlap(k=2, radius=radius)
    with pytest.raises(ValueError, match="overlap"):
        cert.certified_radius(k=2, overlap=0.0)


@pytest.mark.parametrize("train_mode", [True, False])
def test_no_side_effects(train_mode):
    model = _model().train(train_mode)
    for p in model[0].parameters():
        p.requires_grad_(False)
    grads_before = {name: p.requires_grad for name, p in model.named_parameters()}
    x = _x()
    x_req = x.clone().requires_grad_()
    x_copy = x.clone()
    rng_before = torch.get_rng_state()
    cw = CertifiedWrapper(Saliency(model), transform=TopKBinarize(2))
    for inputs in (x, x_req):
        cw.attribute(
            inputs,
            nt_samples=8,
            nt_samples_batch_size=3,
            target=0,
            return_certificate=True,
            generator=torch.Generator().manual_seed(0),
        )
    assert model.training is train_mode
    assert {name: p.requires_grad for name, p in model.named_parameters()} == grads_before
    assert all(p.grad is None for p in model.parameters())
    assert not x.requires_grad and x_req.requires_grad and x_req.grad is None
    assert torch.equal(x, x_copy)
    assert torch.equal(torch.get_rng_state(), rng_before)
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks
        assert not module._forward_pre_hooks
    assert torch.is_grad_enabled()


def test_seeded_determinism_is_bitwise():
    cw = CertifiedWrapper(Saliency(_model().eval()), transform=TopKBinarize(2))

    def run():
        return cw.attribute(
            _x(3),
            nt_samples=50,
            nt_samples_batch_size=7,
            target=1,
            stdevs=0.4,
            return_certificate=True,
            generator=torch.Generator().manual_seed(123),
        )

    (a1, c1), (a2, c2) = run(), run()
    assert torch.equal(a1, a2)
    assert torch.equal(c1.lower, c2.lower) and torch.equal(c1.upper, c2.upper)
    (a3, _) = cw.attribute(
        _x(3),
        nt_samples=50,
        target=1,
        stdevs=0.4,
        return_certificate=True,
        generator=torch.Generator().manual_seed(124),
    )
    assert not torch.equal(a1, a3)


def test_per_example_and_relative_stdevs():
    model = _model().eval()
    x = _x(2)
    cw = CertifiedWrapper(Saliency(model), transform=TopKBinarize(2))
    per_example = torch.tensor([0.1, 0.3]).reshape(2, 1)
    attr, cert = cw.attribute(
        x, nt_samples=4, target=0, stdevs=per_example, return_certificate=True
    )
    torch.testing.assert_close(cert.scale, torch.tensor([0.1, 0.3], dtype=torch.float64))
    # relative: sigma = level * (max - min) of each example; never certified (it depends on x)
    with pytest.raises(ValueError, match="relative_stdevs"):
        cw.attribute(
            x, nt_samples=4, target=0, stdevs=0.2, relative_stdevs=True, return_certificate=True
        )
    span = (x.max(1).values - x.min(1).values).double()
    # relative noise really is scaled per example: record noisy inputs through an identity
    records = []

    class Recorder(Attribution):
        def attribute(self, inputs, **kwargs):
            records.append(inputs.clone())
            return inputs

    recorder = CertifiedWrapper(Recorder(lambda z: z))
    recorder.attribute(
        x,
        nt_samples=20000,
        stdevs=0.2,
        relative_stdevs=True,
        generator=torch.Generator().manual_seed(0),
    )
    noise = (records[0].reshape(2, 20000, 5) - x.unsqueeze(1)).std(dim=(1, 2))
    # sd of a sample sd with 1e5 draws is ~ sd / sqrt(2e5) ~ 0.2%; allow 1%
    torch.testing.assert_close(noise, (0.2 * span).float(), rtol=0.01, atol=0)


def test_tuple_stdevs_certificate_uses_smallest_scale():
    torch.manual_seed(0)
    lin = nn.Linear(4, 2)

    def forward(a, b):
        return lin(torch.cat([a, b], dim=1))

    cw = CertifiedWrapper(Saliency(forward), transform=TopKBinarize(2))
    inputs = (torch.randn(2, 3), torch.randn(2, 1))
    attr, cert = cw.attribute(
        inputs, nt_samples=10, target=0, stdevs=(0.5, 0.2), return_certificate=True
    )
    assert isinstance(attr, tuple) and attr[0].shape == (2, 3) and attr[1].shape == (2, 1)
    assert cert.num_features == 4
    torch.testing.assert_close(cert.scale, torch.full((2,), 0.2, dtype=torch.float64))
    # each sample contributes exactly two ones over the concatenated features
    total = attr[0].sum(1) + attr[1].sum(1)
    torch.testing.assert_close(total, torch.full((2,), 2.0))


def test_custom_method_without_log_usage_works():
    # NoiseTunnel calls attribute.__wrapped__ and fails on undecorated custom methods.
    class Doubler(Attribution):
        def attribute(self, inputs, target=None):
            return 2 * inputs

    x = _x()
    with pytest.raises(AttributeError):
        NoiseTunnel(Doubler(lambda z: z)).attribute(x, nt_samples=2)
    out = CertifiedWrapper(Doubler(lambda z: z)).attribute(
        x, nt_samples=4000, stdevs=0.1, generator=torch.Generator().manual_seed(0)
    )
    # mean of 2 (x + eps): standard error 2 * 0.1 / sqrt(4000) = 0.0032; allow 5 of them
    torch.testing.assert_close(out, 2 * x, rtol=0, atol=0.016)


def test_draw_baseline_from_distribution_uses_generator():
    model = _model().eval()
    x = _x()
    baselines = torch.randn(10, 5, generator=torch.Generator().manual_seed(4))
    cw = CertifiedWrapper(IntegratedGradients(model))
    runs = [
        cw.attribute(
            x,
            nt_samples=6,
            nt_samples_batch_size=4,
            target=0,
            baselines=baselines,
            draw_baseline_from_distrib=True,
            n_steps=5,
            generator=torch.Generator().manual_seed(8),
        )
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])


def test_vargrad_is_stable_under_a_large_offset():
    # E[a^2] - E[a]^2 in float32 loses everything at an offset of 1e4; Welford/Chan does not.
    class Offset(Attribution):
        def attribute(self, inputs, **kwargs):
            return inputs + 1e4

    x = torch.zeros(1, 3)
    out = CertifiedWrapper(Offset(lambda z: z)).attribute(
        x,
        nt_type="vargrad",
        nt_samples=5000,
        nt_samples_batch_size=333,
        stdevs=0.01,
        generator=torch.Generator().manual_seed(0),
    )
    # the variance of the recorded noise is 1e-4; its sample estimate is within ~2% (n=5000)
    torch.testing.assert_close(out, torch.full((1, 3), 1e-4), rtol=0.06, atol=0)


def test_gradient_function_swap_is_restored_even_on_error():
    from captum._utils.gradient import compute_gradients

    sal = Saliency(_model().eval())
    cw = CertifiedWrapper(sal)
    cw.attribute(_x(), nt_samples=3, target=0)
    assert sal.gradient_func is compute_gradients
    with pytest.raises(IndexError):
        cw.attribute(_x(), nt_samples=3, target=7)  # class 7 does not exist
    assert sal.gradient_func is compute_gradients
