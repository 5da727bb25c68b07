"""``stdevs`` (a Gaussian standard deviation) and ``noise_scale`` (another noise's native scale).

Each noise takes one of the two names; the other one is refused with an error naming both.
"""

import inspect
import math

import captum.attr
import pytest
import torch
from captum.attr import Attribution, Saliency
from torch import nn

from captum_certified.attr import (
    CertifiedWrapper,
    NoiseTunnel,
    RenyiRobustSmooth,
    SparseSmoothGrad,
    UniformSmoothedAttribution,
)
from captum_certified.noise import (
    GaussianNoise,
    GeneralizedGaussianNoise,
    LaplaceNoise,
    UniformBallNoise,
    UniformCubeNoise,
)
from captum_certified.transforms import TopKBinarize

NON_GAUSSIAN = [
    LaplaceNoise(),
    GeneralizedGaussianNoise(q=1.5),
    UniformCubeNoise(),
    UniformBallNoise(),
]


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


def test_stdevs_is_the_gaussian_scale_and_noise_scale_is_refused_for_it():
    cw = CertifiedWrapper(Saliency(_model()))
    kw = dict(target=0, nt_samples=6, nt_samples_batch_size=4)
    a = cw.attribute(_x(), stdevs=0.3, generator=_gen(), **kw)
    c = cw.attribute(_x(), stdevs=0.3, relative_stdevs=True, generator=_gen(), **kw)
    e = cw.attribute(_x(), generator=_gen(), **kw)  # Captum's default stdevs = 1.0
    f = cw.attribute(_x(), stdevs=1.0, generator=_gen(), **kw)
    assert torch.equal(e, f)
    assert not torch.equal(a, c)  # the relative scale is another scale
    for wrong in (dict(noise_scale=0.3), dict(relative_noise_scale=True)):
        with pytest.raises(TypeError, match="Gaussian noise takes `stdevs`"):
            cw.attribute(_x(), **wrong, **kw)


@pytest.mark.parametrize("noise", NON_GAUSSIAN, ids=repr)
def test_other_noise_takes_noise_scale_and_refuses_stdevs(noise):
    cw = CertifiedWrapper(Saliency(_model()), noise=noise)
    kw = dict(target=1, nt_samples=5)
    for wrong in (dict(stdevs=0.4), dict(noise_scale=0.4, relative_stdevs=True)):
        with pytest.raises(TypeError, match=f"{type(noise).__name__} takes `noise_scale`"):
            cw.attribute(_x(), **wrong, **kw)
    # noise_scale=None is the number stdevs defaults to (Captum's 1.0 here)
    default = cw.attribute(_x(), generator=_gen(), **kw)
    one = cw.attribute(_x(), noise_scale=1.0, generator=_gen(), **kw)
    other = cw.attribute(_x(), noise_scale=0.4, generator=_gen(), **kw)
    assert torch.equal(default, one)
    assert not torch.equal(default, other)


def test_noise_is_an_object_not_a_name():
    with pytest.raises(TypeError, match="`noise` must be a NoiseDistribution"):
        CertifiedWrapper(Saliency(_model()), noise="laplace")
    with pytest.raises(TypeError, match="`noise` must be a NoiseDistribution"):
        CertifiedWrapper(Saliency(_model())).attribute(_x(), target=0, noise="laplace")
    with pytest.raises(TypeError, match="UniformCubeNoise or UniformBallNoise"):
        UniformSmoothedAttribution(_model()).attribute(_x(), target=0, noise=LaplaceNoise())


@pytest.mark.parametrize(
    "noise, kwargs, error, match",
    [
        (LaplaceNoise(), dict(noise_scale=-1.0), ValueError, "`noise_scale` must be finite"),
        (LaplaceNoise(), dict(noise_scale="0.1"), TypeError, "`noise_scale`"),
        (LaplaceNoise(), dict(noise_scale=(0.1, 0.2)), ValueError, "`noise_scale` has 2 entries"),
        (
            LaplaceNoise(),
            dict(noise_scale=0.2, relative_noise_scale=1),
            TypeError,
            "relative_noise_scale",
        ),
        (GaussianNoise(), dict(relative_stdevs="yes"), TypeError, "relative_stdevs"),
        (
            LaplaceNoise(),
            dict(noise_scale=0.0, return_certificate=True),
            ValueError,
            r"`noise_scale` must be > 0 .*certificate",
        ),
        (
            LaplaceNoise(),
            dict(noise_scale=0.2, relative_noise_scale=True, return_certificate=True),
            ValueError,
            r"`relative_noise_scale=True` cannot be certified.*noise_scale = fraction",
        ),
        (
            GaussianNoise(),
            dict(stdevs=0.2, relative_stdevs=True, return_certificate=True),
            ValueError,
            r"`relative_stdevs=True` cannot be certified.*stdevs = fraction",
        ),
    ],
)
def test_scale_errors_name_the_argument_passed(noise, kwargs, error, match):
    cw = CertifiedWrapper(Saliency(_model()), noise=noise, transform=TopKBinarize(2))
    with pytest.raises(error, match=match):
        cw.attribute(_x(), target=0, nt_samples=2, **kwargs)


# variance of one coordinate of unit-scale noise, and its fourth moment over the squared
# variance (kurtosis), from the densities: Gaussian 1, 3; Laplace(b=1) 2, 6; generalized
# Gaussian q=2, density exp(-z^2): N(0, 1/2), 1/2, 3; uniform on [-1, 1]: 1/3, 9/5
@pytest.mark.parametrize(
    "noise, variance, kurtosis",
    [
        (GaussianNoise(), 1.0, 3.0),
        (LaplaceNoise(), 2.0, 6.0),
        (GeneralizedGaussianNoise(q=2.0), 0.5, 3.0),
        (UniformCubeNoise(), 1 / 3, 9 / 5),
    ],
    ids=["gaussian", "laplace", "generalized_gaussian_q2", "cube"],
)
def test_the_scale_is_the_native_scale(noise, variance, kurtosis):
    scale, n, d = 0.5, 2000, 40
    cw = CertifiedWrapper(_Echo(), noise=noise)
    x = torch.zeros(1, d, dtype=torch.float64)
    name = "stdevs" if isinstance(noise, GaussianNoise) else "noise_scale"
    var = cw.attribute(
        x,
        nt_type="vargrad",
        nt_samples=n,
        nt_samples_batch_size=500,
        generator=torch.Generator().manual_seed(3),
        **{name: scale},
    )
    expected = variance * scale**2
    # mean of d independent unbiased variance estimates from n draws each
    se = expected * math.sqrt((kurtosis - 1) / (n * d))
    assert abs(var.mean().item() - expected) < 6 * se


def test_presets_take_the_scale_of_their_noise():
    model = _model()
    kw = dict(target=0, nt_samples=8, nt_samples_batch_size=8)
    rrs = RenyiRobustSmooth(model, sparsity=2)
    # the default scale is 0.25 for either noise family
    default = rrs.attribute(_x(), generator=_gen(), **kw)
    gaussian = rrs.attribute(_x(), stdevs=0.25, generator=_gen(), **kw)
    assert torch.equal(default, gaussian)
    with pytest.raises(TypeError, match="Gaussian noise takes `stdevs`"):
        rrs.attribute(_x(), noise_scale=0.25, **kw)
    lap = rrs.attribute(_x(), noise=LaplaceNoise(), noise_scale=3.0, generator=_gen(), **kw)
    lap_default = rrs.attribute(_x(), noise=LaplaceNoise(), generator=_gen(), **kw)
    lap_quarter = rrs.attribute(
        _x(), noise=LaplaceNoise(), noise_scale=0.25, generator=_gen(), **kw
    )
    assert torch.equal(lap_default, lap_quarter) and not torch.equal(lap, lap_default)
    with pytest.raises(TypeError, match="LaplaceNoise takes `noise_scale`"):
        rrs.attribute(_x(), noise=LaplaceNoise(), stdevs=0.3, **kw)

    ssg = SparseSmoothGrad(model, sparsity=2)
    c = ssg.attribute(_x(), generator=_gen(), **kw)
    d = ssg.attribute(_x(), stdevs=0.25, generator=_gen(), **kw)
    assert torch.equal(c, d)
    with pytest.raises(ValueError, match="`relative_stdevs=True` cannot"):
        ssg.attribute(_x(), relative_stdevs=True, return_certificate=True, **kw)


@pytest.mark.parametrize("noise", [UniformCubeNoise(), UniformBallNoise()], ids=repr)
def test_uniform_preset_takes_noise_scale(noise):
    usa = UniformSmoothedAttribution(_model())
    kw = dict(target=2, nt_samples=6, noise=noise)
    default = usa.attribute(_x(), generator=_gen(), **kw)
    paper = usa.attribute(_x(), noise_scale=4 / 255, generator=_gen(), **kw)
    assert torch.equal(default, paper)
    with pytest.raises(ValueError, match="`noise_scale`"):
        usa.attribute(_x(), noise_scale=-0.3, **kw)
    with pytest.raises(ValueError, match="`relative_noise_scale=True` cannot be certified"):
        usa.attribute(_x(), relative_noise_scale=True, return_certificate=True, **kw)
    with pytest.raises(TypeError, match="takes `noise_scale`"):
        usa.attribute(_x(), stdevs=0.3, **kw)


def test_unreleased_spellings_are_rejected():
    model = _model()
    with pytest.raises(TypeError, match="'k'"):
        RenyiRobustSmooth(model, k=2)  # type: ignore[call-arg]
    assert not hasattr(RenyiRobustSmooth(model, sparsity=2), "k")
    usa = UniformSmoothedAttribution(model)
    for old in (dict(radius=0.3), dict(relative_radius=True)):
        with pytest.raises(TypeError, match=next(iter(old))):
            usa.attribute(_x(), target=0, nt_samples=2, **old)


@pytest.mark.parametrize(
    "cls, defaults",
    [
        (CertifiedWrapper, dict(nt_samples=5, nt_samples_batch_size=None, stdevs=1.0)),
        (SparseSmoothGrad, dict(nt_samples=1024, nt_samples_batch_size=128, stdevs=0.25)),
        (RenyiRobustSmooth, dict(nt_samples=128, nt_samples_batch_size=64, stdevs=0.25)),
        (
            UniformSmoothedAttribution,
            dict(nt_samples=50, nt_samples_batch_size=64, stdevs=None, noise_scale=4 / 255),
        ),
    ],
)
def test_every_class_shows_captums_signature_with_its_own_defaults(cls, defaults):
    captum_names = list(inspect.signature(captum.attr.NoiseTunnel.attribute).parameters)[:-1]
    ours = inspect.signature(cls.attribute).parameters
    assert list(ours)[: len(captum_names)] == captum_names
    assert {name: ours[name].default for name in defaults} == defaults
    assert cls.attribute.__doc__ == CertifiedWrapper.attribute.__doc__  # one engine, one doc
    assert inspect.signature(NoiseTunnel.attribute) == inspect.signature(CertifiedWrapper.attribute)
