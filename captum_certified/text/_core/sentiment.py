"""A real offline text task: sentences built from VADER's human-rated sentiment lexicon."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import torch
from torch import Tensor

from captum_certified.text._core.tokenizer import WordTokenizer

#: Neutral words that fill the sentences (none of them is rated in the VADER lexicon).
FILLERS = (
    "the", "a", "an", "movie", "film", "story", "plot", "acting", "cast", "scene", "ending",
    "director", "music", "script", "was", "is", "and", "it", "this", "that", "of", "to", "in",
    "with", "about", "at", "on", "for", "as", "very", "quite", "so", "we", "they", "its",
    "their", "then", "there", "some", "all",
)  # fmt: skip


def vader_lexicon() -> dict[str, float]:
    r"""VADER's lexicon: word -> mean human rating in [-4, 4] (Hutto and Gilbert, ICWSM 2014).

    About 7,500 entries, each the mean of ten human ratings, read from the file that the
    ``vaderSentiment`` package ships (install it with ``pip install "captum-certified[text]"``).
    Only the data file is read; the package is not imported.

    Returns:
        **lexicon** (dict[str, float]).

    Examples::

        >>> lex = vader_lexicon()
        >>> len(lex) > 7000, lex["good"], lex["horrible"]
        (True, 1.9, -2.5)
    """
    spec = importlib.util.find_spec("vaderSentiment")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the VADER lexicon ships with the vaderSentiment package: "
            'pip install "captum-certified[text]" (or pip install vaderSentiment)'
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "vader_lexicon.txt"
    lexicon: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            lexicon[parts[0]] = float(parts[1])
    return lexicon


@dataclasses.dataclass(frozen=True)
class SentimentTask:
    r"""Sentences of rated and neutral words with their sentiment labels.

    Attributes:
        train_texts, test_texts: The sentences (space-separated words).
        train_labels, test_labels: 1 if the ratings of a sentence's rated words sum above 0.
        tokenizer: A :class:`WordTokenizer` over the task's words.
        ratings: Each rated word's mean human rating.
    """

    train_texts: list[str]
    train_labels: Tensor
    test_texts: list[str]
    test_labels: Tensor
    tokenizer: WordTokenizer
    ratings: dict[str, float]

    def encode(self, texts: list[str]) -> Tensor:
        """``(N, T)`` token ids of ``texts``."""
        return self.tokenizer(texts)


def sentiment_task(
    num_train: int = 4000,
    num_test: int = 500,
    length: int = 16,
    num_words: int = 300,
    rated_per_sentence: tuple[int, int] = (2, 4),
    min_abs_rating: float = 1.0,
    seed: int = 0,
) -> SentimentTask:
    r"""A sentiment task built from VADER's human-rated words (no text is downloaded).

    ``num_words`` single-word entries with ``|rating| >= min_abs_rating`` are drawn from the
    lexicon (half positive, half negative); every sentence has ``length`` words: between
    ``rated_per_sentence[0]`` and ``rated_per_sentence[1]`` rated words at random positions,
    the rest neutral :data:`FILLERS`. Its label is 1 when the ratings sum above 0 (sentences
    whose ratings sum to less than 0.5 in absolute value are redrawn). A model has to find the
    rated words among the fillers and weigh them, so the tokens that should carry the
    attribution are known: the rated ones.

    Args:
        num_train (int, optional): Training sentences. Default: 4000
        num_test (int, optional): Test sentences. Default: 500
        length (int, optional): Words per sentence. Default: 16
        num_words (int, optional): Rated words in the vocabulary. Default: 300
        rated_per_sentence (tuple[int, int], optional): Fewest and most rated words in a
                    sentence. Default: (2, 4)
        min_abs_rating (float, optional): Smallest absolute rating of a vocabulary word.
                    Default: 1.0
        seed (int, optional): Seed of every draw. Default: 0

    Returns:
        **task** (SentimentTask).

    Examples::

        >>> task = sentiment_task(num_train=100, num_test=10)
        >>> len(task.train_texts[0].split()), task.encode(task.test_texts).shape
        (16, torch.Size([10, 16]))
    """
    low, high = rated_per_sentence
    if not 1 <= low <= high <= length:
        raise ValueError(
            "`rated_per_sentence` must satisfy 1 <= low <= high <= length, got "
            f"{rated_per_sentence}"
        )
    if num_train < 1 or num_test < 1 or num_words < 2:
        raise ValueError("`num_train`, `num_test` must be positive and `num_words` at least 2")
    lexicon = vader_lexicon()
    fillers = [w for w in FILLERS if w not in lexicon]
    words = sorted(w for w, r in lexicon.items() if w.isalpha() and abs(r) >= min_abs_rating)
    g = torch.Generator().manual_seed(seed)
    pos = [w for w in words if lexicon[w] > 0]
    neg = [w for w in words if lexicon[w] < 0]
    half = num_words // 2
    chosen = [pos[i] for i in torch.randperm(len(pos), generator=g)[:half].tolist()]
    chosen += [neg[i] for i in torch.randperm(len(neg), generator=g)[: num_words - half].tolist()]
    chosen.sort()
    ratings = {w: lexicon[w] for w in chosen}

    def sentence() -> tuple[str, int]:
        while True:
            count = int(torch.randint(low, high + 1, (1,), generator=g))
            rated = [chosen[i] for i in torch.randint(len(chosen), (count,), generator=g).tolist()]
            total = sum(ratings[w] for w in rated)
            if abs(total) >= 0.5:
                break
        out = [fillers[i] for i in torch.randint(len(fillers), (length,), generator=g).tolist()]
        for w, p in zip(rated, torch.randperm(length, generator=g)[:count].tolist()):
            out[p] = w
        return " ".join(out), int(total > 0)

    def split(n: int) -> tuple[list[str], Tensor]:
        pairs = [sentence() for _ in range(n)]
        return [p[0] for p in pairs], torch.tensor([p[1] for p in pairs])

    train_texts, train_labels = split(num_train)
    test_texts, test_labels = split(num_test)
    return SentimentTask(
        train_texts,
        train_labels,
        test_texts,
        test_labels,
        WordTokenizer(fillers + chosen),
        ratings,
    )
