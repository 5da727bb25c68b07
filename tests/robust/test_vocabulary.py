"""Metrics are named by their captum_certified.metrics function; other names are refused."""

import pytest
import torch

from captum_certified import metrics as M
from captum_certified.robust._core.selection import METRICS, resolve_metric


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_names_compute_the_metrics_function(name):
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 1, 6, 6, generator=g), torch.rand(3, 1, 6, 6, generator=g)
    metric = resolve_metric(name, k=5, reduce_channels="sum_abs", normalize="sum_to_hw")
    ref_kw = {"k": 5} if name == "topk_intersection" else {}
    ref = getattr(M, name)(a, b, reduce_channels="sum_abs", normalize="sum_to_hw", **ref_kw)
    assert torch.equal(metric(a, b), ref)
    assert metric.higher_is_stronger == (name == "center_of_mass_shift")


@pytest.mark.parametrize("short", ["topk", "kendall", "spearman", "center_of_mass", "cosine"])
def test_short_metric_names_are_refused(short):
    with pytest.raises(ValueError, match="selection_metric"):
        resolve_metric(short, k=5, reduce_channels="sum_abs", normalize="sum_to_hw")
