"""The metric objects behind the pairwise metrics: one kernel per metric, its direction, and
gradient-safe kernels under the no_grad public functions."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from captum_certified import metrics as M
from captum_certified.metrics._core.pair_metric import PAIR_METRICS, make_metric
from captum_certified.metrics._core.preprocess import _format_attr


def _maps(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(3, 2, 5, 6, generator=g, dtype=torch.float64)
    b = a + 0.3 * torch.rand(3, 2, 5, 6, generator=g, dtype=torch.float64)
    b[1, :, :2] = a[1, :, :2]  # ties across the pair
    return a, b


def _object_value(name: str, a, b, **kw) -> torch.Tensor:
    k = kw.pop("k", None)
    metric = make_metric(name, "sum_abs", None, k, kw)
    ra = metric.prepare(*_format_attr(a, "attr_a"), "attr_a")
    rb = metric.prepare(*_format_attr(b, "attr_b"), "attr_b")
    return metric.compare(ra, rb)


@pytest.mark.parametrize(
    "name, kw",
    [
        ("topk_intersection", {"k": 7}),
        ("kendall_tau", {}),
        ("spearman_rho", {}),
        ("cosine_similarity", {}),
        ("center_of_mass_shift", {"round_centers": True}),
    ],
)
def test_objects_equal_the_public_functions(name, kw):
    a, b = _maps()
    public = getattr(M, name)(a, b, reduce_channels="sum_abs", **kw)
    assert torch.allclose(_object_value(name, a, b, **kw), public, rtol=0, atol=1e-14)


def test_spearman_is_the_cosine_of_centred_ranks_and_matches_scipy():
    a, b = _maps(1)
    ours = _object_value("spearman_rho", a, b)
    sa, sb = a.abs().sum(1).flatten(1), b.abs().sum(1).flatten(1)
    ref = [stats.spearmanr(x.numpy(), y.numpy()).statistic for x, y in zip(sa, sb)]
    assert torch.allclose(ours, torch.tensor(ref, dtype=torch.float64), atol=1e-12)


def test_directions():
    assert dict(M.METRIC_HIGHER_IS_SIMILAR) == {
        "topk_intersection": True,
        "kendall_tau": True,
        "spearman_rho": True,
        "cosine_similarity": True,
        "center_of_mass_shift": False,
    }
    assert set(PAIR_METRICS) == set(M.METRIC_HIGHER_IS_SIMILAR)
    with pytest.raises(ValueError, match="metric"):
        make_metric("pearson", None, None)
    with pytest.raises(ValueError, match="k"):
        make_metric("kendall_tau", None, None, 3)
    with pytest.raises(ValueError, match="metric_kwargs"):
        make_metric("cosine_similarity", None, None, None, {"round_centers": True})


def test_kernels_keep_the_graph_and_the_public_functions_do_not():
    a, b = _maps(2)
    a = a.clone().requires_grad_()
    metric = make_metric("cosine_similarity", "sum_abs", None)
    value = metric.compare(metric.prepare((a,), False, "a"), metric.prepare((b,), False, "b"))
    (grad,) = torch.autograd.grad(value.sum(), a)
    # d cos(u, v) / du = v / (|u||v|) - cos u / |u|^2, through u = sum_c |a_c| (a > 0 here)
    u, v = a.detach().sum(1).flatten(1), b.sum(1).flatten(1)
    nu, nv = u.norm(dim=1, keepdim=True), v.norm(dim=1, keepdim=True)
    cos = (u * v).sum(1, keepdim=True) / (nu * nv)
    expected = (v / (nu * nv) - cos * u / nu**2).reshape(3, 1, 5, 6).expand(3, 2, 5, 6)
    assert torch.allclose(grad, expected, atol=1e-12)
    assert not M.cosine_similarity(a, b, reduce_channels="sum_abs").requires_grad
