"""Training of the small text classifier on a sentiment task (seconds on a CPU)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from captum_certified.text._core.model import TokenTransformerClassifier
from captum_certified.text._core.sentiment import SentimentTask
from captum_certified.text._core.tokenizer import WordTokenizer


def mask_tokens(
    ids: Tensor, keep: int, mask_id: int, generator: torch.Generator | None = None
) -> Tensor:
    r"""Token ablation: keep ``keep`` random positions of every row, set the rest to ``mask_id``.

    Each row draws its kept positions uniformly among the ``C(T, keep)`` subsets (Levine and
    Feizi's ablation); rows are independent.

    Examples::

        >>> ids = torch.arange(1, 7).reshape(1, 6)
        >>> out = mask_tokens(ids, 2, mask_id=0, generator=torch.Generator().manual_seed(0))
        >>> int((out != 0).sum())
        2
    """
    if not 0 <= keep <= ids.shape[1]:
        raise ValueError(f"`keep` must be in 0..{ids.shape[1]}, got {keep}")
    scores = torch.rand(ids.shape, generator=generator, device=ids.device)
    kept = torch.zeros_like(ids, dtype=torch.bool)
    kept.scatter_(1, scores.topk(keep, dim=1).indices, True)
    return torch.where(kept, ids, torch.full_like(ids, mask_id))


def train_text_classifier(
    task: SentimentTask,
    *,
    epochs: int = 6,
    batch_size: int = 64,
    lr: float = 3e-3,
    dim: int = 16,
    ablation_keep: int | None = None,
    embedding_noise: float = 0.0,
    weight_decay: float = 0.0,
    embedding_scale: float = 0.1,
    seed: int = 0,
    threads: int | None = 1,
) -> TokenTransformerClassifier:
    r"""Train a :class:`TokenTransformerClassifier` on ``task`` (AdamW, cross-entropy).

    With ``ablation_keep`` half of every batch is token-ablated (``ablation_keep`` random
    positions kept, the rest ``[MASK]``), so the model also classifies ablated sentences (the
    base model of token-ablation smoothing). Returns the model in eval mode.

    ``embedding_noise`` adds Gaussian noise of that standard deviation to the embedding's
    output during training (the noise that certification at the embedding adds later);
    ``weight_decay`` is AdamW's; ``embedding_scale`` the initial token vectors' standard
    deviation (small values with weight decay make words of similar effect lie close).

    ``threads`` torch threads are used while training (one is fastest for a model this
    small), and the previous number is restored; None keeps the current setting.

    Examples::

        >>> from captum_certified.text import sentiment_task
        >>> task = sentiment_task(num_train=200, num_test=50)
        >>> model = train_text_classifier(task, epochs=1)
        >>> model(task.encode(task.test_texts)).shape
        torch.Size([50, 2])
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(
            task,
            epochs,
            batch_size,
            lr,
            dim,
            ablation_keep,
            embedding_noise,
            weight_decay,
            embedding_scale,
            seed,
        )
    finally:
        torch.set_num_threads(previous)


def _train(
    task: SentimentTask,
    epochs: int,
    batch_size: int,
    lr: float,
    dim: int,
    ablation_keep: int | None,
    embedding_noise: float,
    weight_decay: float,
    embedding_scale: float,
    seed: int,
) -> TokenTransformerClassifier:
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = TokenTransformerClassifier(
            len(task.tokenizer), dim=dim, embedding_scale=embedding_scale
        )

    def add_noise(module: nn.Module, args: tuple, out: Tensor) -> Tensor:
        return out + embedding_noise * torch.randn(out.shape, generator=g)

    ids = task.encode(task.train_texts)
    labels = task.train_labels
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    handle = model.embedding.register_forward_hook(add_noise) if embedding_noise > 0 else None
    model.train()
    try:
        _epochs(model, ids, labels, opt, loss_fn, task, epochs, batch_size, ablation_keep, g)
    finally:
        if handle is not None:
            handle.remove()
    return model.eval()


def _epochs(
    model: nn.Module,
    ids: Tensor,
    labels: Tensor,
    opt: torch.optim.Optimizer,
    loss_fn: nn.Module,
    task: SentimentTask,
    epochs: int,
    batch_size: int,
    ablation_keep: int | None,
    g: torch.Generator,
) -> None:
    for _ in range(epochs):
        order = torch.randperm(len(ids), generator=g)
        for start in range(0, len(ids), batch_size):
            idx = order[start : start + batch_size]
            batch = ids[idx]
            if ablation_keep is not None:
                half = len(batch) // 2
                batch = batch.clone()
                batch[:half] = mask_tokens(
                    batch[:half], ablation_keep, task.tokenizer.mask_token_id, g
                )
            opt.zero_grad()
            loss = loss_fn(model(batch), labels[idx])
            loss.backward()
            opt.step()


def sentiment_classifier(seed: int = 0) -> tuple[TokenTransformerClassifier, WordTokenizer]:
    r"""A transformer trained on :func:`sentiment_task` for certification at its embedding.

    Trained with noise at the embedding (0.1), small initial token vectors and weight decay,
    so that words of similar rating lie close (substitutions stay inside certified radii).
    Returns ``(model, tokenizer)``: the form the command line's ``--model module:factory``
    takes for text data (``captum-certified certify --model
    captum_certified.text:sentiment_classifier --data text:FILE``). About 15 s on one core.

    Examples::

        >>> from captum_certified.text import vader_lexicon
        >>> model, tokenizer = sentiment_classifier()
        >>> good = [w for w in tokenizer.vocab if vader_lexicon().get(w, 0) >= 2.5][:2]
        >>> model(tokenizer([f"the movie was {good[0]} and {good[1]}"])).argmax(1).item()
        1
    """
    from captum_certified.text._core.sentiment import sentiment_task

    task = sentiment_task(seed=seed)
    model = train_text_classifier(
        task, embedding_scale=0.01, weight_decay=0.3, embedding_noise=0.1, seed=seed
    )
    return model, task.tokenizer
