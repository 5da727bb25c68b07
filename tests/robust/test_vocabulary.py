"""Deprecated metric names still work, warn, and compute the same numbers."""

import pytest
import torch

from captum_certified import metrics as M
from captum_certified.robust._core.selection import METRIC_ALIASES, resolve_metric


@pytest.mark.parametrize("old, new", sorted(METRIC_ALIASES.items()))
def test_deprecated_metric_names_warn_and_agree(old, new):
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 1, 6, 6, generator=g), torch.rand(3, 1, 6, 6, generator=g)
    kw = dict(k=5, reduce_channels="sum_abs", normalize="sum_to_hw")
    with pytest.warns(DeprecationWarning, match=new):
        m_old = resolve_metric(old, **kw)
    m_new = resolve_metric(new, **kw)
    ref_kw = {"k": 5} if new == "topk_intersection" else {}
    ref = getattr(M, new)(a, b, reduce_channels="sum_abs", normalize="sum_to_hw", **ref_kw)
    assert torch.equal(m_old(a, b), ref) and torch.equal(m_new(a, b), ref)
    assert m_old.higher_is_stronger == m_new.higher_is_stronger
    assert m_new.higher_is_stronger == (new == "center_of_mass_shift")
