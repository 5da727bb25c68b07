"""Per-sample transforms against brute-force definitions."""

import itertools

import pytest
import torch

from captum_certified.transforms import (
    ClipNormalize,
    Identity,
    LinearRank,
    RankRescale,
    TopKBinarize,
    topk_mask,
)
from captum_certified.transforms._core.selection import _break_ties


def _brute_topk_mask(row, k):
    # rank by (-value, index): the k best positions under "higher value, then lower index"
    order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
    return [1.0 if i in order else 0.0 for i in range(len(row))]


@pytest.mark.parametrize("seed", range(5))
def test_topk_mask_exact_count_and_lowest_index_ties(seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 4, (50, 12), generator=g).float()  # heavy ties
    for k in range(1, 13):
        mask = topk_mask(a, k)
        assert (mask.sum(1) == k).all()
        expected = torch.tensor([_brute_topk_mask(r.tolist(), k) for r in a])
        assert torch.equal(mask.float(), expected)


@pytest.mark.parametrize("ties", [True, False])
def test_the_accelerator_path_of_topk_mask_is_the_same_mask(ties):
    # off the CPU, topk_mask skips the host-side "no tie" shortcut and always breaks ties
    # (no synchronisation inside the sampling loop): the same mask, with or without ties
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 4, (40, 12), generator=g).float() if ties else torch.rand(40, 12)
    for k in range(1, 13):
        threshold = a.topk(k, dim=1).values.min(dim=1, keepdim=True).values
        mask = _break_ties(a, threshold, a >= threshold, k)
        expected = torch.tensor([_brute_topk_mask(r.tolist(), k) for r in a])
        assert torch.equal(mask.float(), expected)
        assert torch.equal(mask, topk_mask(a, k))


def test_topk_binarize_fraction_magnitude_and_kind():
    a = torch.tensor([[0.1, -3.0, 2.0, 0.0, 0.5]])
    assert torch.equal(TopKBinarize(0.4)(a), torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0]]))
    assert torch.equal(
        TopKBinarize(2, by_magnitude=False)(a), torch.tensor([[0.0, 0.0, 1.0, 0.0, 1.0]])
    )
    assert TopKBinarize(1).kind == "binary"
    # a fraction rounds down but keeps at least one feature, with float tolerance (0.6*5 = 3)
    assert TopKBinarize(0.6)(a).sum() == 3
    with pytest.raises(ValueError, match="sparsity"):
        TopKBinarize(0.1)(a)  # 0.5 feature
    with pytest.raises(ValueError, match="sparsity"):
        TopKBinarize(1.5)
    with pytest.raises(TypeError, match="sparsity"):
        TopKBinarize(True)


def test_clip_normalize_definition():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 9, generator=g)
    out = ClipNormalize(sparsity=5, clip=2)(a)
    for row, o in zip(a.abs(), out):
        vals = sorted(row.tolist(), reverse=True)
        ceiling = vals[1]
        kept = _brute_topk_mask(row.tolist(), 5)
        exp = [min(v, ceiling) / ceiling * m for v, m in zip(row.tolist(), kept)]
        torch.testing.assert_close(o, torch.tensor(exp))
    assert out.max() <= 1 and out.min() >= 0 and ClipNormalize().kind == "unit"
    assert torch.equal(ClipNormalize(2, 1)(torch.zeros(1, 4)), torch.zeros(1, 4))


def test_rank_rescale_and_linear_rank():
    a = torch.tensor([[0.3, -0.9, 0.3, 0.1]])
    out = RankRescale(torch.tensor([4.0, 2.0, 1.0]))(a)
    # ranks: -0.9 (1st), 0.3 at index 0 (2nd), 0.3 at index 2 (3rd); scores / v_1
    assert torch.equal(out, torch.tensor([[0.5, 1.0, 0.25, 0.0]]))
    assert RankRescale(torch.tensor([1.0, 1.0, 0.0])).kind == "binary"
    assert torch.equal(
        LinearRank(3)(a), torch.tensor([[2 / 3, 1.0, 1 / 3, 0.0]], dtype=torch.float32)
    )
    for bad in (torch.tensor([1.0, 2.0]), torch.tensor([-1.0]), torch.tensor([0.0, 0.0])):
        with pytest.raises(ValueError, match="scores"):
            RankRescale(bad)
    with pytest.raises(ValueError, match="scores"):
        RankRescale(torch.ones(5))(a)


def test_rank_rescale_binary_equals_topk_binarize_on_all_tie_patterns():
    for row in itertools.product([0.0, 1.0, 2.0], repeat=5):
        a = torch.tensor([row])
        for k in range(1, 6):
            v = torch.ones(k)
            assert torch.equal(RankRescale(v)(a), TopKBinarize(k)(a))


def test_identity():
    a = torch.randn(3, 4)
    assert Identity()(a) is a and Identity().is_identity and Identity().kind == "real"
