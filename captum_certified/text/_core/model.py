"""A small transformer text classifier over token ids (trained in seconds on a CPU)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TokenTransformerClassifier(nn.Module):
    r"""ids ``(N, T)`` -> class logits: embedding, learned positions, transformer encoder, mean.

    The token embedding is ``model.embedding`` (an ``nn.Embedding``), the layer to add noise to
    for certified token attributions; position embeddings are added *after* it and padding
    (id ``padding_idx``) is masked out of attention and of the mean, so noise at
    ``model.embedding`` perturbs the token vectors only (``docs/certificates.rst``).

    Args:
        vocab_size (int): Number of token ids.
        num_classes (int, optional): Output classes. Default: 2
        dim (int, optional): Embedding width. Default: 16
        heads (int, optional): Attention heads. Default: 2
        layers (int, optional): Encoder layers. Default: 1
        max_length (int, optional): Longest sequence. Default: 64
        padding_idx (int, optional): The padding id. Default: 0
        embedding_scale (float, optional): Standard deviation of the initial token vectors.
                    Default: 0.1

    Examples::

        >>> model = TokenTransformerClassifier(vocab_size=10).eval()
        >>> model(torch.tensor([[3, 4, 5, 0]])).shape
        torch.Size([1, 2])
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int = 2,
        dim: int = 16,
        heads: int = 2,
        layers: int = 1,
        max_length: int = 64,
        padding_idx: int = 0,
        embedding_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)
        with torch.no_grad():
            self.embedding.weight.normal_(0.0, embedding_scale)
            self.embedding.weight[padding_idx].zero_()
        self.position = nn.Embedding(max_length, dim)
        with torch.no_grad():
            self.position.weight.normal_(0.0, embedding_scale)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, num_classes)

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding (Hugging Face's name for it): where text noise is added."""
        return self.embedding

    def forward(self, ids: Tensor) -> Tensor:
        pad = ids == self.padding_idx
        positions = torch.arange(ids.shape[1], device=ids.device)
        h = self.embedding(ids) + self.position(positions)
        z = self.encoder(h, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(z.dtype)
        pooled = (z * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return self.head(pooled)
