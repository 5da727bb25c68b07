"""``noise_layer=``: the engine, its presets and the drop-in NoiseTunnel with noise at a layer."""

import pytest
import torch
from _text_models import TinyTokenClassifier
from captum.attr import (
    FeaturePermutation,
    IntegratedGradients,
    LayerIntegratedGradients,
    Saliency,
)
from captum.attr import NoiseTunnel as CaptumNoiseTunnel

from captum_certified.attr import (
    CertifiedWrapper,
    NoiseTunnel,
    RenyiRobustSmooth,
    SparseSmoothGrad,
)
from captum_certified.attr._core.layer_noise import LayerSubstitutedForward, to_layer_space
from captum_certified.transforms import Compose, TokenReduce, TopKBinarize


def _ids(batch=2):
    return torch.randint(1, 11, (batch, 6), generator=torch.Generator().manual_seed(0))


def test_acceptance_examples_run_as_written():
    model = TinyTokenClassifier().eval()
    ids = _ids()
    torch.manual_seed(0)
    # --- the example, verbatim ---
    from captum.attr import LayerIntegratedGradients

    from captum_certified.attr import CertifiedWrapper
    from captum_certified.transforms import TopKBinarize

    cw = CertifiedWrapper(
        LayerIntegratedGradients(model, model.embedding),
        noise_layer=model.embedding,
        transform=TopKBinarize(2),
    )
    attr, cert = cw.attribute(ids, target=1, nt_samples=512, stdevs=0.1, return_certificate=True)
    overlap = cert.topk_overlap(k=2, radius=0.5)  # l2 in the embedding layer's output space
    from captum_certified.attr import NoiseTunnel

    out = NoiseTunnel(
        LayerIntegratedGradients(model, model.embedding), noise_layer=model.embedding
    ).attribute(ids, nt_type="smoothgrad", nt_samples=8, stdevs=0.1, target=1)
    # --- end ---
    assert attr.shape == (2, 6, 4) and out.shape == (2, 6, 4)
    assert overlap.shape == (2,) and bool(((overlap >= 0) & (overlap <= 1)).all())
    assert cert.num_features == 24 and ids.dtype == torch.long


def test_same_numbers_as_the_mapped_call_and_as_the_1281_workaround():
    model = TinyTokenClassifier().eval()
    ids = _ids()
    lig = LayerIntegratedGradients(model, model.embedding)
    per_token = Compose(TokenReduce("l2"), TopKBinarize(2))
    got, cert = CertifiedWrapper(lig, noise_layer=model.embedding, transform=per_token).attribute(
        ids, target=1, nt_samples=32, stdevs=0.1, n_steps=8, return_certificate=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    call = to_layer_space(lig, model.embedding, (ids,), {"target": 1, "n_steps": 8})
    expected, cert2 = CertifiedWrapper(call.method, transform=per_token).attribute(
        call.inputs[0], nt_samples=32, stdevs=0.1, return_certificate=True,
        generator=torch.Generator().manual_seed(0), **call.kwargs,
    )  # fmt: skip
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(cert.lower, cert2.lower)
    assert got.shape == (2, 6)
    # Captum #1281's workaround by hand: capture h, substitute it, NoiseTunnel(IG) on h
    h = model.embedding(ids).detach()
    forward = LayerSubstitutedForward(model, model.embedding, 1)
    base = model.embedding(torch.zeros_like(ids)).detach()
    torch.manual_seed(3)
    by_hand = CaptumNoiseTunnel(IntegratedGradients(forward)).attribute(
        h, nt_type="smoothgrad", nt_samples=4, stdevs=0.1, target=1, baselines=base,
        additional_forward_args=(ids,), n_steps=8,
    )  # fmt: skip
    torch.manual_seed(3)
    drop_in = NoiseTunnel(lig, noise_layer=model.embedding).attribute(
        ids, nt_type="smoothgrad", nt_samples=4, stdevs=0.1, target=1, n_steps=8
    )
    torch.testing.assert_close(drop_in, by_hand, rtol=1e-5, atol=1e-6)


def test_presets_take_noise_layer():
    model = TinyTokenClassifier().eval()
    ids = _ids()
    g = torch.Generator().manual_seed(0)
    attr, cert = SparseSmoothGrad(model, sparsity=3, noise_layer=model.embedding).attribute(
        ids, target=1, nt_samples=64, stdevs=0.1, generator=g, return_certificate=True
    )
    assert attr.shape == (2, 6, 4) and cert.num_features == 24
    # the same as Saliency on the activation by hand (the preset's method and map)
    call = to_layer_space(Saliency(model), model.embedding, (ids,), {"target": 1})
    expected = CertifiedWrapper(call.method, transform=TopKBinarize(3)).attribute(
        call.inputs[0], nt_samples=64, nt_samples_batch_size=128, stdevs=0.1,
        generator=torch.Generator().manual_seed(0), **call.kwargs,
    )  # fmt: skip
    torch.testing.assert_close(attr, expected)
    rrs = RenyiRobustSmooth(model, sparsity=3, noise_layer=model.embedding)
    _, rcert = rrs.attribute(
        ids, target=1, nt_samples=32, stdevs=0.1, return_certificate=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert rcert.topk_overlap(3, 0.0).shape == (2,)


def test_refusals_apply_at_the_layer():
    model = TinyTokenClassifier().eval()
    ids = _ids()
    with pytest.raises(ValueError, match="FeaturePermutation"):
        CertifiedWrapper(
            FeaturePermutation(model), noise_layer=model.embedding, transform=TopKBinarize(2)
        ).attribute(ids, target=1, nt_samples=4, stdevs=0.1, return_certificate=True)
    bn = TinyTokenClassifier()
    bn.norm = torch.nn.BatchNorm1d(2)
    bn.train()
    before = bn.norm.running_mean.clone()
    with pytest.raises(ValueError, match="BatchNorm1d"):
        CertifiedWrapper(
            Saliency(bn), noise_layer=bn.embedding, transform=TopKBinarize(2)
        ).attribute(ids, target=1, nt_samples=4, stdevs=0.1, return_certificate=True)
    torch.testing.assert_close(bn.norm.running_mean, before)  # refused before any forward
    with pytest.raises(TypeError, match="`noise_layer`"):
        CertifiedWrapper(Saliency(model), noise_layer="embedding")
    with pytest.raises(ValueError, match="another layer"):
        CertifiedWrapper(
            LayerIntegratedGradients(model, model.linear), noise_layer=model.embedding
        ).attribute(ids, target=1, nt_samples=2)


def test_no_side_effects_and_noise_at_the_layer_input():
    model = TinyTokenClassifier().eval()
    ids = _ids()
    cw = CertifiedWrapper(Saliency(model), noise_layer=model.linear)
    state = torch.random.get_rng_state()
    out = cw.attribute(
        ids, target=1, nt_samples=4, stdevs=0.1, attribute_to_layer_input=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert out.shape == (2, 4)  # the linear layer's input: mean-pooled token vectors
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not model.linear._forward_hooks and not model.linear._forward_pre_hooks
    assert not model.embedding._forward_hooks and all(p.grad is None for p in model.parameters())
