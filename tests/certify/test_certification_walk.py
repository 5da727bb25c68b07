"""Walk every public certifier x noise family x preset option that changes the noise or the
sampling: each combination is refused with an error naming the argument, or it is accepted and
covered by named soundness tests (which must exist). A new certifier, noise or option that is
neither fails here until someone proves it or refuses it.
"""

import inspect
import math
from pathlib import Path

import pytest
import torch
from captum.attr import IntegratedGradients, Saliency
from scipy import stats
from torch import nn

import captum_certified.attr as attr_pkg
import captum_certified.certify as certify_pkg
import captum_certified.noise as noise_pkg
from captum_certified.attr import (
    NOISY_ARGMAX,
    CertifiedWrapper,
    RenyiRobustSmooth,
    SparseSmoothGrad,
    UniformSmoothedAttribution,
)
from captum_certified.attr._core.option_table import (
    NOT_APPLICABLE,
    OPTIONS,
    STATUSES,
    options_rst,
)
from captum_certified.certify import Certifier, gaussian_lower_bound
from captum_certified.noise import (
    GaussianNoise,
    GeneralizedGaussianNoise,
    LaplaceNoise,
    NoiseDistribution,
    UniformBallNoise,
    UniformCubeNoise,
)
from captum_certified.transforms import TopKBinarize, UnitL2Normalize

TESTS = Path(__file__).resolve().parents[1]

# Soundness evidence for each accepted (certifier, noise) pair: brute-force or closed-form rule
# checks, band coverage at alpha, and attacks on trained models.
BAND = "certify/test_band_coverage.py::test_simultaneous_coverage"
PAIR_COVERAGE = {
    ("GaussianTopKCertifier", "GaussianNoise"): [
        "certify/test_topk_rule_bruteforce.py::test_sorted_rule_is_sound_bruteforce",
        "attr/test_sparse_smoothgrad_attack.py::test_attacks_never_beat_the_certificate",
        BAND,
    ],
    ("RDPTopKCertifier", "GaussianNoise"): [
        "renyi/test_rdp_topk_bruteforce.py::test_holder_rule_is_sound_bruteforce",
        "renyi/test_rdp_topk_bruteforce.py::test_pairwise_rule_is_sound_bruteforce",
        "renyi/test_renyi_attack.py::test_attack_never_beats_certificate",
        BAND,
    ],
    ("RDPTopKCertifier", "LaplaceNoise"): [
        "certify/test_laplace_l1_rule.py::test_exact_adversary_cannot_beat_the_bound",
        "certify/test_laplace_l1_rule.py::test_topk_rule_is_sound_bruteforce",
        "renyi/test_rdp_topk_bruteforce.py::test_holder_rule_is_sound_bruteforce",
        "renyi/test_rdp_topk_bruteforce.py::test_pairwise_rule_is_sound_bruteforce",
        "renyi/test_renyi_attack.py::test_attack_never_beats_certificate",
        BAND,
    ],
    ("CosineCertifier", "UniformBallNoise"): [
        "uniform/test_uniform_volume.py::test_ball_volume_term_matches_monte_carlo",
        "uniform/test_uniform_mcdiarmid.py::test_mcdiarmid_coverage",
        "uniform/test_uniform_digits_attack.py::test_attacks_never_beat_the_cosine_certificate",
    ],
    ("CubeTopKCertifier", "UniformCubeNoise"): [
        "uniform/test_cube_topk.py::test_exact_adversary_cannot_beat_the_rule",
        "uniform/test_cube_topk.py::test_topk_rule_is_sound_bruteforce",
        "certify/test_kl_band.py::test_simultaneous_coverage_non_binary",
        BAND,
    ],
    ("FeatureCertifier", "GaussianNoise"): [
        "certify/test_feature_certificate.py::test_halfspace_closed_form_soundness",
        "certify/test_feature_certificate.py::test_band_coverage_with_negative_control",
        BAND,
    ],
    ("CubeCosineCertifier", "UniformCubeNoise"): [
        "uniform/test_uniform_volume.py::test_cube_volume_term_matches_monte_carlo",
        "uniform/test_uniform_mcdiarmid.py::test_mcdiarmid_coverage",
    ],
}

NOISES = [
    GaussianNoise(),
    LaplaceNoise(),
    UniformCubeNoise(),
    UniformBallNoise(),
    GeneralizedGaussianNoise(1.0),
    GeneralizedGaussianNoise(2.0),
]


def _public_classes(module, base):
    return [
        obj
        for name in module.__all__
        if inspect.isclass(obj := getattr(module, name))
        and issubclass(obj, base)
        and not inspect.isabstract(obj)
    ]


CERTIFIERS = _public_classes(certify_pkg, Certifier)


def _assert_tests_exist(node_ids):
    for node in node_ids:
        path, name = node.split("::")
        source = (TESTS / path).read_text()
        assert f"def {name}(" in source, f"soundness test {node} does not exist"


def _model(d=8):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, 6), nn.Tanh(), nn.Linear(6, 3)).eval()


def _transform_for(certifier):
    # the cosine certificates need a declared l2 bound, the top-K ones a [0, 1] map
    return UnitL2Normalize() if hasattr(certifier, "certificate_class") else TopKBinarize(2)


def test_the_walk_sees_every_public_certifier_and_noise():
    assert {c.__name__ for c in CERTIFIERS} >= {
        "GaussianTopKCertifier",
        "RDPTopKCertifier",
        "CosineCertifier",
        "CubeCosineCertifier",
    }
    assert {type(n) for n in NOISES} == set(_public_classes(noise_pkg, NoiseDistribution))
    for certifier in CERTIFIERS:
        assert certifier.supported_noises, f"{certifier.__name__} declares no noise"


@pytest.mark.parametrize("certifier_cls", CERTIFIERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("noise", NOISES, ids=repr)
def test_every_certifier_noise_pair_is_refused_or_proven(certifier_cls, noise):
    certifier = certifier_cls()
    cw = CertifiedWrapper(
        Saliency(_model()), noise=noise, transform=_transform_for(certifier), certifier=certifier
    )
    x = torch.rand(2, 8, generator=torch.Generator().manual_seed(1))
    scale = "stdevs" if isinstance(noise, GaussianNoise) else "noise_scale"
    call = dict(target=0, nt_samples=6, return_certificate=True, **{scale: 0.5})
    if type(noise) in certifier.supported_noises:
        _, cert = cw.attribute(x, generator=torch.Generator().manual_seed(0), **call)
        assert cert.n == 6 and cert.noise == noise.name
        key = (certifier_cls.__name__, type(noise).__name__)
        assert key in PAIR_COVERAGE, f"{key} is accepted but no soundness test covers it"
        _assert_tests_exist(PAIR_COVERAGE[key])
    else:
        with pytest.raises(ValueError, match="`noise`"):
            cw.attribute(x, **call)


# -- options of the presets that change the noise or the sampling --------------------------

OPTION_COVERAGE = {
    # one scale per example, channel or feature, and tuples: certified with the smallest scale
    "per_example_stdevs": ["certify/test_certification_walk.py::test_smallest_scale_is_sound"],
    "per_feature_stdevs": ["certify/test_certification_walk.py::test_smallest_scale_is_sound"],
    "tuple_inputs": ["certify/test_certification_walk.py::test_smallest_scale_is_sound"],
    # chunking regroups i.i.d. rows (batch-statistics layers, which would couple them, are
    # refused); the band needs only i.i.d. rows
    "chunked": [
        BAND,
        "certify/test_soundness_conditions.py::"
        "test_batchnorm_in_train_mode_couples_rows_and_is_refused",
    ],
    # baselines drawn per row with the generator: rows stay i.i.d.
    "draw_baseline_from_distrib": [BAND],
    # each row's target is a function of its own noisy input
    "noisy_argmax": [
        "attr/test_sparse_smoothgrad_attack.py::test_attacks_never_beat_the_certificate"
    ],
}


GAUSSIAN_SCALES = [("stdevs", "relative_stdevs")]


def _presets():
    model = _model()
    return {
        "CertifiedWrapper": (
            lambda: CertifiedWrapper(Saliency(model), transform=TopKBinarize(2)),
            GAUSSIAN_SCALES,
        ),
        "SparseSmoothGrad": (lambda: SparseSmoothGrad(model, sparsity=2), GAUSSIAN_SCALES),
        "RenyiRobustSmooth": (lambda: RenyiRobustSmooth(model, sparsity=2), GAUSSIAN_SCALES),
        "UniformSmoothedAttribution": (
            lambda: UniformSmoothedAttribution(model),
            [("noise_scale", "relative_noise_scale")],
        ),
    }


@pytest.mark.parametrize(
    "preset, scale_arg, relative_arg",
    [(preset, *names) for preset, (_, scales) in _presets().items() for names in scales],
)
def test_every_preset_option_is_refused_or_proven(preset, scale_arg, relative_arg):
    factory = _presets()[preset][0]
    x = torch.rand(2, 8, generator=torch.Generator().manual_seed(2))
    base = dict(target=0, nt_samples=4, return_certificate=True)
    base[scale_arg] = 0.5

    def run(**options):
        call = {**base, **options}
        return factory().attribute(x, generator=torch.Generator().manual_seed(0), **call)

    refused = {
        relative_arg: {relative_arg: True},
        scale_arg: {scale_arg: -0.1},
    }
    zero = {scale_arg: 0.0}  # smooths nothing: fine for plain maps, never certified
    for arg, options in refused.items():
        with pytest.raises(ValueError, match=arg):
            run(**options)
    with pytest.raises(ValueError, match=scale_arg):
        run(**zero)
    accepted = {
        "per_example_stdevs": {scale_arg: torch.tensor([[0.3], [0.6]])},
        "chunked": {"nt_samples_batch_size": 3},
        "noisy_argmax": {"target": NOISY_ARGMAX},
    }
    if preset != "UniformSmoothedAttribution":  # the cube takes per-feature radii too, the
        accepted["per_feature_stdevs"] = {scale_arg: torch.linspace(0.3, 0.6, 8)}  # ball not
    for option, options in accepted.items():
        out = run(**options)
        assert out[-1].n == 4
        _assert_tests_exist(OPTION_COVERAGE[option])


def test_engine_only_options_are_proven():
    model = _model(4)
    cw = CertifiedWrapper(IntegratedGradients(model), transform=TopKBinarize(2))
    a, b = torch.rand(2, 4), torch.rand(2, 4)
    kw = dict(target=0, nt_samples=4, return_certificate=True)
    _, cert = cw.attribute(
        a, baselines=torch.rand(5, 4), draw_baseline_from_distrib=True, stdevs=0.3, **kw
    )
    assert cert.n == 4
    _assert_tests_exist(OPTION_COVERAGE["draw_baseline_from_distrib"])

    def forward(p, q):
        return model(p + q)

    tup = CertifiedWrapper(Saliency(forward), transform=TopKBinarize(2))
    _, cert = tup.attribute((a, b), stdevs=(0.3, 0.6), **kw)
    # float32 0.3 widened to float64: the smallest scale that was actually used
    torch.testing.assert_close(cert.scale, torch.full((2,), 0.3, dtype=torch.float64))
    _assert_tests_exist(OPTION_COVERAGE["tuple_inputs"])


def test_smallest_scale_is_sound():
    # A half-space indicator h(z) = 1[w.z > b] under N(0, diag(s)^2) is the exact worst case of
    # the Phi rule along w. Its smoothed value is Phi((w.x - b) / ||s * w||); the worst l2 shift
    # of size rho lowers the numerator by rho ||w||. The certificate uses sigma = min(s):
    # ||w|| / ||s * w|| <= 1 / min(s), so the true worst case never falls below its bound.
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        d = int(torch.randint(1, 20, (1,), generator=g))
        w = torch.randn(d, generator=g, dtype=torch.float64)
        s = 0.05 + torch.rand(d, generator=g, dtype=torch.float64)
        margin = float(torch.randn((), generator=g, dtype=torch.float64))
        rho = float(torch.rand((), generator=g, dtype=torch.float64))
        spread = float((s * w).norm())
        p = stats.norm.cdf(margin / spread)
        worst = stats.norm.cdf((margin - rho * float(w.norm())) / spread)
        bound = float(
            gaussian_lower_bound(
                torch.tensor([p], dtype=torch.float64),
                torch.tensor([rho], dtype=torch.float64),
                torch.tensor([float(s.min())], dtype=torch.float64),
            )
        )
        assert worst >= bound - 1e-12
    # and the isotropic case is tight (the rule is exact for a half-space)
    p, rho, sigma = 0.9, 0.3, 0.5
    exact = stats.norm.cdf(stats.norm.ppf(p) - rho / sigma)
    bound = gaussian_lower_bound(
        torch.tensor([p], dtype=torch.float64),
        torch.tensor([rho], dtype=torch.float64),
        torch.tensor([sigma], dtype=torch.float64),
    )
    assert float(bound) == pytest.approx(exact, abs=1e-12)
    assert not math.isnan(float(bound))


# -- every argument of every certified entry point (issue 22) ---------------------------------
#
# The table lives in captum_certified/attr/_core/option_table.py and is rendered into the user
# guide; this walk reads every signature and fails on an argument the table does not map.

ENTRY_METHODS = ("__init__", "attribute", "loss_gradient")


def _entry_points():
    """(qualified name, parameter names) of every certified entry point, by introspection."""
    classes = _public_classes(attr_pkg, CertifiedWrapper) + CERTIFIERS
    seen = {}
    for cls in classes:
        methods = [m for m in ENTRY_METHODS if hasattr(cls, m)]
        # any other public method that can return a certificate is an entry point too
        methods += [
            name
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
            and name not in methods
            and "return_certificate" in inspect.signature(member).parameters
        ]
        for name in methods:
            function = inspect.unwrap(getattr(cls, name))
            if function is object.__init__:
                continue  # a certifier without constructor arguments
            params = [p for p in inspect.signature(function).parameters if p != "self"]
            seen[function.__qualname__] = params
    return seen


def test_the_option_walk_sees_every_public_certified_class():
    names = {q.split(".")[0] for q in _entry_points()}
    assert names >= {
        "CertifiedWrapper",
        "NoiseTunnel",
        "SparseSmoothGrad",
        "RenyiRobustSmooth",
        "UniformSmoothedAttribution",
        "FeatureCertifier",
        "RDPTopKCertifier",
        "CosineCertifier",
    }


@pytest.mark.parametrize("function", sorted(_entry_points()))
def test_every_argument_is_certified_refused_or_not_applicable(function):
    params = _entry_points()[function]
    table = OPTIONS.get(function)
    assert table is not None, f"{function} is a certified entry point missing from OPTIONS"
    unmapped = [p for p in params if p not in table]
    assert not unmapped, (
        f"{function}: {unmapped} mapped to neither a soundness test nor a refusal; add them "
        "to captum_certified/attr/_core/option_table.py"
    )
    stale = [p for p in table if p not in params]
    assert not stale, f"{function}: the table lists {stale}, which it does not take"
    for name, cases in table.items():
        assert cases, f"{function}({name}) has no case"
        for case in cases:
            assert case.status in STATUSES, (function, name, case.status)
            assert case.values and case.why, (function, name)
            if case.status == NOT_APPLICABLE:
                continue
            assert case.tests, f"{function}({name}={case.values}) is {case.status} without a test"
            _assert_tests_exist(case.tests)


def test_the_walk_fails_on_an_unmapped_argument(monkeypatch):
    # teeth: a new keyword of attribute() that nobody mapped must fail the walk
    def attribute(self, inputs, nt_type="smoothgrad", *, sneaky_option=False, **kwargs):
        return None

    monkeypatch.setattr(CertifiedWrapper, "attribute", attribute)
    attribute.__qualname__ = "CertifiedWrapper.attribute"
    with pytest.raises(AssertionError, match="sneaky_option"):
        test_every_argument_is_certified_refused_or_not_applicable("CertifiedWrapper.attribute")


def test_the_option_table_renders_as_valid_rst():
    docutils_core = pytest.importorskip("docutils.core")
    text = options_rst()
    settings = {"report_level": 2, "halt_level": 2}  # a warning is an error, as sphinx -W
    tree = docutils_core.publish_doctree(text, settings_overrides=settings)
    rows = sum(len(cases) for params in OPTIONS.values() for cases in params.values())
    assert text.count("   * - ``") == rows and tree.astext()
    guide = (TESTS.parent / "docs" / "guide.rst").read_text()
    assert ".. include:: _generated/options.inc" in guide
