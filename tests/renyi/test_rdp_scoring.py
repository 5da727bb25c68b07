"""Scoring-vector families (Rényi-Robust-Smooth's upsilon) on top of RankRescale."""

from __future__ import annotations

import pytest
import torch

from captum_certified.transforms import (
    ClipNormalize,
    LinearRank,
    RankRescale,
    ScoringRescale,
    TopKBinarize,
    scoring_vector,
)


def attributions(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(50, 20, generator=g)
    a[:, 5:9] = a[:, 5:6]  # ties, broken by lowest index
    a[:10] = a[:10].round()
    return a


def test_family_vectors():
    torch.testing.assert_close(scoring_vector("topk", 10, 3), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(
        scoring_vector("linear", 10, 4), torch.tensor([1.0, 0.75, 0.5, 0.25], dtype=torch.float64)
    )
    torch.testing.assert_close(
        scoring_vector("geometric", 10, 4, gamma=0.5),
        torch.tensor([1.0, 0.5, 0.25, 0.125], dtype=torch.float64),
    )
    assert scoring_vector("topk", 64, 0.1).numel() == 6  # fraction of d, rounded down


def test_topk_equals_levine_binarization_and_linear_equals_linear_rank():
    a = attributions()
    for keep in (1, 3, 0.25):
        torch.testing.assert_close(ScoringRescale("topk", sparsity=keep)(a), TopKBinarize(keep)(a))
        torch.testing.assert_close(ScoringRescale("linear", sparsity=keep)(a), LinearRank(keep)(a))
    explicit = torch.tensor([3.0, 2.0, 2.0, 1.0])
    torch.testing.assert_close(ScoringRescale(explicit)(a), RankRescale(explicit)(a))


@pytest.mark.parametrize(
    ("transform", "kind", "mass"),
    [
        (ScoringRescale("topk", sparsity=5), "binary", 5.0),
        (ScoringRescale("linear", sparsity=4), "unit", 2.5),
        (ScoringRescale("geometric", sparsity=3, gamma=0.5), "unit", 1.75),
        (ScoringRescale(torch.tensor([2.0, 2.0, 0.0])), "binary", 2.0),
        (ScoringRescale(torch.tensor([4.0, 2.0, 1.0])), "unit", 1.75),
        (TopKBinarize(7), "binary", 7.0),
    ],
)
def test_maps_are_in_unit_range_with_constant_mass(transform, kind, mass):
    a = attributions(1)
    maps = transform(a)
    assert transform.kind == kind
    assert maps.min() >= 0 and maps.max() <= 1
    assert transform.total_mass(a.shape[1]) == pytest.approx(mass)
    torch.testing.assert_close(maps.sum(1), torch.full((a.shape[0],), mass))
    if kind == "binary":
        assert ((maps == 0) | (maps == 1)).all()
    # rank r gets v_r / v_1: the largest-|a| feature scores 1
    top = a.abs().argmax(1)
    assert (maps.gather(1, top[:, None]) == 1).all()


def test_score_mass_unknown_for_other_transforms():
    assert ClipNormalize(2, 1).total_mass(10) is None


def test_keep_is_not_a_spelling_of_sparsity():
    a = attributions(2)
    for make in (
        lambda **kw: ScoringRescale("linear", **kw),
        lambda **kw: LinearRank(**kw),
        lambda **kw: ClipNormalize(clip=1, **kw),
    ):
        transform = make(sparsity=3)
        assert transform.sparsity == 3 and not hasattr(transform, "keep")
        assert ((transform(a) > 0).sum(1) == 3).all()
        with pytest.raises(TypeError, match="keep"):
            make(keep=3)
    with pytest.raises(TypeError, match="keep"):
        scoring_vector("linear", 10, keep=4)
    v = scoring_vector("linear", 10, sparsity=4)
    assert torch.equal(v, torch.tensor([1.0, 0.75, 0.5, 0.25], dtype=torch.float64))
    # the errors name `sparsity`, never `k`
    with pytest.raises(ValueError, match="`sparsity`"):
        ScoringRescale("linear", sparsity=0)


def test_topk_binarize_is_the_topk_family_bit_for_bit():
    g = torch.Generator().manual_seed(3)
    a = torch.randint(-3, 4, (64, 40), generator=g).to(torch.float32)  # many ties
    for sparsity in (1, 7, 0.3, 40):
        t = TopKBinarize(sparsity)
        assert isinstance(t, ScoringRescale) and t.kind == "binary"
        got = t(a)
        assert torch.equal(got, ScoringRescale("topk", sparsity=sparsity)(a))
        # reference: the ranked scatter of the rank re-scaling (stable sort, lowest index first)
        k = got.sum(1)[0].long().item()
        order = a.abs().sort(dim=1, descending=True, stable=True).indices[:, :k]
        ref = torch.zeros_like(a).scatter_(1, order, 1.0)
        assert torch.equal(got, ref)
    assert repr(TopKBinarize(3)) == "TopKBinarize(sparsity=3, by_magnitude=True)"


def test_bad_arguments():
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="gamma"):
            ScoringRescale("geometric", sparsity=3, gamma=bad)
    with pytest.raises(ValueError, match="scoring"):
        ScoringRescale("cubic")
    with pytest.raises(TypeError, match="scoring"):
        ScoringRescale(3)
    for bad in (0, -2, 0.0, 1.5):
        with pytest.raises(ValueError, match="`sparsity`"):
            ScoringRescale("topk", sparsity=bad)
    with pytest.raises(TypeError, match="`sparsity`"):
        ScoringRescale("topk", sparsity="3")
    with pytest.raises(ValueError, match="non-increasing"):
        ScoringRescale(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="`sparsity`"):
        ScoringRescale("topk", sparsity=30)(attributions())  # more than d = 20 features
    assert "geometric" in repr(ScoringRescale("geometric", sparsity=3))
