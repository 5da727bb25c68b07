"""attribution_robustness against explicit Python loops on a real (small) model."""

import copy

import pytest
import torch
from _digits import trained_digits_cnn
from captum.attr import IntegratedGradients, Saliency

from captum_certified import metrics as M

BSZ = 6
N = 5
RADIUS = 0.15


@pytest.fixture(scope="module")
def digits():
    model, x, y, _ = trained_digits_cnn()
    return model, x[:BSZ].clone(), y[:BSZ].clone()


@pytest.fixture(scope="module")
def digits64(digits):
    model, x, y = digits
    return copy.deepcopy(model).double(), x.double(), y


NAMED = {
    "topk_intersection": dict(k=10),
    "kendall_tau": {},
    "spearman_rho": {},
    "cosine_similarity": {},
    "center_of_mass_shift": dict(reduce_channels="sum_abs"),
}


def call_metric(name, a, b, kw):
    return getattr(M, name)(a, b, **kw)


def loop_values(explain, x, name, kw, n, radius, seed, **attr_kwargs):
    """Per-perturbation metric values, (bsz, n), drawing noise like default_perturb_func."""
    gen = torch.Generator().manual_seed(seed)
    ref = explain(x, **attr_kwargs)
    cols = []
    for _ in range(n):
        xp = x + torch.empty_like(x).uniform_(-radius, radius, generator=gen)
        cols.append(call_metric(name, ref, explain(xp, **attr_kwargs), kw))
    return torch.stack(cols, dim=1)


@pytest.mark.parametrize("name", sorted(NAMED))
def test_matches_explicit_loop(digits, name):
    model, x, y = digits
    sal = Saliency(model)
    kw = NAMED[name]
    vals = loop_values(sal.attribute, x, name, kw, N, RADIUS, seed=3, target=y)
    worst = vals.min(1).values if M.METRIC_HIGHER_IS_SIMILAR[name] else vals.max(1).values
    got = M.attribution_robustness(
        sal.attribute,
        x,
        metric=name,
        perturb_radius=RADIUS,
        n_perturb_samples=N,
        max_examples_per_batch=BSZ,
        generator=torch.Generator().manual_seed(3),
        target=y,
        **kw,
    )
    assert got.dtype == torch.float32 and got.shape == (BSZ,)
    torch.testing.assert_close(got, worst, rtol=0, atol=1e-6)
    got_mean = M.attribution_robustness(
        sal.attribute,
        x,
        metric=name,
        perturb_radius=RADIUS,
        n_perturb_samples=N,
        max_examples_per_batch=BSZ,
        reduction="mean",
        generator=torch.Generator().manual_seed(3),
        target=y,
        **kw,
    )
    torch.testing.assert_close(got_mean, vals.double().mean(1).float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["topk_intersection", "kendall_tau", "center_of_mass_shift"])
def test_max_examples_per_batch_does_not_change_results(digits64, name):
    model, x, y = digits64
    sal = Saliency(model)
    kw = NAMED[name]
    results = [
        M.attribution_robustness(
            sal.attribute,
            x,
            metric=name,
            perturb_radius=RADIUS,
            n_perturb_samples=7,
            max_examples_per_batch=mepb,
            generator=torch.Generator().manual_seed(5),
            target=y,
            **kw,
        )
        for mepb in (None, BSZ, 2 * BSZ + 1, 3 * BSZ, 100 * BSZ)
    ]
    assert results[0].dtype == torch.float64
    for r in results[1:]:
        torch.testing.assert_close(r, results[0], rtol=0, atol=1e-6)


def test_label_change_exclusion(digits):
    model, x, y = digits
    sal = Saliency(model)
    radius, n, seed = 0.6, 8, 11
    # direct computation with the same generator stream
    gen = torch.Generator().manual_seed(seed)
    ref_attr = sal.attribute(x, target=y)
    pred0 = model(x).argmax(1)
    vals, flips = [], []
    for _ in range(n):
        xp = x + torch.empty_like(x).uniform_(-radius, radius, generator=gen)
        flips.append(model(xp).argmax(1) != pred0)
        vals.append(M.spearman_rho(ref_attr, sal.attribute(xp, target=y)))
    flips, vals = torch.stack(flips, 1), torch.stack(vals, 1)
    assert 0 < flips.sum() < flips.numel()  # the case really has some label changes
    expected = vals.masked_fill(flips, float("inf")).min(1).values
    expected[flips.all(1)] = float("nan")

    got, n_excl = M.attribution_robustness(
        sal.attribute,
        x,
        metric="spearman_rho",
        perturb_radius=radius,
        n_perturb_samples=n,
        max_examples_per_batch=BSZ,
        forward_func=model,
        exclude_label_changes=True,
        return_excluded=True,
        generator=torch.Generator().manual_seed(seed),
        target=y,
    )
    assert n_excl.dtype == torch.int64
    assert n_excl.tolist() == flips.sum(1).tolist()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6, equal_nan=True)
    # without exclusion nothing is left out
    _, n0 = M.attribution_robustness(
        sal.attribute,
        x,
        metric="spearman_rho",
        perturb_radius=radius,
        n_perturb_samples=n,
        return_excluded=True,
        generator=torch.Generator().manual_seed(seed),
        target=y,
    )
    assert n0.tolist() == [0] * BSZ


def test_every_perturbation_excluded_gives_nan(digits):
    model, x, y = digits
    pred0 = model(x).argmax(1)
    assert len(set(pred0.tolist())) > 1
    sal = Saliency(model)

    def shift(inp):  # perturbation = the previous example of the batch
        return inp.roll(1, dims=0)

    changed = pred0.roll(1) != pred0
    assert changed.any() and not changed.all()
    got, n_excl = M.attribution_robustness(
        sal.attribute,
        x,
        metric="cosine_similarity",
        perturb_func=shift,
        n_perturb_samples=3,
        forward_func=model,
        exclude_label_changes=True,
        return_excluded=True,
        target=pred0,
    )
    assert n_excl.tolist() == [3 if c else 0 for c in changed.tolist()]
    assert torch.isnan(got[changed]).all()
    assert not torch.isnan(got[~changed]).any()
    expected = M.cosine_similarity(
        sal.attribute(x, target=pred0), sal.attribute(shift(x), target=pred0)
    )
    torch.testing.assert_close(got[~changed], expected[~changed], rtol=0, atol=1e-6)


def test_kwargs_are_expanded_like_captum():
    bsz, n = 3, 4
    x = torch.arange(12.0).view(bsz, 4)
    seen = []

    def explain(inp, **kwargs):
        seen.append(kwargs)
        return inp * 1.0

    afa = (torch.arange(6.0).view(bsz, 2), torch.tensor(2.0), "flag")
    kwargs = dict(
        target=[0, 1, 2],
        additional_forward_args=afa,
        baselines=(torch.zeros(bsz, 4)),
        feature_mask=torch.zeros(1, 4, dtype=torch.long),
    )
    M.attribution_robustness(
        explain,
        x,
        metric="cosine_similarity",
        n_perturb_samples=n,
        max_examples_per_batch=6,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )
    assert len(seen) == 1 + 2  # clean call, then 2 chunks of 2 perturbations per example
    assert seen[0]["target"] == [0, 1, 2]
    assert seen[0]["additional_forward_args"] is afa
    for kw in seen[1:]:
        assert kw["target"] == [0, 0, 1, 1, 2, 2]
        a0, a1, a2 = kw["additional_forward_args"]
        assert torch.equal(a0, afa[0].repeat_interleave(2, dim=0))
        assert a1 is afa[1] and a2 == "flag"
        assert kw["baselines"].shape == (6, 4)
        assert kw["feature_mask"].shape == (1, 4)  # one row: broadcast, not expanded
    # tensor targets with several elements are repeat-interleaved; ints are not
    seen.clear()
    tgt = torch.tensor([2, 0, 1])
    M.attribution_robustness(
        explain,
        x,
        metric="kendall_tau",
        n_perturb_samples=2,
        target=tgt,
        baselines=(torch.zeros(1, 4), 0.5),
        feature_mask=(torch.arange(12).view(bsz, 4),),
    )
    assert torch.equal(seen[1]["target"], tgt.repeat_interleave(2))
    assert seen[1]["baselines"][0].shape == (1, 4) and seen[1]["baselines"][1] == 0.5
    assert torch.equal(
        seen[1]["feature_mask"][0], torch.arange(12).view(bsz, 4).repeat_interleave(2, 0)
    )
    seen.clear()
    M.attribution_robustness(explain, x, metric="kendall_tau", n_perturb_samples=2, target=1)
    assert seen[1]["target"] == 1


def test_integrated_gradients_with_per_example_baselines(digits):
    model, x, y = digits
    ig = IntegratedGradients(model)
    baselines = 0.1 * torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    kw = dict(target=y, baselines=baselines, n_steps=8)
    vals = loop_values(ig.attribute, x, "kendall_tau", {}, 3, RADIUS, seed=2, **kw)
    got = M.attribution_robustness(
        ig.attribute,
        x,
        metric="kendall_tau",
        perturb_radius=RADIUS,
        n_perturb_samples=3,
        max_examples_per_batch=BSZ,
        generator=torch.Generator().manual_seed(2),
        **kw,
    )
    torch.testing.assert_close(got, vals.min(1).values, rtol=0, atol=1e-6)


def test_tuple_inputs(digits):
    model, x, y = digits

    def two_input_model(a, b, scale):
        return model(a + b) * scale

    sal = Saliency(two_input_model)
    x1, x2 = 0.5 * x, 0.5 * x
    scale = torch.full((BSZ, 1), 2.0)
    gen = torch.Generator().manual_seed(9)
    ref = sal.attribute((x1, x2), target=y, additional_forward_args=(scale,))
    cols = []
    for _ in range(4):
        p1 = x1 + torch.empty_like(x1).uniform_(-RADIUS, RADIUS, generator=gen)
        p2 = x2 + torch.empty_like(x2).uniform_(-RADIUS, RADIUS, generator=gen)
        att = sal.attribute((p1, p2), target=y, additional_forward_args=(scale,))
        cols.append(M.topk_intersection(ref, att, k=0.2))
    expected = torch.stack(cols, 1).min(1).values
    got, n_excl = M.attribution_robustness(
        sal.attribute,
        (x1, x2),
        metric="topk_intersection",
        k=0.2,
        perturb_radius=RADIUS,
        n_perturb_samples=4,
        max_examples_per_batch=BSZ,
        generator=torch.Generator().manual_seed(9),
        forward_func=two_input_model,
        exclude_label_changes=True,
        return_excluded=True,
        target=y,
        additional_forward_args=(scale,),
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert n_excl.tolist() == [0] * BSZ


def test_perturb_func_arity_and_callable_metric():
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    calls = []

    def one_arg(inp):
        calls.append(("one", inp.shape))
        return inp + 0.01

    def two_args(inp, radius):
        calls.append(("two", radius))
        return inp * (1 + radius)

    def explain(inp, **kwargs):
        return inp * inp

    M.attribution_robustness(
        explain,
        x,
        metric="kendall_tau",
        perturb_func=one_arg,
        n_perturb_samples=3,
        max_examples_per_batch=8,
    )
    assert calls == [("one", (4, 10))] * 3  # one call per perturbation, un-expanded inputs
    calls.clear()
    out = M.attribution_robustness(
        explain,
        x,
        metric="cosine_similarity",
        perturb_func=two_args,
        perturb_radius=0.25,
        n_perturb_samples=2,
    )
    assert calls == [("two", 0.25)] * 2
    torch.testing.assert_close(out, torch.ones(4), rtol=0, atol=1e-6)  # a rescaled map
    # a callable metric on raw attributions, with its own direction
    dist = M.attribution_robustness(
        explain,
        x,
        metric=lambda a, b: (a - b).abs().amax(dim=1),
        higher_is_similar=False,
        perturb_func=two_args,
        perturb_radius=0.5,
        n_perturb_samples=2,
    )
    torch.testing.assert_close(dist, (explain(x) * (1.5**2 - 1)).abs().amax(dim=1))


def test_default_perturb_func():
    x = torch.zeros(3, 5, dtype=torch.float64)
    p = M.default_perturb_func(x, 0.3, generator=torch.Generator().manual_seed(0))
    assert p.dtype == torch.float64 and p.abs().max() <= 0.3 and p.abs().min() > 0
    p2 = M.default_perturb_func(x, 0.3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(p, p2)
    t = M.default_perturb_func((x, x.float()), 0.1, generator=torch.Generator().manual_seed(0))
    assert isinstance(t, tuple) and t[1].dtype == torch.float32
    with pytest.raises(TypeError, match="inputs"):
        M.default_perturb_func(torch.zeros(2, 2, dtype=torch.long))


def test_wrapper_bad_arguments():
    x = torch.randn(2, 6)

    def explain(inp, **kwargs):
        return inp

    ok = dict(n_perturb_samples=2)
    cases = [
        (dict(n_perturb_samples=0), ValueError, "n_perturb_samples"),
        (dict(n_perturb_samples=2.0), TypeError, "n_perturb_samples"),
        (dict(max_examples_per_batch=0, **ok), ValueError, "max_examples_per_batch"),
        (dict(reduction="median", **ok), ValueError, "reduction"),
        (dict(exclude_label_changes=True, **ok), ValueError, "forward_func"),
        (dict(metric="pearson", **ok), ValueError, "metric"),
        (dict(metric=3, **ok), TypeError, "metric"),
        (dict(metric="topk_intersection", **ok), ValueError, "k"),
        (dict(metric="kendall_tau", k=3, **ok), ValueError, "k"),
        (
            dict(metric="kendall_tau", higher_is_similar=False, **ok),
            ValueError,
            "higher_is_similar",
        ),
        (
            dict(metric="kendall_tau", metric_kwargs={"round_centers": True}, **ok),
            ValueError,
            "metric_kwargs",
        ),
        (dict(metric="kendall_tau", protocol="x", **ok), ValueError, "protocol"),
        (dict(metric=lambda a, b: a.sum(1), k=3, **ok), ValueError, "k"),
        (dict(metric=lambda a, b: a, **ok), ValueError, "metric"),
        (
            dict(metric="kendall_tau", perturb_func=lambda inp: inp[:, :3], **ok),
            ValueError,
            "perturb_func",
        ),
    ]
    for kwargs, exc, match in cases:
        with pytest.raises(exc, match=match):
            M.attribution_robustness(explain, x, **kwargs)
    with pytest.raises(TypeError, match="inputs"):
        M.attribution_robustness(explain, [1.0, 2.0], metric="kendall_tau")
    with pytest.raises(ValueError, match="explanation_func output contains NaN"):
        M.attribution_robustness(lambda inp: inp * float("nan"), x, metric="kendall_tau")
    with pytest.raises(ValueError, match="explanation_func"):
        M.attribution_robustness(lambda inp: inp[:1], x, metric="kendall_tau")
    with pytest.warns(UserWarning, match="max_examples_per_batch"):
        M.attribution_robustness(explain, x, metric="kendall_tau", max_examples_per_batch=1, **ok)
