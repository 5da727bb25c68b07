"""Small token models for the layer-noise and text tests (built in code, no downloads)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TinyTokenClassifier(nn.Module):
    """ids (N, T) -> 2 logits: token embedding + position embedding, tanh, mean pool, linear.

    The position embedding is added *after* the token embedding module, so noise at
    ``model.embedding`` perturbs the token vectors only.
    """

    def __init__(self, vocab: int = 11, dim: int = 4, length: int = 6, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embedding = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(0.1 * torch.randn(length, dim, generator=g))
        self.linear = nn.Linear(dim, 2)
        with torch.no_grad():
            self.embedding.weight.copy_(torch.randn(vocab, dim, generator=g))
            self.linear.weight.copy_(torch.randn(2, dim, generator=g))
            self.linear.bias.zero_()

    def forward(self, ids: Tensor) -> Tensor:
        h = self.embedding(ids) + self.position[: ids.shape[1]]
        return self.linear(torch.tanh(h).mean(1))


class LinearTokenScorer(nn.Module):
    """ids (N, T) -> (N, 2) with logit 1 = sum_t <w_t, E[ids_t]>: the gradient with respect to
    the embedding output is the constant ``w``, so Saliency maps are known in closed form."""

    def __init__(self, vocab: int = 7, dim: int = 3, length: int = 5, seed: int = 1) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embedding = nn.Embedding(vocab, dim)
        with torch.no_grad():
            self.embedding.weight.copy_(torch.randn(vocab, dim, generator=g))
        self.register_buffer("w", torch.randn(length, dim, generator=g))

    def forward(self, ids: Tensor) -> Tensor:
        score = (self.embedding(ids) * self.w[: ids.shape[1]]).sum((1, 2))
        return torch.stack([-score, score], dim=1)


class TwiceEmbedded(nn.Module):
    """Applies its embedding to two id tensors (a layer that runs twice per forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(5, 3)

    def forward(self, ids: Tensor) -> Tensor:
        return (self.embedding(ids) + self.embedding(ids.flip(1))).sum((1, 2)).unsqueeze(1)


WORDS = ["[PAD]", "[UNK]", "the", "movie", "was", "good", "bad", "and", "great", "awful", "plot"]


def hf_word_tokenizer(words=WORDS):
    """A Hugging Face fast tokenizer over a fixed word list, built in code (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]")


def tiny_llama(vocab_size=11, seed=0):
    """A one-layer Llama causal LM from a config, random weights (seeded)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()


class HFLogits(nn.Module):
    """``ids -> logits`` of a Hugging Face sequence classifier (Captum needs a tensor)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: Tensor) -> Tensor:
        return self.model(input_ids=ids, attention_mask=(ids != 0).long()).logits


def tiny_bert_classifier(vocab_size=11, seed=0):
    """A one-layer BERT sequence classifier from a config (2 labels), wrapped by HFLogits."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=32,
        num_labels=2,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return HFLogits(BertForSequenceClassification(config).eval())
