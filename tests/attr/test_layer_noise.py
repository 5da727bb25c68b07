"""Noise at a layer (Captum #1281's semantics): activation-space twins of Captum's layer methods.

The prototype maps a call on token ids to a call on the embedding activation ``h``; these tests
check that the twin computes exactly Captum's layer method at zero noise, that noise added to
``h`` is what the model sees at the layer, and that the existing engine run on the mapped call
gives a certificate in ``h``'s space.
"""

import numpy as np
import pytest
import torch
from _text_models import LinearTokenScorer, TinyTokenClassifier, TwiceEmbedded
from captum.attr import (
    FeatureAblation,
    FeaturePermutation,
    GradientShap,
    IntegratedGradients,
    LayerDeepLift,
    LayerFeatureAblation,
    LayerGradCam,
    LayerGradientShap,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    Saliency,
)

from captum_certified.attr import CertifiedWrapper
from captum_certified.attr._core.layer_noise import (
    LayerSubstitutedForward,
    capture_activation,
    to_layer_space,
)
from captum_certified.transforms import Compose, TokenReduce, TopKBinarize


def _ids(batch=3, length=6, vocab=11, seed=0):
    return torch.randint(1, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def _run(call):
    return call.method.attribute(call.inputs[0], **call.kwargs)


@pytest.mark.parametrize(
    "make, kwargs",
    [
        (lambda m: LayerIntegratedGradients(m, m.embedding), {"n_steps": 16}),
        (
            lambda m: LayerIntegratedGradients(m, m.embedding, multiply_by_inputs=False),
            {"n_steps": 8},
        ),
        (lambda m: LayerGradientXActivation(m, m.embedding), {}),
        (lambda m: LayerGradientXActivation(m, m.embedding, multiply_by_inputs=False), {}),
        (lambda m: LayerDeepLift(m, m.embedding), {}),
        (lambda m: LayerFeatureAblation(m, m.embedding), {}),
    ],
)
def test_twin_equals_captums_layer_method(make, kwargs):
    model = TinyTokenClassifier().eval()
    ids = _ids()
    method = make(model)
    base = torch.zeros_like(ids) if not isinstance(method, (LayerGradientXActivation,)) else None
    call_kwargs = dict(kwargs, target=1)
    if isinstance(method, (LayerIntegratedGradients, LayerDeepLift)):
        call_kwargs["baselines"] = base
    expected = method.attribute(ids, **call_kwargs)
    got = _run(to_layer_space(method, model.embedding, (ids,), call_kwargs))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_gradient_shap_twin_draws_its_baselines_in_the_layer_space():
    # Captum's LayerGradientShap cannot run on token ids (it interpolates the ids); its twin
    # is GradientShap on h with the baseline distribution mapped through the layer
    model = TinyTokenClassifier().eval()
    ids = _ids()
    method = LayerGradientShap(model, model.embedding)
    base = torch.tensor([[0] * 6, [1] * 6])
    call = to_layer_space(method, model.embedding, (ids,), {"baselines": base, "target": 1})
    torch.testing.assert_close(call.kwargs["baselines"], model.embedding(base))
    torch.manual_seed(0)
    np.random.seed(0)  # Captum draws GradientShap's baseline rows with numpy
    got = call.method.attribute(call.inputs[0], n_samples=4, **call.kwargs)
    torch.manual_seed(0)
    np.random.seed(0)
    expected = GradientShap(call.forward).attribute(
        model.embedding(ids),
        baselines=model.embedding(base),
        n_samples=4,
        target=1,
        additional_forward_args=(ids,),
    )
    torch.testing.assert_close(got, expected)


def test_default_baselines_are_the_layer_at_zero_ids():
    model = TinyTokenClassifier().eval()
    ids = _ids()
    lig = LayerIntegratedGradients(model, model.embedding)
    call = to_layer_space(lig, model.embedding, (ids,), {"target": 0})
    torch.testing.assert_close(call.kwargs["baselines"], model.embedding(torch.zeros_like(ids)))
    torch.testing.assert_close(_run(call), lig.attribute(ids, target=0), rtol=1e-5, atol=1e-6)


def test_input_method_is_applied_to_the_activation():
    model = LinearTokenScorer()
    ids = _ids(batch=2, length=5, vocab=7)
    call = to_layer_space(Saliency(model), model.embedding, (ids,), {"target": 1})
    got = call.method.attribute(call.inputs[0], abs=False, **call.kwargs)
    # d logit_1 / d h = w, the same for every example: the closed form
    torch.testing.assert_close(got, model.w.expand(2, 5, 3))
    # IntegratedGradients on the activation, baselines in the layer's space
    call = to_layer_space(
        IntegratedGradients(model),
        model.embedding,
        (ids,),
        {"target": 1, "baselines": torch.zeros(2, 5, 3)},
    )
    torch.testing.assert_close(_run(call), model.w * model.embedding(ids), rtol=1e-5, atol=1e-6)


def test_noise_on_h_is_what_the_model_sees_at_the_layer():
    model = TinyTokenClassifier().eval()
    ids = _ids()
    h = capture_activation(model, model.embedding, (ids,))
    torch.testing.assert_close(h, model.embedding(ids))
    eps = torch.randn(h.shape, generator=torch.Generator().manual_seed(1))
    f = LayerSubstitutedForward(model, model.embedding, 1)
    # by hand: the model's own computation with the embedding output moved by eps
    by_hand = model.linear(torch.tanh(model.embedding(ids) + eps + model.position).mean(1))
    torch.testing.assert_close(f(h + eps, ids), by_hand)
    assert not model.embedding._forward_hooks  # the hook is removed after the call


def test_noise_at_the_layer_input():
    model = TinyTokenClassifier().eval()
    ids = _ids()
    lin = model.linear
    h = capture_activation(model, lin, (ids,), layer_input=True)
    expected = torch.tanh(model.embedding(ids) + model.position).mean(1)
    torch.testing.assert_close(h, expected)
    f = LayerSubstitutedForward(model, lin, 1, layer_input=True)
    torch.testing.assert_close(f(h + 1.0, ids), lin(expected + 1.0))


def test_refusals():
    model = TinyTokenClassifier().eval()
    ids = _ids()
    with pytest.raises(TypeError, match="`noise_layer`"):
        to_layer_space(Saliency(model), [model.embedding], (ids,), {})
    with pytest.raises(ValueError, match="another layer"):
        to_layer_space(LayerIntegratedGradients(model, model.linear), model.embedding, (ids,), {})
    with pytest.raises(TypeError, match="LayerGradCam"):
        to_layer_space(LayerGradCam(model, model.embedding), model.embedding, (ids,), {})
    with pytest.raises(ValueError, match="did not run"):
        to_layer_space(Saliency(model), torch.nn.Linear(2, 2), (ids,), {})
    twice = TwiceEmbedded()
    call = to_layer_space(Saliency(twice), twice.embedding, (ids % 5,), {})
    with pytest.raises(ValueError, match="more than once"):
        call.forward(call.inputs[0], ids % 5)
    # the layer output must be floating point: an identity on the ids is refused
    ident = torch.nn.Identity()

    class Through(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ident = ident
            self.inner = model

        def forward(self, x):
            return self.inner(self.ident(x))

    with pytest.raises(ValueError, match="floating-point"):
        to_layer_space(Saliency(Through()), ident, (ids,), {})


def test_engine_on_the_layer_space_call_certifies_in_h_space():
    # the existing engine (noise at its inputs) run on the mapped call: the noise is drawn per
    # noisy row of h from the generator, and a certified top-2 token map comes back
    model = TinyTokenClassifier().eval()
    ids = _ids()
    lig = LayerIntegratedGradients(model, model.embedding)
    call = to_layer_space(lig, model.embedding, (ids,), {"target": 1, "n_steps": 8})
    cw = CertifiedWrapper(call.method, transform=Compose(TokenReduce("l2"), TopKBinarize(2)))
    g = torch.Generator().manual_seed(0)
    attr, cert = cw.attribute(
        call.inputs[0],
        nt_samples=32,
        stdevs=0.1,
        generator=g,
        return_certificate=True,
        **call.kwargs,
    )
    assert attr.shape == (3, 6)
    torch.testing.assert_close(attr.sum(1), torch.full((3,), 2.0))
    # by hand: LIG with the embedding output moved by the same noise
    g = torch.Generator().manual_seed(0)
    eps = 0.1 * torch.randn((3 * 32, 6, 4), generator=g)
    rows = ids.repeat_interleave(32, 0)
    with torch.no_grad():
        h_noisy = model.embedding(rows) + eps
    maps = IntegratedGradients(call.forward).attribute(
        h_noisy,
        baselines=call.kwargs["baselines"].repeat_interleave(32, 0),
        additional_forward_args=(rows,),
        target=1,
        n_steps=8,
    )
    scores = maps.norm(dim=-1)
    top = torch.zeros_like(scores).scatter_(1, scores.topk(2, dim=1).indices, 1.0)
    torch.testing.assert_close(attr, top.reshape(3, 32, 6).mean(1))
    assert cert.topk_overlap(k=2, radius=0.0).shape == (3,)


def test_shared_randomness_refusal_applies_to_the_twin():
    model = TinyTokenClassifier().eval()
    ids = _ids()
    call = to_layer_space(FeaturePermutation(model), model.embedding, (ids,), {"target": 1})
    with pytest.raises(ValueError, match="FeaturePermutation"):
        CertifiedWrapper(call.method, transform=TopKBinarize(2)).attribute(
            call.inputs[0], nt_samples=4, stdevs=0.1, return_certificate=True, **call.kwargs
        )
    # FeatureAblation attributes each row on its own: fine
    call = to_layer_space(FeatureAblation(model), model.embedding, (ids,), {"target": 1})
    assert _run(call).shape == (3, 6, 4)


def test_batch_statistics_refusal_sees_the_model_behind_the_layer():
    model = TinyTokenClassifier()
    model.norm = torch.nn.BatchNorm1d(2)  # registered, train mode: batch statistics
    model.train()
    ids = _ids()
    call = to_layer_space(Saliency(model), model.embedding, (ids,), {"target": 1})
    with pytest.raises(ValueError, match="BatchNorm1d"):
        CertifiedWrapper(call.method, transform=TopKBinarize(2)).attribute(
            call.inputs[0], nt_samples=4, stdevs=0.1, return_certificate=True, **call.kwargs
        )
