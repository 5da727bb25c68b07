"""Each regularizer against an independent evaluation of its formula."""

import math

import numpy as np
import pytest
import torch
from _train_toys import batch, tiny
from captum.attr import IntegratedGradients
from torch import nn
from torch.nn import functional as F

from captum_certified.train import (
    ARTRegularizer,
    CACRRegularizer,
    IGNormRegularizer,
    MapDistanceRegularizer,
    SSRRegularizer,
    WACRRegularizer,
)


def _captum_ig(fn, end, start, y, m, target=None):
    return (
        IntegratedGradients(fn)
        .attribute(
            end,
            baselines=start,
            target=target,
            additional_forward_args=None if target is not None else (y,),
            n_steps=m,
            method="riemann_right",
        )
        .numpy()
    )


def test_ig_norm_regularizer_against_captum():
    model, (x, x_adv, y) = tiny(), batch()

    def ce(z, labels):
        return F.cross_entropy(model(z), labels, reduction="none")

    ig = _captum_ig(ce, x_adv, x, y, 10)
    expected = np.abs(ig).reshape(3, -1).sum(axis=1)
    got = IGNormRegularizer(10)(model, x, x_adv, y)
    assert float(got.detach()) == pytest.approx(expected.sum(), rel=1e-6)
    got_mean = IGNormRegularizer(10, "mean")(model, x, x_adv, y)
    assert float(got_mean.detach()) == pytest.approx(expected.mean(), rel=1e-6)


def _class_attributions(model, x, x_adv, y, m):
    def prob(z):
        return torch.softmax(model(z), dim=1)

    def other(z, labels):
        p = torch.softmax(model(z), dim=1)
        return p.masked_fill(F.one_hot(labels, p.shape[1]).bool(), -1.0).amax(dim=1)

    def ce(z, labels):
        return F.cross_entropy(model(z), labels, reduction="none")

    tca = _captum_ig(prob, x_adv, 0.0, y, m, target=y)
    nca = _captum_ig(other, x_adv, 0.0, y, m)
    b = _captum_ig(prob, x, 0.0, y, m, target=y)
    c = -_captum_ig(ce, x_adv, x, y, m)
    return tca, nca, b, c


def test_cacr_and_wacr_against_numpy_formulas():
    model, (x, x_adv, y) = tiny(), batch()
    m = 12
    tca, nca, b, c = _class_attributions(model, x, x_adv, y, m)
    n = 16  # 4 x 4 pixels

    def kl_uniform_to_softmax(a):
        s = a.sum(axis=1).reshape(a.shape[0], -1)  # channel sum with sign
        q = np.exp(s - s.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        return np.array([sum((1 / n) * math.log((1 / n) / qi) for qi in row) for row in q])

    cacr = kl_uniform_to_softmax(nca) - kl_uniform_to_softmax(tca)
    bf, cf = b.reshape(3, -1), c.reshape(3, -1)
    wacr = np.array(
        [
            sum(bi * ci if np.sign(bi) == np.sign(ci) else abs(ci) for bi, ci in zip(br, cr))
            for br, cr in zip(bf, cf)
        ]
    )
    assert float(CACRRegularizer(m)(model, x, x_adv, y).detach()) == pytest.approx(
        cacr.sum(), rel=1e-6
    )
    assert float(WACRRegularizer(m, "mean")(model, x, x_adv, y).detach()) == pytest.approx(
        wacr.mean(), rel=1e-6
    )
    assert abs(cacr.sum()) > 1e-6 and abs(wacr.sum()) > 1e-6  # the check is not vacuous


def test_ssr_curvature_against_explicit_jacobian_and_eigvalsh():
    model, (x, _, y) = tiny(), batch()
    got = SSRRegularizer("sum")(model, x, x, y)
    expected = 0.0
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda z: model(z.unsqueeze(0))[0], x[i])
        w = jac.mean(dim=1).reshape(4, -1).T  # (D = H*W, C), channel axis averaged
        p = torch.softmax(model(x[i : i + 1])[0], dim=0).detach()
        a = torch.diag(p) - torch.outer(p, p)
        dense = w @ a @ w.T  # (16, 16)
        expected += float(torch.linalg.eigvalsh(dense)[-1])
    assert float(got.detach()) == pytest.approx(expected, rel=1e-8)
    assert expected > 1e-3


def test_art_triplet_against_direct_loop():
    model, (x, x_adv, y) = tiny(), batch()
    b = x.shape[0]
    rows = torch.cat([x, x_adv]).numpy().reshape(2 * b, -1)
    gp, gn = [], []
    for z, label in zip(torch.cat([x, x_adv]), torch.cat([y, y])):
        z = z.unsqueeze(0).clone().requires_grad_()
        out = model(z)[0]
        (g1,) = torch.autograd.grad(out[label], z)
        others = [c for c in range(4) if c != int(label)]
        best = max(others, key=lambda c: float(out[c].detach()))
        (g2,) = torch.autograd.grad(model(z)[0][best], z)
        gp.append(g1.numpy().ravel())
        gn.append(g2.numpy().ravel())

    def dist(u, v):
        return 1 - u @ v / ((np.linalg.norm(u) + 1e-8) * (np.linalg.norm(v) + 1e-8))

    losses = []
    for i in range(2 * b):
        pair = [i % b, i % b + b]
        d_ap = max(dist(rows[i], gp[j]) for j in pair)
        d_an = min(dist(rows[i], gn[j]) for j in pair)
        losses.append(math.log1p(math.exp(-(d_an - d_ap))))
    got = ARTRegularizer()(model, x, x_adv, y)
    # g+ of the batch is scaled by 1/(2b) (gradient of a mean): the cosine does not see it,
    # up to the 1e-8 in the norms.
    assert float(got.detach()) == pytest.approx(np.mean(losses), rel=1e-6)


def test_map_distance_against_direct_saliency():
    model, (x, x_adv, y) = tiny(), batch()

    def sal(z):
        z = z.clone().requires_grad_()
        (g,) = torch.autograd.grad(model(z).gather(1, y[:, None]).sum(), z)
        return g.abs().reshape(z.shape[0], -1)

    a, b = sal(x), sal(x_adv)
    l1 = (a - b).abs().sum(dim=1).mean()
    cos = (1 - F.cosine_similarity(a, b, dim=1)).sum()
    kl = (F.softmax(a, 1) * (F.log_softmax(a, 1) - F.log_softmax(b, 1))).sum(1).mean()
    assert float(MapDistanceRegularizer()(model, x, x_adv, y).detach()) == pytest.approx(float(l1))
    reg = MapDistanceRegularizer(distance="cosine", reduction="sum")
    assert float(reg(model, x, x_adv, y).detach()) == pytest.approx(float(cos))
    reg = MapDistanceRegularizer(distance="kl")
    assert float(reg(model, x, x_adv, y).detach()) == pytest.approx(float(kl))


def _flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _as_function_of_params(model, term):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def f(theta):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            k = int(np.prod(s))
            params[n] = theta[i : i + k].reshape(s)
            i += k
        return term(lambda z: torch.func.functional_call(model, params, (z,)))

    return f


@pytest.mark.parametrize(
    "reg",
    [
        IGNormRegularizer(6),
        CACRRegularizer(6),
        WACRRegularizer(6),
        SSRRegularizer(),
        ARTRegularizer(),
        MapDistanceRegularizer(distance="kl"),
    ],
    ids=lambda r: type(r).__name__,
)
def test_parameter_gradient_matches_finite_differences(reg):
    model, (x, x_adv, y) = tiny(), batch(n=2)
    f = _as_function_of_params(model, lambda fwd: reg(fwd, x, x_adv, y))
    theta = _flat_params(model).requires_grad_()
    (grad,) = torch.autograd.grad(f(theta), theta)
    g = torch.Generator().manual_seed(3)
    for _ in range(3):  # directional derivatives along random directions
        v = torch.randn(theta.shape, generator=g, dtype=theta.dtype)
        h = 1e-5
        with torch.no_grad():
            fd = (f(theta + h * v) - f(theta - h * v)) / (2 * h)
        assert float(grad @ v) == pytest.approx(float(fd), rel=1e-5, abs=1e-8)
    assert float(grad.abs().max()) > 0


def test_regularizers_train_relu_networks():
    # ReLU nets: the attribution terms still have a parameter gradient.
    model, (x, x_adv, y) = tiny(act=nn.ReLU()), batch()
    for reg in (IGNormRegularizer(6), SSRRegularizer(), ARTRegularizer(), CACRRegularizer(6)):
        value = reg(model, x, x_adv, y)
        grads = torch.autograd.grad(value, list(model.parameters()), allow_unused=True)
        assert any(g is not None and float(g.abs().max()) > 0 for g in grads), reg


@pytest.mark.parametrize(
    "cls, options, text",
    [
        (IGNormRegularizer, dict(n_steps=4), "IGNormRegularizer(n_steps=4, reduction="),
        (CACRRegularizer, dict(n_steps=4), "CACRRegularizer(n_steps=4, reduction="),
        (WACRRegularizer, dict(n_steps=4), "WACRRegularizer(n_steps=4, reduction="),
        (SSRRegularizer, {}, "SSRRegularizer(reduction="),
        (ARTRegularizer, {}, "ARTRegularizer(reduction="),
        (
            MapDistanceRegularizer,
            dict(distance="l2"),
            "MapDistanceRegularizer('saliency', 'l2', reduction=",
        ),
    ],
)
def test_reductions_sum_and_average_the_per_example_term(cls, options, text):
    model, (x, x_adv, y) = tiny(), batch()
    total = cls(reduction="sum", **options)
    mean = cls(reduction="mean", **options)
    per_example = total.per_example(model, x, x_adv, y)
    rows = 2 * len(x) if cls is ARTRegularizer else len(x)  # ART: clean and adversarial rows
    assert per_example.shape == (rows,)
    torch.testing.assert_close(total(model, x, x_adv, y), per_example.sum())
    torch.testing.assert_close(mean(model, x, x_adv, y), per_example.sum() / rows)
    assert repr(total) == text + "'sum')" and repr(mean) == text + "'mean')"
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        cls(reduction="max", **options)
