"""The preset losses: composition, inner maximisation, hygiene and argument errors."""

import pytest
import torch
from _train_toys import batch, tiny
from torch import nn
from torch.nn import functional as F

from captum_certified.train import (
    ARTAttack,
    ARTLoss,
    AttributionalLoss,
    CACRRegularizer,
    IGNormAttack,
    IGNormLoss,
    IGNormRegularizer,
    IGSumNormLoss,
    SarkarLoss,
    SSRLoss,
    SSRRegularizer,
    WACRRegularizer,
)
from captum_certified.train._core.ig_norm import ig_l1


def _f(t):
    return float(t.detach()) if isinstance(t, torch.Tensor) else float(t)


def _gen():
    return torch.Generator().manual_seed(7)


def test_ig_norm_loss_is_ce_plus_ig_norm_at_the_attack_point():
    model, (x, _, y) = tiny(), batch()
    kw = dict(radius=0.2, step_size=0.05, step_num=3, n_steps=10, approx_factor=5)
    loss = IGNormLoss(weight=0.7, generator=_gen(), **kw)(model, x, y)
    x_adv = IGNormAttack(kw["radius"], kw["step_size"], kw["step_num"], 10, 5, generator=_gen())(
        model, x, y
    )
    expected = F.cross_entropy(model(x), y, reduction="sum") + 0.7 * IGNormRegularizer(10)(
        model, x, x_adv, y
    )
    assert _f(loss) == pytest.approx(_f(expected), rel=1e-10)


def test_ig_sum_norm_and_sarkar_compose_their_terms():
    model, (x, _, y) = tiny(), batch()
    kw = dict(radius=0.2, step_size=0.05, step_num=2, n_steps=10, approx_factor=5)
    x_adv = IGNormAttack(0.2, 0.05, 2, 10, 5, 1.0, 0.1, generator=_gen())(model, x, y)
    got = IGSumNormLoss(weight=0.1, generator=_gen(), **kw)(model, x, y)
    expected = F.cross_entropy(model(x_adv), y, reduction="sum") + 0.1 * IGNormRegularizer(10)(
        model, x, x_adv, y
    )
    assert _f(got) == pytest.approx(_f(expected), rel=1e-10)
    x_adv = IGNormAttack(0.2, 0.05, 2, 10, 5, 0.0, 1.0, generator=_gen())(model, x, y)
    got = SarkarLoss(weight=0.3, generator=_gen(), **kw)(model, x, y)
    expected = F.cross_entropy(model(x), y, reduction="sum") + 0.3 * (
        CACRRegularizer(10)(model, x, x_adv, y) + WACRRegularizer(10)(model, x, x_adv, y)
    )
    assert _f(got) == pytest.approx(_f(expected), rel=1e-10)


def test_ssr_loss_mixes_ce_and_beta():
    model, (x, _, y) = tiny(), batch()
    got = SSRLoss(mixing=0.25, weight=2.0)(model, x, y)
    expected = 0.75 * F.cross_entropy(model(x), y) + 0.5 * SSRRegularizer()(model, x, x, y)
    assert _f(got) == pytest.approx(_f(expected), rel=1e-10)


def test_ig_norm_attack_stays_in_ball_and_box_and_beats_its_start():
    model, (x, _, y) = tiny(), batch(n=6)
    eps = 0.1
    attack = IGNormAttack(eps, 0.02, 10, 10, 2, generator=_gen())
    x_adv = attack(model, x, y)
    assert _f((x_adv - x).abs().max()) <= eps + 1e-12
    assert _f(x_adv.min()) >= 0 and _f(x_adv.max()) <= 1
    start = IGNormAttack(eps, 0.02, 1, 10, 2, generator=_gen())
    start.step_num = 0
    x0 = start(model, x, y)
    with torch.no_grad():
        before = ig_l1(model, x, x0, y, 5)
        after = ig_l1(model, x, x_adv, y, 5)
    assert bool((after > before).all()), (before, after)


def test_art_attack_ball_box_and_objective():
    model, (x, _, y) = tiny(act=nn.ReLU()), batch(n=6)
    x_adv = ARTAttack(0.1, 0.05, 3, k=0.5, generator=_gen())(model, x, y)
    assert _f((x_adv - x).abs().max()) <= 0.1 + 1e-12
    assert _f(x_adv.min()) >= 0 and _f(x_adv.max()) <= 1
    assert not torch.equal(x_adv, x)


def test_model_state_is_restored():
    model, (x, _, y) = tiny(), batch()
    model.train()
    model.conv.eval()
    model.head.weight.requires_grad_(False)
    for loss in (
        IGNormLoss(0.1, step_num=1, step_size=0.05, n_steps=10),
        ARTLoss(0.1, 0.05, 1, k=0.5),
        SSRLoss(),
    ):
        value = loss(model, x, y)
        assert value.requires_grad
        assert model.training and not model.conv.training and model.head.training
        assert [p.requires_grad for p in model.parameters()] == [True, True, False, True]


def test_custom_regularizer_and_errors():
    model, (x, _, y) = tiny(), batch()
    seen = {}

    def my_term(m, a, b, labels):
        seen["same"] = torch.equal(a, b)
        return m(a).pow(2).mean()

    loss = AttributionalLoss([my_term], weights=[0.5])
    got = loss(model, x, y)
    expected = F.cross_entropy(model(x), y) + 0.5 * model(x).pow(2).mean()
    assert _f(got) == pytest.approx(_f(expected)) and seen["same"]
    assert set(loss.last_terms) == {"ce", "my_term_0"}
    with pytest.raises(ValueError, match="weights"):
        AttributionalLoss([my_term], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="scalar"):
        AttributionalLoss(lambda m, a, b, labels: m(a))(model, x, y)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: IGNormLoss(radius=0.0), "radius"),
        (lambda: IGNormLoss(radius=-1.0), "radius"),
        (lambda: SarkarLoss(step_num=0), "step_num"),
        (lambda: ARTLoss(step_num=0), "step_num"),
        (lambda: IGNormLoss(n_steps=50, approx_factor=7), "approx_factor"),
        (lambda: SSRLoss(mixing=1.5), "mixing"),
        (lambda: SarkarLoss(objective="pgd"), "objective"),
        (lambda: ARTLoss(k=1.5), "k"),
        (lambda: IGNormLoss(lower_bound=1.0, upper_bound=0.0), "lower_bound"),
        # issue 28: every argument is checked when the loss is built, not at the first batch
        (lambda: SarkarLoss(n_steps=10), "approx_factor"),  # 10 / 10 = 1 inner IG point
        (lambda: IGNormLoss(n_steps=4, approx_factor=4), "approx_factor"),
        (lambda: IGSumNormLoss(n_steps=1, approx_factor=1), "n_steps"),
        (lambda: IGNormRegularizer(n_steps=1), "n_steps"),
        (lambda: CACRRegularizer(n_steps=1.5), "n_steps"),
        (lambda: ARTLoss(weight=-1.0), "`weight`"),
        (lambda: ARTLoss(weight=float("nan")), "`weight`"),
        (lambda: IGNormLoss(weight=-0.1), "`weight`"),
        (lambda: IGSumNormLoss(weight=float("inf")), "`weight`"),
        (lambda: SarkarLoss(weight=-1.0), "`weight`"),
        (lambda: SSRLoss(weight=-1.0), "`weight`"),
        (lambda: SSRLoss(mixing=-0.1), "mixing"),
        (lambda: IGNormLoss(generator=3), "generator"),
        (lambda: SarkarLoss(generator="seed"), "generator"),
        (lambda: ARTLoss(generator=0), "generator"),
        (lambda: IGSumNormLoss(reduction="avg"), "reduction"),
        (lambda: SarkarLoss(reduction="avg"), "reduction"),
        (lambda: IGNormLoss(softplus_beta=0.0), "softplus_beta"),
        (lambda: ARTLoss(softplus_beta=-1.0), "softplus_beta"),
        (lambda: SarkarLoss(step_size=0.0), "step_size"),
        (lambda: ARTLoss(radius=float("nan")), "radius"),
        (lambda: IGSumNormLoss(step_num=2.5), "step_num"),
        (lambda: ARTLoss(k=0), "k"),
    ],
)
def test_bad_construction(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_calls():
    model, (x, _, y) = tiny(), batch()
    loss = SSRLoss()
    with pytest.raises(ValueError, match="no parameters"):
        loss(nn.Sequential(nn.Flatten()), x, y)
    with pytest.raises(ValueError, match="labels outside"):
        loss(model, x, torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="labels outside"):
        loss(model, x, torch.tensor([0, -1, 2]))
    with pytest.raises(ValueError, match="shape"):
        loss(model, x, y[:2])
    with pytest.raises(TypeError, match="integer"):
        loss(model, x, y.double())
    with pytest.raises(ValueError, match="in 1..48"):
        ARTLoss(0.1, 0.05, 1, k=1000)(model, x, y)


def test_surrogate_forward_uses_live_weights():
    from captum_certified.robust import softplus_surrogate
    from captum_certified.train._core.checks import SurrogateForward

    model, (x, _, _) = tiny(act=nn.ReLU()), batch()
    surrogate = SurrogateForward(5.0)
    first = surrogate(model)(x)
    with torch.no_grad():
        model.head.bias.add_(1.0)
    second = surrogate(model)(x)
    torch.testing.assert_close(second - first, torch.ones_like(first))
    torch.testing.assert_close(second, softplus_surrogate(model, 5.0)(x))
    assert not any(isinstance(m, nn.Softplus) for m in model.modules())
