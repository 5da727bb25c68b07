"""``stdevs`` (a Gaussian standard deviation) and ``noise_scale`` (any noise's native scale)."""

import math
import warnings

import pytest
import torch
from captum.attr import Attribution, Saliency
from torch import nn

from captum_certified.attr import (
    CertifiedWrapper,
    RenyiRobustSmooth,
    SparseSmoothGrad,
    UniformSmoothedAttribution,
)
from captum_certified.noise import GeneralizedGaussianNoise
from captum_certified.transforms import TopKBinarize


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def _x(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 6, generator=torch.Generator().manual_seed(1))


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(7)


class _Echo(Attribution):
    """Returns its (noisy) inputs: the engine's vargrad is then the noise's variance."""

    def __init__(self) -> None:
        super().__init__(lambda x: x.sum(1))

    def attribute(self, inputs, **kwargs):  # type: ignore[override]
        return inputs.clone()


def test_noise_scale_is_stdevs_for_gaussian_noise():
    cw = CertifiedWrapper(Saliency(_model()))
    kw = dict(target=0, nt_samples=6, nt_samples_batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = cw.attribute(_x(), stdevs=0.3, generator=_gen(), **kw)
        b = cw.attribute(_x(), noise_scale=0.3, generator=_gen(), **kw)
        c = cw.attribute(_x(), stdevs=0.3, relative_stdevs=True, generator=_gen(), **kw)
        d = cw.attribute(_x(), noise_scale=0.3, relative_noise_scale=True, generator=_gen(), **kw)
        e = cw.attribute(_x(), generator=_gen(), **kw)  # Captum's default stdevs = 1.0
        f = cw.attribute(_x(), stdevs=1.0, generator=_gen(), **kw)
    assert torch.equal(a, b)
    assert torch.equal(c, d)
    assert torch.equal(e, f)
    assert not torch.equal(a, c)  # the relative scale is another scale


@pytest.mark.parametrize(
    "noise", ["laplace", GeneralizedGaussianNoise(q=1.5), "cube", "l2_ball"], ids=str
)
def test_stdevs_with_other_noise_is_deprecated_and_keeps_the_native_scale(noise):
    cw = CertifiedWrapper(Saliency(_model()), noise=noise)
    kw = dict(target=1, nt_samples=5)
    new = cw.attribute(_x(), noise_scale=0.4, generator=_gen(), **kw)
    with pytest.warns(DeprecationWarning, match="pass `noise_scale`"):
        old = cw.attribute(_x(), stdevs=0.4, generator=_gen(), **kw)
    assert torch.equal(new, old)
    with pytest.warns(DeprecationWarning, match="relative_noise_scale"):
        old_rel = cw.attribute(_x(), stdevs=0.4, relative_stdevs=True, generator=_gen(), **kw)
    new_rel = cw.attribute(_x(), noise_scale=0.4, relative_noise_scale=True, generator=_gen(), **kw)
    assert torch.equal(new_rel, old_rel)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(stdevs=0.2, noise_scale=0.2), ValueError, "not both"),
        (dict(noise_scale=0.2, relative_stdevs=True), ValueError, "relative_noise_scale=True"),
        (dict(stdevs=0.2, relative_noise_scale=True), ValueError, "relative_stdevs=True"),
        (dict(noise_scale=-1.0), ValueError, "`noise_scale` must be finite"),
        (dict(noise_scale="0.1"), TypeError, "`noise_scale`"),
        (dict(noise_scale=(0.1, 0.2)), ValueError, "`noise_scale` has 2 entries"),
        (dict(noise_scale=0.2, relative_noise_scale=1), TypeError, "relative_noise_scale"),
        (dict(relative_stdevs="yes"), TypeError, "relative_stdevs"),
        (
            dict(noise_scale=0.0, return_certificate=True),
            ValueError,
            r"`noise_scale` must be > 0 .*certificate",
        ),
        (
            dict(noise_scale=0.2, relative_noise_scale=True, return_certificate=True),
            ValueError,
            r"`relative_noise_scale=True` cannot be certified.*noise_scale = fraction",
        ),
        (
            dict(stdevs=0.2, relative_stdevs=True, return_certificate=True),
            ValueError,
            r"`relative_stdevs=True` cannot be certified.*stdevs = fraction",
        ),
    ],
)
def test_scale_errors_name_the_argument_passed(kwargs, error, match):
    cw = CertifiedWrapper(Saliency(_model()), transform=TopKBinarize(2))
    with pytest.raises(error, match=match):
        cw.attribute(_x(), target=0, nt_samples=2, **kwargs)


# variance of one coordinate of unit-scale noise, and its fourth moment over the squared
# variance (kurtosis), from the densities: Gaussian 1, 3; Laplace(b=1) 2, 6; generalized
# Gaussian q=2, density exp(-z^2): N(0, 1/2), 1/2, 3; uniform on [-1, 1]: 1/3, 9/5
@pytest.mark.parametrize(
    "noise, variance, kurtosis",
    [
        ("gaussian", 1.0, 3.0),
        ("laplace", 2.0, 6.0),
        (GeneralizedGaussianNoise(q=2.0), 0.5, 3.0),
        ("cube", 1 / 3, 9 / 5),
    ],
    ids=["gaussian", "laplace", "generalized_gaussian_q2", "cube"],
)
def test_noise_scale_is_the_native_scale(noise, variance, kurtosis):
    scale, n, d = 0.5, 2000, 40
    cw = CertifiedWrapper(_Echo(), noise=noise)
    x = torch.zeros(1, d, dtype=torch.float64)
    var = cw.attribute(
        x,
        nt_type="vargrad",
        nt_samples=n,
        nt_samples_batch_size=500,
        noise_scale=scale,
        generator=torch.Generator().manual_seed(3),
    )
    expected = variance * scale**2
    # mean of d independent unbiased variance estimates from n draws each
    se = expected * math.sqrt((kurtosis - 1) / (n * d))
    assert abs(var.mean().item() - expected) < 6 * se


def test_presets_take_noise_scale():
    model = _model()
    kw = dict(target=0, nt_samples=8, nt_samples_batch_size=8)
    rrs = RenyiRobustSmooth(model, sparsity=2)
    # the default scale stays 0.25 whichever name is used
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default = rrs.attribute(_x(), generator=_gen(), **kw)
        named = rrs.attribute(_x(), noise_scale=0.25, generator=_gen(), **kw)
        gaussian = rrs.attribute(_x(), stdevs=0.25, generator=_gen(), **kw)
    assert torch.equal(default, named) and torch.equal(default, gaussian)
    lap = rrs.attribute(_x(), noise="laplace", noise_scale=0.3, generator=_gen(), **kw)
    with pytest.warns(DeprecationWarning, match="noise_scale"):
        lap_old = rrs.attribute(_x(), noise="laplace", stdevs=0.3, generator=_gen(), **kw)
    assert torch.equal(lap, lap_old)
    with pytest.raises(ValueError, match="not both"):
        rrs.attribute(_x(), stdevs=0.3, noise_scale=0.3, **kw)

    ssg = SparseSmoothGrad(model, sparsity=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = ssg.attribute(_x(), noise_scale=0.3, generator=_gen(), **kw)
        b = ssg.attribute(_x(), stdevs=0.3, generator=_gen(), **kw)
        c = ssg.attribute(_x(), generator=_gen(), **kw)
        d = ssg.attribute(_x(), stdevs=0.25, generator=_gen(), **kw)
    assert torch.equal(a, b) and torch.equal(c, d)
    with pytest.raises(ValueError, match="relative_noise_scale=True` cannot"):
        ssg.attribute(_x(), relative_noise_scale=True, return_certificate=True, **kw)


@pytest.mark.parametrize("noise", ["cube", "l2_ball"])
def test_uniform_radius_is_renamed_noise_scale(noise):
    usa = UniformSmoothedAttribution(_model())
    kw = dict(target=2, nt_samples=6, noise=noise)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = usa.attribute(_x(), noise_scale=0.3, generator=_gen(), **kw)
        positional = usa.attribute(_x(), 2, 6, 64, 0.3, noise, generator=_gen())
        rel = usa.attribute(
            _x(), noise_scale=0.3, relative_noise_scale=True, generator=_gen(), **kw
        )
        default = usa.attribute(_x(), generator=_gen(), **kw)
        paper = usa.attribute(_x(), noise_scale=4 / 255, generator=_gen(), **kw)
    assert torch.equal(new, positional)
    assert torch.equal(default, paper)
    with pytest.warns(DeprecationWarning, match="`radius` is deprecated, pass `noise_scale`"):
        old = usa.attribute(_x(), radius=0.3, generator=_gen(), **kw)
    assert torch.equal(new, old)
    with pytest.warns(DeprecationWarning, match="`relative_radius` is deprecated"):
        old_rel = usa.attribute(_x(), noise_scale=0.3, relative_radius=True, generator=_gen(), **kw)
    assert torch.equal(rel, old_rel)
    with pytest.raises(TypeError, match="not both"):
        usa.attribute(_x(), radius=0.3, noise_scale=0.3, **kw)
    with pytest.raises(ValueError, match="`noise_scale`"), warnings.catch_warnings():
        warnings.simplefilter("error")
        usa.attribute(_x(), noise_scale=-0.3, **kw)
    with pytest.raises(ValueError, match="`radius`"), pytest.warns(DeprecationWarning):
        usa.attribute(_x(), radius=-0.3, **kw)
    with pytest.raises(ValueError, match="`relative_noise_scale=True` cannot be certified"):
        usa.attribute(_x(), relative_noise_scale=True, return_certificate=True, **kw)


def test_deprecation_warnings_point_at_the_callers_line():
    # Python's default filters show a DeprecationWarning only when it is attributed to the
    # user's code, so it must not be attributed to the package (or Captum's log_usage)
    model, x = _model(), _x()
    calls = [
        lambda: CertifiedWrapper(Saliency(model), noise="laplace").attribute(
            x, target=0, nt_samples=2, stdevs=0.3
        ),
        lambda: RenyiRobustSmooth(model, sparsity=2).attribute(
            x, target=0, nt_samples=2, noise="laplace", stdevs=0.3
        ),
        lambda: UniformSmoothedAttribution(model).attribute(x, target=0, nt_samples=2, radius=0.3),
    ]
    for call in calls:
        with pytest.warns(DeprecationWarning) as record:
            call()
        assert [w.filename for w in record] == [__file__]
