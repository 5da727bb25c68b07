"""Text and token models: embedding-space distances, a real offline sentiment task, a small
transformer classifier and a word tokenizer (``pip install "captum-certified[text]"`` for the
lexicon)."""

from captum_certified.text._core.distance import layer_distance, max_substitution_distance
from captum_certified.text._core.llm import CertifiedLLMAttribution, TargetLogProb
from captum_certified.text._core.model import TokenTransformerClassifier
from captum_certified.text._core.sentiment import (
    FILLERS,
    SentimentTask,
    sentiment_task,
    vader_lexicon,
)
from captum_certified.text._core.tokenizer import WordTokenizer
from captum_certified.text._core.training import (
    mask_tokens,
    sentiment_classifier,
    train_text_classifier,
)

__all__ = [
    "CertifiedLLMAttribution",
    "FILLERS",
    "SentimentTask",
    "TargetLogProb",
    "TokenTransformerClassifier",
    "WordTokenizer",
    "layer_distance",
    "mask_tokens",
    "max_substitution_distance",
    "sentiment_classifier",
    "sentiment_task",
    "train_text_classifier",
    "vader_lexicon",
]
