"""``captum_certified.attr`` as a replacement import for ``captum.attr``; ``stdevs=0``."""

from __future__ import annotations

import inspect
import textwrap

import captum.attr
import pytest
import torch
from torch import nn

import captum_certified.attr as cc_attr
from captum_certified.attr import NoiseTunnel, SparseSmoothGrad
from captum_certified.certify import Certificate
from captum_certified.transforms import TopKBinarize


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def _x(batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, 5, generator=torch.Generator().manual_seed(1))


class ImageClassifier(nn.Module):
    """Nx3x32x32 images -> Nx10 class probabilities (the model Captum's example assumes)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 5, stride=3)
        self.fc = nn.Linear(4 * 10 * 10, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.fc(torch.relu(self.conv(x)).flatten(1)), dim=1)


def _docstring_example(obj) -> str:
    """The ``>>>`` lines of an Examples:: block, as a script."""
    doc = inspect.getdoc(obj)
    block = doc[doc.index("Examples::") :]
    lines = [ln.strip()[4:] for ln in block.splitlines() if ln.strip().startswith(">>>")]
    return textwrap.dedent("\n".join(lines))


def _run_example(source: str, import_line: str, seed: int) -> dict:
    torch.manual_seed(seed)
    namespace = {"torch": torch, "ImageClassifier": ImageClassifier}
    exec(import_line + "\n" + source, namespace)
    return namespace


def test_captum_noise_tunnel_docstring_example_with_only_the_import_swapped():
    source = _docstring_example(captum.attr.NoiseTunnel.attribute)
    assert "NoiseTunnel(ig)" in source and "nt.attribute(" in source
    names = "from {} import IntegratedGradients, NoiseTunnel"
    theirs = _run_example(source, names.format("captum.attr"), seed=3)
    ours = _run_example(source, names.format("captum_certified.attr"), seed=3)
    assert isinstance(ours["nt"], NoiseTunnel)
    assert isinstance(theirs["nt"], captum.attr.NoiseTunnel)
    assert ours["attribution"].shape == (2, 3, 32, 32)
    torch.testing.assert_close(ours["attribution"], theirs["attribution"], rtol=1e-5, atol=1e-8)


README_EXAMPLE = """
class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin1 = nn.Linear(3, 3)
        self.relu = nn.ReLU()
        self.lin2 = nn.Linear(3, 2)

    def forward(self, input):
        return self.lin2(self.relu(self.lin1(input)))

model = ToyModel()
model.eval()
input = torch.rand(2, 3)
baseline = torch.zeros(2, 3)
ig = IntegratedGradients(model)
nt = NoiseTunnel(ig)
attributions, delta = nt.attribute(input, nt_type='smoothgrad', stdevs=0.02, nt_samples=4,
    baselines=baseline, target=0, return_convergence_delta=True)
"""


def test_captum_readme_noise_tunnel_example_with_only_the_import_swapped():
    # Captum's README "Getting Started": IG + SmoothGrad with convergence deltas
    names = "from torch import nn\nfrom {} import IntegratedGradients, NoiseTunnel"
    theirs = _run_example(README_EXAMPLE, names.format("captum.attr"), seed=123)
    ours = _run_example(README_EXAMPLE, names.format("captum_certified.attr"), seed=123)
    assert ours["delta"].shape == theirs["delta"].shape == (8,)
    torch.testing.assert_close(ours["attributions"], theirs["attributions"])
    torch.testing.assert_close(ours["delta"], theirs["delta"])


def test_every_captum_attr_name_is_re_exported_unchanged():
    for name in captum.attr.__all__:
        assert name in cc_attr.__all__, name
        if name != "NoiseTunnel":
            assert getattr(cc_attr, name) is getattr(captum.attr, name), name
    namespace: dict = {}
    exec("from captum_certified.attr import *", namespace)
    assert namespace["NoiseTunnel"] is NoiseTunnel
    assert namespace["visualization"] is captum.attr.visualization


def _methods() -> dict:
    model = _model()
    return {
        "saliency": captum.attr.Saliency(model),
        "integrated_gradients": captum.attr.IntegratedGradients(model),
        "ig_global": captum.attr.IntegratedGradients(model, multiply_by_inputs=False),
        "feature_ablation": captum.attr.FeatureAblation(model),
        "layer_conductance": captum.attr.LayerConductance(model, model[1]),
        "neuron_gradient": captum.attr.NeuronGradient(model, model[1]),
        "deep_lift": captum.attr.DeepLift(model),
    }


@pytest.mark.parametrize("name", sorted(_methods()))
def test_attributes_match_captum_noise_tunnel(name):
    method = _methods()[name]
    theirs = captum.attr.NoiseTunnel(method)
    ours = NoiseTunnel(method)
    assert ours.attribution_method is method
    assert ours.forward_func is theirs.forward_func
    assert ours.is_delta_supported == theirs.is_delta_supported
    assert ours.is_gradient_method == theirs.is_gradient_method
    assert ours.multiplies_by_inputs == theirs.multiplies_by_inputs
    assert ours.has_convergence_delta() == theirs.has_convergence_delta()
    with pytest.raises(NotImplementedError):
        ours.attribute_future()


def test_constructor_and_attribute_signatures_extend_captums():
    def params(fn):
        return list(inspect.signature(fn).parameters.values())

    theirs = params(captum.attr.NoiseTunnel.__init__)
    ours = params(NoiseTunnel.__init__)
    assert [p.name for p in ours[: len(theirs)]] == [p.name for p in theirs]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ours[len(theirs) :])

    theirs = [p for p in params(captum.attr.NoiseTunnel.attribute) if p.kind != p.VAR_KEYWORD]
    ours = params(NoiseTunnel.attribute)
    for p, q in zip(theirs, ours):
        assert (q.name, q.kind, q.default) == (p.name, p.kind, p.default)
    extras = ours[len(theirs) :]
    assert extras[-1].kind is inspect.Parameter.VAR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extras[:-1])


def test_extras_are_keyword_arguments():
    model = _model()
    nt = NoiseTunnel(captum.attr.Saliency(model), transform=TopKBinarize(2))
    attr, cert = nt.attribute(
        _x(),
        nt_samples=50,
        stdevs=0.1,
        target=0,
        generator=torch.Generator().manual_seed(0),
        return_certificate=True,
    )
    assert isinstance(cert, Certificate)
    assert attr.shape == (3, 5)
    # TopKBinarize maps every sample to a 0/1 top-2 mask: the mean has row sums 2
    torch.testing.assert_close(attr.sum(dim=1), torch.full((3,), 2.0))


# -- stdevs = 0 ------------------------------------------------------------------------


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
@pytest.mark.parametrize("batch_size", [None, 3])
def test_zero_stdevs_matches_captum_and_the_plain_attribution(nt_type, batch_size):
    model = _model()
    x = _x()
    kwargs = dict(nt_type=nt_type, nt_samples=7, nt_samples_batch_size=batch_size, target=1)
    torch.manual_seed(5)
    theirs = captum.attr.NoiseTunnel(captum.attr.Saliency(model)).attribute(x, stdevs=0.0, **kwargs)
    for stdevs in (0.0, 0, torch.zeros(5)):
        torch.manual_seed(5)
        ours = NoiseTunnel(captum.attr.Saliency(model)).attribute(x, stdevs=stdevs, **kwargs)
        plain = captum.attr.Saliency(model).attribute(x, target=1)
        expected = {"smoothgrad": plain, "smoothgrad_sq": plain**2, "vargrad": 0 * plain}
        # rows of one batched matmul may differ in the last bit: vargrad ~ ulp^2, not 0
        atol = 1e-12 if nt_type == "vargrad" else 0.0
        torch.testing.assert_close(ours, expected[nt_type], rtol=1e-6, atol=atol)
        if nt_type != "vargrad":  # Captum's float32 E[a^2] - E[a]^2 is not exactly 0
            torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)


def test_zero_stdevs_per_input_in_a_tuple_matches_captum():
    torch.manual_seed(0)
    lin = nn.Linear(6, 2)

    def forward(a, b):
        return torch.tanh(lin(torch.cat([a, b], dim=1)))

    g = torch.Generator().manual_seed(2)
    inputs = (torch.randn(2, 4, generator=g), torch.randn(2, 2, generator=g))
    kwargs = dict(nt_samples=6, nt_samples_batch_size=4, stdevs=(0.0, 0.5), target=1)
    torch.manual_seed(9)
    theirs = captum.attr.NoiseTunnel(captum.attr.InputXGradient(forward)).attribute(
        inputs, **kwargs
    )
    torch.manual_seed(9)
    ours = NoiseTunnel(captum.attr.InputXGradient(forward)).attribute(inputs, **kwargs)
    for o, t in zip(ours, theirs):
        torch.testing.assert_close(o, t, rtol=1e-5, atol=1e-7)


def test_zeros_in_a_stdevs_tensor_leave_those_features_noise_free():
    seen = []

    class Record(captum.attr.Attribution):
        def attribute(self, inputs, **kwargs):
            seen.append(inputs.detach().clone())
            return inputs

    x = _x(2)
    stdevs = torch.tensor([0.0, 0.5, 0.0, 1.0, 0.0])
    NoiseTunnel(Record(lambda z: z)).attribute(
        x, nt_samples=100, stdevs=stdevs, generator=torch.Generator().manual_seed(0)
    )
    noise = seen[0].reshape(2, 100, 5) - x.unsqueeze(1)
    assert (noise[..., [0, 2, 4]] == 0).all()
    # 200 standard normal draws per column: the sample sd is within ~5% of sigma (4 sds)
    torch.testing.assert_close(
        noise[..., [1, 3]].std(dim=(0, 1)), torch.tensor([0.5, 1.0]), rtol=0.2, atol=0
    )


@pytest.mark.parametrize(
    "stdevs", [0.0, 0, (0.3, 0.0), torch.tensor([0.2, 0.0, 0.2, 0.2, 0.2])], ids=str
)
def test_a_certificate_refuses_zero_stdevs_and_says_why(stdevs):
    model = _model()
    if isinstance(stdevs, tuple):
        inputs = (_x(), _x())

        def forward(a, b):
            return model(a + b)

        method = captum.attr.Saliency(forward)
    else:
        inputs = _x()
        method = captum.attr.Saliency(model)
    nt = NoiseTunnel(method, transform=TopKBinarize(2))
    with pytest.raises(ValueError, match=r"`stdevs` must be > 0 .*certificate.*sigma > 0"):
        nt.attribute(inputs, nt_samples=4, stdevs=stdevs, target=0, return_certificate=True)
    # the same call without a certificate is plain smoothing
    attr = nt.attribute(inputs, nt_samples=4, stdevs=stdevs, target=0)
    assert _as_list(attr)[0].shape == (3, 5)


def _as_list(out):
    return list(out) if isinstance(out, tuple) else [out]


def test_presets_refuse_zero_stdevs_for_a_certificate():
    ssg = SparseSmoothGrad(captum.attr.Saliency(_model()), sparsity=2)
    with pytest.raises(ValueError, match="stdevs"):
        ssg.attribute(_x(), target=0, nt_samples=4, stdevs=0.0, return_certificate=True)


@pytest.mark.parametrize("stdevs", [-0.1, float("nan"), torch.tensor([0.1, -1e-9, 0, 0, 0])])
def test_negative_or_nan_stdevs_still_refused(stdevs):
    nt = NoiseTunnel(captum.attr.Saliency(_model()))
    with pytest.raises(ValueError, match="`stdevs` must be finite and >= 0"):
        nt.attribute(_x(), nt_samples=2, stdevs=stdevs, target=0)


@pytest.mark.parametrize("per_example", [False, True])
@pytest.mark.parametrize("as_tuple", [False, True])
def test_feature_mask_is_expanded_as_captum_does(per_example, as_tuple):
    model = _model()
    x = _x()
    mask = torch.tensor([[0, 0, 1, 1, 2]])
    if per_example:
        mask = torch.stack([mask[0], torch.tensor([0, 1, 1, 2, 2]), torch.tensor([2, 2, 2, 0, 1])])
    kwargs = dict(
        nt_samples=5,
        nt_samples_batch_size=2,
        stdevs=0.2,
        target=[0, 2, 1],
        feature_mask=(mask,) if as_tuple else mask,
    )
    torch.manual_seed(4)
    theirs = captum.attr.NoiseTunnel(captum.attr.FeatureAblation(model)).attribute(x, **kwargs)
    torch.manual_seed(4)
    ours = NoiseTunnel(captum.attr.FeatureAblation(model)).attribute(x, **kwargs)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)
    # masked features share one value per group
    assert (ours[0, 0] == ours[0, 1]).item() and (ours[0, 2] == ours[0, 3]).item()
