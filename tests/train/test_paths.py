"""IG of the loss and class attributions against Captum's IntegratedGradients."""

import torch
from _train_toys import batch, tiny
from captum.attr import IntegratedGradients
from torch.nn import functional as F

from captum_certified.train._core.paths import class_ig, loss_ig


def test_loss_ig_matches_captum_riemann_right():
    model, (x, x_adv, y) = tiny(), batch()
    ours = loss_ig(model, x, x_adv, y, 20)

    def ce(z, labels):
        return F.cross_entropy(model(z), labels, reduction="none")

    ref = IntegratedGradients(ce).attribute(
        x_adv, baselines=x, additional_forward_args=(y,), n_steps=20, method="riemann_right"
    )
    torch.testing.assert_close(
        ours.detach(), ref, rtol=1e-6, atol=1e-9
    )  # alphas are float32 in both
    # The graph reaches the parameters.
    assert ours.requires_grad


def test_loss_ig_completeness():
    # sum_i IG_i -> CE(x') - CE(x) as the path is refined (right Riemann sum error O(1/m)).
    model, (x, x_adv, y) = tiny(), batch()
    with torch.no_grad():
        delta = F.cross_entropy(model(x_adv), y, reduction="none") - F.cross_entropy(
            model(x), y, reduction="none"
        )
    err = {
        m: (loss_ig(model, x, x_adv, y, m).detach().sum(dim=(1, 2, 3)) - delta).abs().max()
        for m in (50, 400)
    }
    assert float(err[400]) < 2e-3 * max(1.0, float(delta.abs().max()))
    assert float(err[400]) < float(err[50])


def test_class_ig_true_matches_captum():
    model, (_, x_adv, y) = tiny(), batch()
    ours = class_ig(model, x_adv, y, 16, "true")

    def prob(z):
        return torch.softmax(model(z), dim=1)

    ref = IntegratedGradients(prob).attribute(
        x_adv, baselines=0.0, target=y, n_steps=16, method="riemann_right"
    )
    torch.testing.assert_close(
        ours.detach(), ref, rtol=1e-6, atol=1e-9
    )  # alphas are float32 in both


def test_class_ig_other_rechooses_class_per_point():
    # Brute force: at each path point pick the most probable wrong class and take its gradient.
    model, (_, x_adv, y) = tiny(), batch()
    m = 8
    ours = class_ig(model, x_adv, y, m, "other").detach()
    ref = torch.zeros_like(x_adv)
    chosen = set()
    for i in range(x_adv.shape[0]):
        for j in range(1, m + 1):
            z = (j / m * x_adv[i : i + 1]).clone().requires_grad_()
            p = torch.softmax(model(z), dim=1)[0]
            order = [c for c in torch.argsort(p, descending=True).tolist() if c != int(y[i])]
            chosen.add(order[0])
            (g,) = torch.autograd.grad(p[order[0]], z)
            ref[i] += g[0] / m
        ref[i] *= x_adv[i]
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-9)  # alphas are float32 in both
