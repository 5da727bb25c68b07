"""A whitespace word tokenizer with a fixed vocabulary (ids for models built in code)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

PAD, MASK, UNK = "[PAD]", "[MASK]", "[UNK]"


class WordTokenizer:
    r"""Lower-cased whitespace tokenizer over a fixed vocabulary.

    Ids 0, 1 and 2 are ``[PAD]``, ``[MASK]`` and ``[UNK]``; the words follow in the order
    given. Sentences are padded with ``[PAD]`` to the longest one (or cut to ``max_length``).
    It also offers the few methods Captum's ``TextTokenInput`` and ``LLMAttribution`` call
    (``encode``, ``decode``, ``convert_ids_to_tokens``, ``convert_tokens_to_ids``).

    Args:
        words (Sequence[str]): The vocabulary, without the special tokens.

    Examples::

        >>> tok = WordTokenizer(["good", "movie"])
        >>> tok(["good movie", "movie"])
        tensor([[3, 4],
                [4, 0]])
        >>> tok.decode([3, 4, 0])
        'good movie'
    """

    def __init__(self, words: Sequence[str]) -> None:
        words = list(words)
        if not all(isinstance(w, str) and w and not w.isspace() for w in words):
            raise ValueError("`words` must be non-empty strings")
        self.vocab = [PAD, MASK, UNK] + [w for w in words if w not in (PAD, MASK, UNK)]
        self.index = {w: i for i, w in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            raise ValueError("`words` must not repeat a word")
        self.pad_token_id, self.mask_token_id, self.unk_token_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, add_special_tokens: bool = False, **_: object) -> list[int]:
        """The ids of the words of ``text`` (unknown words are ``[UNK]``)."""
        if not isinstance(text, str):
            raise TypeError(f"`text` must be a str, got {type(text).__name__}")
        return [self.index.get(w, self.unk_token_id) for w in text.lower().split()]

    def __call__(self, texts: str | Sequence[str], max_length: int | None = None) -> Tensor:
        """``(N, T)`` ids of the texts, padded with ``[PAD]`` (0) to the longest."""
        items = [texts] if isinstance(texts, str) else list(texts)
        rows = [self.encode(t)[:max_length] for t in items]
        width = max((len(r) for r in rows), default=0)
        out = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return out

    def convert_ids_to_tokens(self, ids: int | Sequence[int] | Tensor) -> str | list[str]:
        if isinstance(ids, int):
            return self.vocab[ids]
        return [self.vocab[int(i)] for i in ids]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        if isinstance(tokens, str):
            return self.index.get(tokens, self.unk_token_id)
        return [self.index.get(t, self.unk_token_id) for t in tokens]

    def decode(self, ids: int | Sequence[int] | Tensor, **_: object) -> str:
        """The words of ``ids``, padding left out."""
        if isinstance(ids, Tensor):
            ids = ids.reshape(-1).tolist()
        elif isinstance(ids, int):
            ids = [ids]
        return " ".join(self.vocab[int(i)] for i in ids if int(i) != self.pad_token_id)

    def __repr__(self) -> str:
        return f"WordTokenizer({len(self.vocab)} tokens)"
