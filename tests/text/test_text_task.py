"""The text subpackage: embedding-space distances (against brute force), tokenizer, the VADER
sentiment task and the small transformer trained on it."""

import itertools

import pytest
import torch
from _text_models import TinyTokenClassifier

from captum_certified.text import (
    TokenTransformerClassifier,
    WordTokenizer,
    layer_distance,
    mask_tokens,
    max_substitution_distance,
)


def test_max_substitution_distance_against_enumeration():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(9, 3, generator=g, dtype=torch.float64)
    ids = torch.randint(0, 9, (4, 5), generator=g)
    subs = {0: [1, 2], 3: [4], 5: [6, 7, 8], 7: [0]}
    emb = torch.nn.Embedding.from_pretrained(weight)
    for max_changes in (None, 0, 1, 2, 5):
        got = max_substitution_distance(emb, ids, subs, max_changes=max_changes)
        for b in range(4):
            options = [[int(t)] + list(subs.get(int(t), [])) for t in ids[b]]
            best = 0.0
            for choice in itertools.product(*options):
                new = torch.tensor([choice])
                changed = int((new != ids[b : b + 1]).sum())
                if max_changes is not None and changed > max_changes:
                    continue
                d = float(layer_distance(emb, emb, ids[b : b + 1], new))
                best = max(best, d)
            assert float(got[b]) == pytest.approx(best, rel=1e-12, abs=1e-12)


def test_layer_distance_of_a_model_layer():
    model = TinyTokenClassifier().eval()
    ids = torch.tensor([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]])
    new = ids.clone()
    new[0, 2] = 7
    d = layer_distance(model, model.embedding, ids, new)
    w = model.embedding.weight.detach()
    torch.testing.assert_close(d, torch.stack([(w[7] - w[3]).norm(), torch.tensor(0.0)]))
    # the distance at a later layer (the input of the head: positions and tanh included)
    h = lambda x: torch.tanh(model.embedding(x) + model.position).mean(1)  # noqa: E731
    d = layer_distance(model, model.linear, ids, new, layer_input=True)
    torch.testing.assert_close(d, (h(new) - h(ids)).norm(dim=1).detach())


def test_distance_validation():
    emb = torch.nn.Embedding(4, 2)
    ids = torch.tensor([[1, 2]])
    with pytest.raises(ValueError, match="`perturbed_inputs`"):
        layer_distance(emb, emb, ids, torch.tensor([[1, 2, 3]]))
    with pytest.raises(TypeError, match="`layer`"):
        layer_distance(emb, "emb", ids, ids)
    with pytest.raises(ValueError, match="`ids`"):
        max_substitution_distance(emb, ids.float(), {})
    with pytest.raises(ValueError, match="`max_changes`"):
        max_substitution_distance(emb, ids, {}, max_changes=-1)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        max_substitution_distance(emb, ids, {1: [9]})
    with pytest.raises(TypeError, match="`embedding`"):
        max_substitution_distance(torch.zeros(3), ids, {})
    assert float(max_substitution_distance(emb, ids, {3: [0]})) == 0.0


def test_word_tokenizer():
    tok = WordTokenizer(["good", "bad", "movie"])
    assert len(tok) == 6
    ids = tok(["Good movie", "bad", "unseen words here"])
    assert ids.tolist() == [[3, 5, 0], [4, 0, 0], [2, 2, 2]]
    assert tok.decode(ids[0]) == "good movie"
    assert tok.convert_ids_to_tokens([3, 1]) == ["good", "[MASK]"]
    assert tok.convert_tokens_to_ids("bad") == 4
    assert tok(["good movie"], max_length=1).tolist() == [[3]]
    with pytest.raises(ValueError, match="`words`"):
        WordTokenizer(["good", "good"])
    with pytest.raises(TypeError, match="`text`"):
        tok.encode(3)  # type: ignore[arg-type]


def test_mask_tokens_keeps_k_uniform_positions():
    ids = torch.arange(1, 7).repeat(3000, 1)
    out = mask_tokens(ids, 2, mask_id=0, generator=torch.Generator().manual_seed(0))
    kept = out != 0
    assert (kept.sum(1) == 2).all() and (out[kept] == ids[kept]).all()
    # every position is kept with probability k/d = 1/3 (binomial sd 0.0086 at n = 3000)
    assert (kept.float().mean(0) - 1 / 3).abs().max() < 0.035
    with pytest.raises(ValueError, match="`keep`"):
        mask_tokens(ids, 7, mask_id=0)


def test_classifier_masks_padding_and_adds_positions_after_the_embedding():
    torch.manual_seed(0)
    model = TokenTransformerClassifier(vocab_size=10).eval()
    ids = torch.tensor([[3, 4, 5, 0, 0]])
    with torch.no_grad():
        out = model(ids)
        # a padded position changes nothing, whatever is at the embedding output there
        hook = model.embedding.register_forward_hook(
            lambda m, a, o: o + torch.tensor([0, 0, 0, 1.0, 1.0]).view(1, 5, 1)
        )
        moved = model(ids)
        hook.remove()
    torch.testing.assert_close(out, moved)


def test_sentiment_task_labels_follow_the_human_ratings():
    pytest.importorskip("vaderSentiment")
    from captum_certified.text import FILLERS, sentiment_task, vader_lexicon

    lexicon = vader_lexicon()
    assert len(lexicon) > 7000 and lexicon["good"] == 1.9
    task = sentiment_task(num_train=300, num_test=50, seed=1)
    assert not set(FILLERS) & set(task.ratings)
    for text, label in zip(task.train_texts, task.train_labels.tolist()):
        words = text.split()
        assert len(words) == 16
        rated = [w for w in words if w in task.ratings]
        assert 2 <= len(rated) <= 4
        total = sum(task.ratings[w] for w in rated)
        assert abs(total) >= 0.5 - 1e-9 and label == int(total > 0)
    assert 0.3 < task.train_labels.float().mean() < 0.7
    assert task.encode(task.test_texts).shape == (50, 16)
    assert sentiment_task(num_train=300, num_test=50, seed=1).train_texts == task.train_texts


@pytest.mark.slow
def test_small_transformer_learns_the_task():
    pytest.importorskip("vaderSentiment")
    from captum_certified.text import sentiment_task, train_text_classifier

    task = sentiment_task(num_train=2000, num_test=300)
    threads = torch.get_num_threads()
    model = train_text_classifier(task, epochs=6)
    assert torch.get_num_threads() == threads and not model.training
    with torch.no_grad():
        acc = (model(task.encode(task.test_texts)).argmax(1) == task.test_labels).float().mean()
    assert acc >= 0.85
