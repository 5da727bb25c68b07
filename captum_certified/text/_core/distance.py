"""Distances in a layer's output space: how far a token substitution moves the activation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from captum_certified._utils.layers import capture_activation, check_layer


def layer_distance(
    forward_func: Callable[..., Any],
    layer: nn.Module,
    inputs: Tensor | tuple[Tensor, ...],
    perturbed_inputs: Tensor | tuple[Tensor, ...],
    additional_forward_args: Any = None,
    *,
    layer_input: bool = False,
) -> Tensor:
    r"""l2 distance between ``layer``'s outputs on two batches of inputs, one per example.

    A certificate from noise at ``layer`` (``CertifiedWrapper(..., noise_layer=layer)``) is
    stated for l2 perturbations of that layer's output ``h``; this is the radius a change of
    the inputs (e.g. a synonym substitution in the token ids) needs: ``||h(x') - h(x)||_2``
    over all of ``h``'s entries of each example. The change is covered when this distance is
    at most the certified radius *and* the change reaches the model only through ``h``: same
    length, same padding and attention mask, nothing else computed from the ids
    (``docs/certificates.rst``, "Noise at a layer").

    Args:
        forward_func (Callable): The model (or forward function) taking ``inputs``.
        layer (torch.nn.Module): The layer the noise is added to.
        inputs (Tensor or tuple[Tensor, ...]): The original inputs (e.g. token ids).
        perturbed_inputs (Tensor or tuple[Tensor, ...]): The changed inputs, same shapes.
        additional_forward_args (Any, optional): Passed after the inputs. Default: None
        layer_input (bool, optional): Distance of the layer's input instead. Default: False

    Returns:
        **distances** (Tensor): ``(bsz,)``.

    Examples::

        >>> emb = torch.nn.Embedding(4, 2)
        >>> with torch.no_grad():
        ...     _ = emb.weight.copy_(torch.tensor([[0.0, 0], [3, 0], [0, 4], [1, 1]]))
        >>> layer_distance(emb, emb, torch.tensor([[1, 3]]), torch.tensor([[2, 3]]))
        tensor([5.])
    """
    layer = check_layer(layer, "layer")
    a = inputs if isinstance(inputs, tuple) else (inputs,)
    b = perturbed_inputs if isinstance(perturbed_inputs, tuple) else (perturbed_inputs,)
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        raise ValueError("`perturbed_inputs` must have the shapes of `inputs`")
    h = capture_activation(forward_func, layer, a, additional_forward_args, layer_input=layer_input)
    h2 = capture_activation(
        forward_func, layer, b, additional_forward_args, layer_input=layer_input
    )
    return torch.linalg.vector_norm((h2 - h).reshape(h.shape[0], -1), dim=1)


def max_substitution_distance(
    embedding: nn.Embedding | Tensor,
    ids: Tensor,
    substitutions: Mapping[int, Sequence[int] | Tensor],
    max_changes: int | None = None,
) -> Tensor:
    r"""Largest l2 move of an embedding's output under any allowed token substitutions.

    ``substitutions`` maps a token id to the ids it may be replaced by (a synonym table).
    Any set of at most ``max_changes`` positions may each be replaced by one of their
    substitutes. An embedding looks up each position on its own, so the move is
    ``sqrt(sum over changed positions t of ||E[new_t] - E[ids_t]||^2)`` and its largest value
    is exact: the square root of the sum of the ``max_changes`` largest per-position maxima
    ``max_c ||E[c] - E[ids_t]||^2``. If it is at most the certified radius of
    ``CertifiedWrapper(..., noise_layer=embedding)``, the explanation is certified against
    every such substitution (same length and padding, position embeddings added after the
    embedding: ``docs/certificates.rst``).

    Args:
        embedding (torch.nn.Embedding or Tensor): The embedding module or its weight
                    ``(vocab, dim)``.
        ids (Tensor): ``(bsz, T)`` token ids.
        substitutions (Mapping[int, Sequence[int] or Tensor]): Allowed replacements per id.
        max_changes (int, optional): Most positions changed at once; None: any number.
                    Default: None

    Returns:
        **distances** (Tensor): ``(bsz,)``; 0 where no position has a substitute.

    Examples::

        >>> w = torch.tensor([[0.0, 0], [3, 0], [0, 4], [1, 1]])
        >>> subs = {1: [2, 3], 3: [0]}
        >>> max_substitution_distance(w, torch.tensor([[1, 3, 1]]), subs, max_changes=1)
        tensor([5.])
        >>> max_substitution_distance(w, torch.tensor([[1, 3, 1]]), subs)  # sqrt(25 + 2 + 25)
        tensor([7.2111])
    """
    weight = embedding.weight if isinstance(embedding, nn.Embedding) else embedding
    if not isinstance(weight, Tensor) or weight.dim() != 2:
        raise TypeError("`embedding` must be an nn.Embedding or a (vocab, dim) weight tensor")
    if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.is_floating_point():
        raise ValueError("`ids` must be a (bsz, T) integer tensor")
    if max_changes is not None and (not isinstance(max_changes, int) or max_changes < 0):
        raise ValueError(f"`max_changes` must be a non-negative int or None, got {max_changes}")
    weight = weight.detach()
    worst = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
    for token, subs in substitutions.items():
        cand = torch.as_tensor(subs, dtype=torch.long, device=weight.device).reshape(-1)
        if cand.numel() == 0:
            continue
        if int(cand.min()) < 0 or int(cand.max()) >= weight.shape[0]:
            raise ValueError(f"`substitutions` for token {token} has ids outside the vocabulary")
        worst[int(token)] = (weight[cand] - weight[int(token)]).square().sum(1).max()
    per_position = worst[ids]  # (bsz, T) squared largest move of each position
    if max_changes is not None and max_changes < ids.shape[1]:
        per_position = per_position.topk(max_changes, dim=1).values
    return per_position.sum(1).sqrt()
