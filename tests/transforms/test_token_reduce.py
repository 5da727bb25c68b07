"""TokenReduce: per-token scores of a (tokens x embedding dims) map, alone and in the engine."""

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from torch import nn

from captum_certified.attr import CertifiedWrapper
from captum_certified.transforms import Compose, TokenReduce, TopKBinarize


@pytest.mark.parametrize(
    "reduction, reference",
    [
        ("sum", lambda a: a.sum(-1)),
        ("abs_sum", lambda a: np.abs(a).sum(-1)),
        ("l2", lambda a: np.sqrt((a**2).sum(-1))),
    ],
)
def test_token_reduce_matches_numpy(reduction, reference):
    a = torch.randn(4, 7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = TokenReduce(reduction)(a)
    np.testing.assert_allclose(out.numpy(), reference(a.numpy()), rtol=1e-12)
    assert out.shape == (4, 7)
    # two outputs are reduced separately and concatenated, with their layout declared
    b = torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    both = TokenReduce(reduction).from_outputs((a, b))
    np.testing.assert_allclose(
        both.numpy(), np.concatenate([reference(a.numpy()), reference(b.numpy())], axis=1)
    )
    assert TokenReduce(reduction).output_shapes([torch.Size([7, 5]), torch.Size([3, 5])]) == [
        torch.Size([7]),
        torch.Size([3]),
    ]


def test_token_reduce_sum_is_captums_llm_token_score():
    # LLMGradientAttribution reduces a layer map to token scores with attr.sum(-1)
    a = torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(TokenReduce("sum")(a), a.sum(-1))


def test_token_reduce_validation():
    with pytest.raises(ValueError, match="`reduction`"):
        TokenReduce("max")
    with pytest.raises(TypeError, match="`reduction`"):
        TokenReduce(2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tokens, embedding dims"):
        TokenReduce()(torch.zeros(3, 4))
    assert repr(TokenReduce("abs_sum")) == "TokenReduce('abs_sum')"


class _TokenModel(nn.Module):
    """Two classes from mean-pooled token vectors (float input of shape N x T x E)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 2, generator=torch.Generator().manual_seed(3)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(h).sum(1) @ self.w


def test_per_token_topk_map_in_the_engine():
    h = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(4))
    model = _TokenModel()
    transform = Compose(TokenReduce("l2"), TopKBinarize(2))
    cw = CertifiedWrapper(Saliency(model), transform=transform)
    g = torch.Generator().manual_seed(0)
    attr, cert = cw.attribute(
        h, target=1, nt_samples=64, stdevs=0.1, generator=g, return_certificate=True
    )
    assert attr.shape == (2, 6)  # one score per token
    # the map is the mean of per-sample top-2 token indicators: it sums to 2 per example
    torch.testing.assert_close(attr.sum(1), torch.full((2,), 2.0))
    # the same numbers by hand: noise, saliency, per-token l2, top-2, mean
    g = torch.Generator().manual_seed(0)
    eps = torch.randn(2 * 64, 6, 3, generator=g) * 0.1
    noisy = (h.repeat_interleave(64, 0) + eps).requires_grad_()
    (grad,) = torch.autograd.grad(model(noisy)[:, 1].sum(), noisy)
    scores = grad.abs().norm(dim=-1)
    top = torch.zeros_like(scores).scatter_(1, scores.topk(2, dim=1).indices, 1.0)
    torch.testing.assert_close(attr, top.reshape(2, 64, 6).mean(1))
    assert cert.topk_overlap(k=2, radius=0.0).shape == (2,)
