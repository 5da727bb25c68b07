"""Bad input gets a ValueError / TypeError whose message names the argument."""

import pytest
import torch

from captum_certified import metrics as M

PAIRWISE = [
    M.kendall_tau,
    M.spearman_rho,
    M.cosine_similarity,
    lambda a, b, **kw: M.topk_intersection(a, b, k=2, **kw),
]
IDS = ["kendall", "spearman", "cosine", "topk"]


@pytest.fixture
def maps():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 4, 4, generator=gen), torch.rand(2, 3, 4, 4, generator=gen)


@pytest.mark.parametrize("fn", PAIRWISE, ids=IDS)
def test_pairwise_bad_inputs(fn, maps):
    a, b = maps
    with pytest.raises(ValueError, match="attr_b"):
        fn(a, b[:, :2])  # shape mismatch
    with pytest.raises(ValueError, match="attr_a"):
        fn(a[:0], b[:0])  # empty batch
    with pytest.raises(ValueError, match="attr_a"):
        fn(torch.empty(2, 0), torch.empty(2, 0))  # no feature
    nan_b = b.clone()
    nan_b[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="attr_b contains NaN"):
        fn(a, nan_b)
    with pytest.raises(ValueError, match=r"attr_a\[1\] contains NaN"):
        fn((a, nan_b), (a, b))
    with pytest.raises(ValueError, match="attr_b"):
        fn((a, b), (a,))  # tuple lengths differ
    with pytest.raises(ValueError, match="attr_b"):
        fn((a,), b)  # tuple vs tensor
    with pytest.raises(TypeError, match="attr_a"):
        fn(a.numpy(), b)
    with pytest.raises(TypeError, match=r"attr_b\[1\]"):
        fn((a, a), (b, [1.0]))
    with pytest.raises(ValueError, match="attr_a"):
        fn(torch.rand(5), torch.rand(5))  # no batch dimension
    with pytest.raises(ValueError, match="attr_a"):
        fn((a, torch.rand(3, 2)), (b, torch.rand(3, 2)))  # batch sizes differ in a tuple
    with pytest.raises(ValueError, match="reduce_channels"):
        fn(a, b, reduce_channels="sum")
    with pytest.raises(ValueError, match="normalize"):
        fn(a, b, normalize="l2")
    with pytest.raises(ValueError, match="protocol"):
        fn(a, b, protocol="nope")
    with pytest.raises(ValueError, match="protocol"):
        fn(a, b, protocol="ghorbani", normalize="sum_to_one")


@pytest.mark.parametrize(
    "k, exc",
    [
        (0, ValueError),
        (49, ValueError),
        (-3, ValueError),
        (0.0, ValueError),
        (1.5, ValueError),
        (float("nan"), ValueError),
        (0.01, ValueError),
        (True, TypeError),
        ("10", TypeError),
        (None, TypeError),
    ],
)
def test_topk_k_out_of_range(maps, k, exc):
    a, b = maps  # d = 48
    with pytest.raises(exc, match="k"):
        M.topk_intersection(a, b, k=k)


def test_center_of_mass_bad_inputs(maps):
    a, b = maps
    with pytest.raises(ValueError, match="attr_a.*2-D.*reduce_channels"):
        M.center_of_mass_shift(a, b)  # (C, H, W) per example without a reduction
    with pytest.raises(ValueError, match="attr_a.*2-D"):
        M.center_of_mass_shift(torch.rand(2, 5), torch.rand(2, 5), reduce_channels="abs")
    with pytest.raises(ValueError, match="attr_a.*negative"):
        M.center_of_mass_shift(a[:, 0] - 0.5, b[:, 0])
    with pytest.raises(ValueError, match="attr_a"):
        M.center_of_mass_shift((a, a), (b, b), reduce_channels="sum_abs")
    with pytest.raises(ValueError, match="attr_b"):
        M.center_of_mass_shift(a, b[:, :, :3], reduce_channels="sum_abs")
    with pytest.raises(ValueError, match="attr"):
        M.center_of_mass(a)
    # a 1-tuple is fine
    out = M.center_of_mass_shift((a,), (b,), reduce_channels="sum_abs")
    assert out.shape == (2,)


def test_robustness_inputs_use_the_shared_formatter():
    from captum_certified._utils.validation import format_inputs

    def explain(inp):
        return inp

    x = torch.rand(3, 4)
    with pytest.raises(ValueError, match="same batch size"):
        M.attribution_robustness(explain, (x, x[:2]), metric="kendall_tau")
    with pytest.raises(ValueError, match="batch size 0"):
        M.attribution_robustness(explain, x[:0], metric="kendall_tau")
    with pytest.raises(TypeError, match=r"`inputs`\[1\]"):
        M.attribution_robustness(explain, (x, 1.0), metric="kendall_tau")
    assert format_inputs(x) == ((x,), False)
    xs, is_tuple = format_inputs((x, x))
    assert is_tuple and len(xs) == 2
