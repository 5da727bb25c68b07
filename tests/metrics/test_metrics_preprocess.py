"""Map conventions and the per-paper presets, on hand-made maps with exact expected values."""

import re
from pathlib import Path

import pytest
import torch

from captum_certified import metrics as M

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.rst"

# One example, C=2, H=W=2. Channel |.|-sum = [[1, 2], [4, 1]] (total 8, a power of two, so
# every expected value below is exact in binary floating point).
A = torch.tensor([[[[1.0, -2.0], [0.0, 1.0]], [[0.0, 0.0], [-4.0, 0.0]]]], dtype=torch.float64)

EXPECTED = {
    # (reduce_channels, normalize) -> map
    "ghorbani": torch.tensor([[[0.5, 1.0], [2.0, 0.5]]]),  # sum_abs, x (H*W / 8)
    "rar": torch.tensor([[[0.5, 1.0], [2.0, 0.5]]]),
    "ssr": torch.tensor([[[0.5, 1.0], [2.0, 0.5]]]),
    "art": torch.tensor([[[0.5, 1.0], [2.0, 0.5]]]),  # mean_abs = [[.5, 1], [2, .5]], sum 4
    "dombrowski": torch.tensor([[[0.125, 0.25], [0.5, 0.125]]]),  # sum_abs / 8
    "levine": A.abs(),  # element map |a| over C*H*W, not normalised
}


@pytest.mark.parametrize("protocol", sorted(EXPECTED))
def test_each_preset_gives_the_documented_map(protocol):
    got = M.preprocess_attributions(A, protocol=protocol, flatten=False)
    assert torch.equal(got, EXPECTED[protocol].double())
    flat = M.preprocess_attributions(A, protocol=protocol)
    assert torch.equal(flat, EXPECTED[protocol].double().reshape(1, -1))


def test_presets_table():
    assert dict(M.PRESETS) == {
        "ghorbani": {"reduce_channels": "sum_abs", "normalize": "sum_to_hw"},
        "rar": {"reduce_channels": "sum_abs", "normalize": "sum_to_hw"},
        "art": {"reduce_channels": "mean_abs", "normalize": "sum_to_hw"},
        "ssr": {"reduce_channels": "sum_abs", "normalize": "sum_to_hw"},
        "levine": {"reduce_channels": "abs", "normalize": None},
        "dombrowski": {"reduce_channels": "sum_abs", "normalize": "sum_to_one"},
    }
    with pytest.raises(TypeError):
        M.PRESETS["new"] = {}  # read-only


def test_docs_table_matches_presets():
    text = DOC.read_text()
    # the list-table rows in docs/metrics.rst: "* - ``name``" then reduce_channels, normalize
    rows = re.findall(
        r"^   \* - ``(\w+)``\n     - (``\w+``|None)\n     - (``\w+``|None)$", text, flags=re.M
    )
    table = {
        name: {
            "reduce_channels": None if r == "None" else r.strip("`"),
            "normalize": None if n == "None" else n.strip("`"),
        }
        for name, r, n in rows
    }
    assert len(rows) == len(M.PRESETS)
    assert table == {k: dict(v) for k, v in M.PRESETS.items()}


def test_explicit_arguments_equal_presets():
    for name, preset in M.PRESETS.items():
        got = M.preprocess_attributions(A, flatten=False, **preset)
        assert torch.equal(got, M.preprocess_attributions(A, protocol=name, flatten=False))
    # a preset may be restated explicitly, not contradicted
    M.preprocess_attributions(A, protocol="art", reduce_channels="mean_abs")
    with pytest.raises(ValueError, match="protocol"):
        M.preprocess_attributions(A, protocol="art", reduce_channels="sum_abs")


def test_raw_and_zero_maps():
    assert torch.equal(M.preprocess_attributions(A, flatten=False), A)  # defaults: raw values
    z = torch.zeros(1, 2, 2, 2)
    assert torch.equal(M.preprocess_attributions(z, protocol="ghorbani"), torch.zeros(1, 4))
    # maps without a channel axis only take |.|
    m3 = torch.tensor([[[-1.0, 3.0], [0.0, -4.0]]])
    assert torch.equal(
        M.preprocess_attributions(m3, reduce_channels="sum_abs", normalize="sum_to_one"),
        torch.tensor([[0.125, 0.375, 0.0, 0.5]]),
    )


def test_tuples_are_processed_per_element_then_concatenated():
    img = A.clone()
    vec = torch.tensor([[3.0, -1.0]], dtype=torch.float64)
    got = M.preprocess_attributions((img, vec), protocol="ghorbani")
    # image -> [[.5, 1], [2, .5]]; vector -> |v| * 2 / 4 = [1.5, .5]
    assert torch.equal(got, torch.tensor([[0.5, 1.0, 2.0, 0.5, 1.5, 0.5]], dtype=torch.float64))
    parts = M.preprocess_attributions((img, vec), protocol="ghorbani", flatten=False)
    assert isinstance(parts, tuple) and parts[0].shape == (1, 2, 2) and parts[1].shape == (1, 2)


def test_protocols_change_what_the_metrics_see():
    # raw signed values vs |.|-sum: the top-1 feature differs
    a = torch.tensor([[[[-5.0, 1.0], [0.0, 0.0]]]])
    b = torch.tensor([[[[5.0, 1.0], [0.0, 0.0]]]])
    assert M.topk_intersection(a, b, k=1).item() == 0.0
    assert M.topk_intersection(a, b, k=1, protocol="ghorbani").item() == 1.0
    assert M.topk_intersection(a, b, k=1, protocol="levine").item() == 1.0


def test_k_resolution():
    x = torch.arange(10.0).view(1, 10)
    y = torch.arange(10.0).flip(0).view(1, 10)
    # fraction -> floor(k * d), with tolerance for binary rounding (0.3 * 10 = 3.0000000000000004,
    # 0.29 * 100 = 28.999999999999996)
    assert M.topk_intersection(x, x, k=0.3).item() == 1.0
    assert M.topk_intersection(x, y, k=0.5).item() == 0.0  # top-5 of x and of y disjoint
    assert M.topk_intersection(x, y, k=0.6).item() == pytest.approx(2 / 6)
    big = torch.arange(100.0).view(1, 100)
    bigrev = big.flip(1)
    # k = 0.29 -> 29 features: the top-29 of big and of its reverse are disjoint
    assert M.topk_intersection(big, bigrev, k=0.29).item() == 0.0
    assert M.topk_intersection(big, bigrev, k=0.51).item() == pytest.approx(2 / 51)
    # k counts features after channel reduction
    four = torch.rand(1, 3, 2, 2)
    assert M.topk_intersection(four, four, k=4, reduce_channels="sum_abs").item() == 1.0
    with pytest.raises(ValueError, match="k"):
        M.topk_intersection(four, four, k=5, reduce_channels="sum_abs")


def test_docstring_table_matches_presets():
    doc = M.preprocess_attributions.__doc__
    rows = re.findall(r"^\s+``(\w+)``\s+(``\"\w+\"``|None)\s+(``\"\w+\"``|None)\s", doc, flags=re.M)
    table = {
        name: {
            "reduce_channels": None if r == "None" else r.strip('`"'),
            "normalize": None if n == "None" else n.strip('`"'),
        }
        for name, r, n in rows
    }
    assert len(rows) == len(M.PRESETS)
    assert table == {k: dict(v) for k, v in M.PRESETS.items()}
