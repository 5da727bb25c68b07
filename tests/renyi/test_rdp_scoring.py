"""Scoring-vector families (Rényi-Robust-Smooth's upsilon) on top of RankRescale."""

from __future__ import annotations

import pytest
import torch

from captum_certified.certify import score_mass
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
        torch.testing.assert_close(ScoringRescale("topk", keep=keep)(a), TopKBinarize(keep)(a))
        torch.testing.assert_close(ScoringRescale("linear", keep=keep)(a), LinearRank(keep)(a))
    explicit = torch.tensor([3.0, 2.0, 2.0, 1.0])
    torch.testing.assert_close(ScoringRescale(explicit)(a), RankRescale(explicit)(a))


@pytest.mark.parametrize(
    ("transform", "kind", "mass"),
    [
        (ScoringRescale("topk", keep=5), "binary", 5.0),
        (ScoringRescale("linear", keep=4), "unit", 2.5),
        (ScoringRescale("geometric", keep=3, gamma=0.5), "unit", 1.75),
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
    assert score_mass(transform, a.shape[1]) == pytest.approx(mass)
    torch.testing.assert_close(maps.sum(1), torch.full((a.shape[0],), mass))
    if kind == "binary":
        assert ((maps == 0) | (maps == 1)).all()
    # rank r gets v_r / v_1: the largest-|a| feature scores 1
    top = a.abs().argmax(1)
    assert (maps.gather(1, top[:, None]) == 1).all()


def test_score_mass_unknown_for_other_transforms():
    assert score_mass(ClipNormalize(2, 1), 10) is None


def test_bad_arguments():
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="gamma"):
            ScoringRescale("geometric", keep=3, gamma=bad)
    with pytest.raises(ValueError, match="scoring"):
        ScoringRescale("cubic")
    with pytest.raises(TypeError, match="scoring"):
        ScoringRescale(3)
    for bad in (0, -2, 0.0, 1.5):
        with pytest.raises(ValueError, match="`k`"):
            ScoringRescale("topk", keep=bad)
    with pytest.raises(TypeError, match="`k`"):
        ScoringRescale("topk", keep="3")
    with pytest.raises(ValueError, match="non-increasing"):
        ScoringRescale(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="`k`"):
        ScoringRescale("topk", keep=30)(attributions())  # more than d = 20 features
    assert "geometric" in repr(ScoringRescale("geometric", keep=3))
