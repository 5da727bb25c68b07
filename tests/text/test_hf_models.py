"""Hugging Face models built from a config: Captum's LLM attribution, smoothed and certified with
noise at the input embedding. Skipped only when the optional ``text`` extra is absent."""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from _text_models import hf_word_tokenizer, tiny_bert_classifier, tiny_llama  # noqa: E402
from captum.attr import (  # noqa: E402
    FeatureAblation,
    LayerFeatureAblation,
    LayerIntegratedGradients,
    LLMAttribution,
    LLMGradientAttribution,
    TextTokenInput,
)

from captum_certified.attr import CertifiedWrapper  # noqa: E402
from captum_certified.attr._core.layer_noise import to_layer_space  # noqa: E402
from captum_certified.text import (  # noqa: E402
    CertifiedLLMAttribution,
    TargetLogProb,
    max_substitution_distance,
)
from captum_certified.transforms import Compose, TokenReduce, TopKBinarize  # noqa: E402


@pytest.fixture(scope="module")
def lm_and_tokenizer():
    return tiny_llama(), hf_word_tokenizer()


def test_zero_noise_equals_captums_llm_gradient_attribution(lm_and_tokenizer):
    lm, tok = lm_and_tokenizer
    emb = lm.get_input_embeddings()
    inp = TextTokenInput("the movie was good", tok)
    expected = LLMGradientAttribution(LayerIntegratedGradients(lm, emb), tok).attribute(
        inp, target="and great", n_steps=8
    )
    ours = CertifiedLLMAttribution(LayerIntegratedGradients(lm, emb), tok).attribute(
        inp, target="and great", n_steps=8, nt_samples=2, stdevs=0.0
    )
    assert ours.output_tokens == ["and", "great"] and ours.input_tokens == expected.input_tokens
    torch.testing.assert_close(ours.token_attr, expected.token_attr, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.seq_attr, expected.seq_attr, rtol=1e-4, atol=1e-5)


def test_zero_noise_feature_ablation_is_token_ablation(lm_and_tokenizer):
    # the layer twin replaces a token's embedding row by E[baseline token 0]: the same numbers
    # as ablating the token id by hand, and as Captum's LLMAttribution(FeatureAblation) for the
    # first generated token (Captum's later rows condition differently and are not compared)
    lm, tok = lm_and_tokenizer
    emb = lm.get_input_embeddings()
    inp = TextTokenInput("the movie was good", tok)
    ours = CertifiedLLMAttribution(LayerFeatureAblation(lm, emb), tok).attribute(
        inp, target="and great", nt_samples=1, stdevs=0.0
    )
    ids = torch.tensor([[2, 3, 4, 5]])
    by_hand = torch.zeros(2, 4)
    with torch.no_grad():
        for i in range(2):
            f = TargetLogProb(lm, torch.tensor([7, 8]), i)
            for p in range(4):
                ablated = ids.clone()
                ablated[0, p] = 0
                by_hand[i, p] = (f(ids) - f(ablated)).item()
    # TokenReduce("sum") adds the token's effect once per embedding dimension (16)
    torch.testing.assert_close(ours.token_attr / 16, by_hand, rtol=1e-4, atol=1e-5)
    expected = LLMAttribution(FeatureAblation(lm), tok).attribute(inp, target="and great")
    torch.testing.assert_close(by_hand[0], expected.token_attr[0], rtol=1e-4, atol=1e-5)


def test_certified_per_token_and_summed(lm_and_tokenizer):
    lm, tok = lm_and_tokenizer
    emb = lm.get_input_embeddings()
    inp = TextTokenInput("the movie was good and", tok)
    llm = CertifiedLLMAttribution(
        LayerIntegratedGradients(lm, emb),
        tok,
        transform=Compose(TokenReduce("l2"), TopKBinarize(2)),
    )
    g = torch.Generator().manual_seed(0)
    res, certs = llm.attribute(
        inp,
        target="great plot",
        nt_samples=64,
        stdevs=0.02,
        n_steps=4,
        generator=g,
        return_certificate=True,
    )
    assert res.token_attr.shape == (2, 5) and len(certs) == 2
    # the first token's forward sees the prompt only: its map sums to K = 2
    torch.testing.assert_close(
        res.token_attr[0].sum(), torch.tensor(2.0, dtype=res.token_attr.dtype)
    )
    for cert in certs:
        overlap = cert.topk_overlap(k=2, radius=0.0)
        assert overlap.shape == (1,) and 0.0 <= float(overlap) <= 1.0
        radius = float(cert.certified_radius(k=2, overlap=0.5))
        assert radius >= 0.0
    res_sum, certs_sum = llm.attribute(
        inp,
        target="great plot",
        per_token=False,
        nt_samples=64,
        stdevs=0.02,
        n_steps=4,
        generator=torch.Generator().manual_seed(0),
        return_certificate=True,
    )
    assert res_sum.token_attr.shape == (1, 5) and len(certs_sum) == 1
    assert res_sum.output_tokens == ["great plot"]


def test_summed_target_log_prob_is_the_sum_of_the_per_token_ones(lm_and_tokenizer):
    lm, tok = lm_and_tokenizer
    ids = torch.tensor([[2, 3, 4], [2, 3, 6]])
    target = torch.tensor([7, 8, 10])
    with torch.no_grad():
        total = TargetLogProb(lm, target)(ids)
        parts = sum(TargetLogProb(lm, target, i)(ids) for i in range(3))
        # by hand with the model's own logits
        full = torch.cat([ids, target[:2].expand(2, -1)], 1)
        logp = torch.log_softmax(lm(full).logits, -1)
        by_hand = sum(logp[:, 2 + i, target[i]] for i in range(3)).unsqueeze(1)
    torch.testing.assert_close(total, parts)
    torch.testing.assert_close(total, by_hand)


def test_sequence_classifier_from_config_certified_token_map():
    tok = hf_word_tokenizer()
    model = tiny_bert_classifier()
    layer = model.model.bert.embeddings.word_embeddings
    ids = tok(["the movie was good and great", "the plot was bad and awful"], return_tensors="pt")[
        "input_ids"
    ]
    lig = LayerIntegratedGradients(model, layer)
    call = to_layer_space(lig, layer, (ids,), {"target": 1, "n_steps": 4})
    cw = CertifiedWrapper(call.method, transform=Compose(TokenReduce("l2"), TopKBinarize(2)))
    attr, cert = cw.attribute(
        call.inputs[0],
        nt_samples=64,
        stdevs=0.05,
        return_certificate=True,
        generator=torch.Generator().manual_seed(0),
        **call.kwargs,
    )
    assert attr.shape == (2, 6)
    torch.testing.assert_close(attr.sum(1), torch.full((2,), 2.0, dtype=attr.dtype))
    # a synonym table read against the certificate: the largest move of any one substitution
    subs = {tok.convert_tokens_to_ids("good"): [tok.convert_tokens_to_ids("great")]}
    move = max_substitution_distance(layer, ids, subs, max_changes=1)
    w = layer.weight.detach()
    assert float(move[0]) == pytest.approx(float((w[8] - w[5]).norm()), rel=1e-6)
    assert float(move[1]) == 0.0
    radius = cert.certified_radius(k=2, overlap=0.5)
    assert radius.shape == (2,)
