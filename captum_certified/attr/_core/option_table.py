"""Every argument of every certified entry point: certified, refused, or not applicable.

One table, read by two readers: ``tests/certify/test_certification_walk.py`` enumerates the
signatures of :class:`CertifiedWrapper`, its presets, the drop-in :class:`NoiseTunnel` and every
public certifier with :func:`inspect.signature` and fails on any argument this table does not
map (and on any test named here that does not exist); ``docs/conf.py`` renders the same table
into the user guide (:func:`options_rst`). A new argument is therefore refused by CI until
someone proves it (names a soundness test against an exact truth) or refuses it (names the
test of the refusal).

Keys are the qualified names of the functions (an inherited method is listed once, under the
class that defines it; a preset's ``attribute`` is the engine's function with the preset's
defaults, under the preset's name, and reuses the engine's rows); ``kwargs``-style parameters
are listed under their own name, with one case per kind of entry they forward.
"""

from __future__ import annotations

from dataclasses import dataclass

CERTIFIED = "certified"
REFUSED = "refused"
NOT_APPLICABLE = "not applicable"
STATUSES = (CERTIFIED, REFUSED, NOT_APPLICABLE)


@dataclass(frozen=True)
class Case:
    """What a certificate does with some values of one argument.

    Attributes:
        values: The values this case covers (``"any"``, ``"True"``, ``"'vargrad'"``, ...).
        status: :data:`CERTIFIED`, :data:`REFUSED` or :data:`NOT_APPLICABLE`.
        why: One line: what the certificate states, why it is refused, or why the argument
            has no bearing on it.
        tests: Test node ids relative to ``tests/`` (``"path.py::test_name"``): for a
            certified case, soundness tests against an exact truth (brute force, closed form,
            exact adversary, coverage); for a refused case, the test of the refusal.
    """

    values: str
    status: str
    why: str
    tests: tuple[str, ...] = ()


# -- evidence (test node ids, relative to tests/) ---------------------------------------------

BAND = "certify/test_band_coverage.py::test_simultaneous_coverage"
KL_BAND = "certify/test_kl_band.py::test_simultaneous_coverage_non_binary"
SETTINGS = "attr/test_stop_when.py::test_settings_from_one_pass_equal_separate_calls"
LINEAR_DEFAULT = (
    "attr/test_sparse_smoothgrad.py::test_betting_is_the_default_band_of_the_linear_map_only"
)
BETTING_BAND = (
    "certify/test_sequential_coverage.py::test_simulated_coverage_with_adversarial_stopping"
)
BETTING_EXACT = (
    "certify/test_sequential_coverage.py::test_exact_probability_of_ever_missing_is_at_most_alpha"
)
BETTING_CAPITAL = (
    "certify/test_betting_band.py::test_capital_lower_bound_never_exceeds_the_exact_capital"
)
WALK = "certify/test_certification_walk.py"
PAIRS = f"{WALK}::test_every_certifier_noise_pair_is_refused_or_proven"
PRESET_OPTIONS = f"{WALK}::test_every_preset_option_is_refused_or_proven"
SMALLEST_SCALE = f"{WALK}::test_smallest_scale_is_sound"
ENGINE_OPTIONS = f"{WALK}::test_engine_only_options_are_proven"
CONDITIONS = "certify/test_soundness_conditions.py"
OPTIONS_TESTS = "certify/test_certifiable_options.py"
ATTACK = "attr/test_sparse_smoothgrad_attack.py::test_attacks_never_beat_the_certificate"
GAUSS_RULE = "certify/test_topk_rule_bruteforce.py::test_sorted_rule_is_sound_bruteforce"
HOLDER = "renyi/test_rdp_topk_bruteforce.py::test_holder_rule_is_sound_bruteforce"
PAIRWISE = "renyi/test_rdp_topk_bruteforce.py::test_pairwise_rule_is_sound_bruteforce"
LAPLACE = "certify/test_laplace_l1_rule.py::test_exact_adversary_cannot_beat_the_bound"
RENYI_ATTACK = "renyi/test_renyi_attack.py::test_attack_never_beats_certificate"
FEATURE = "certify/test_feature_certificate.py::test_halfspace_closed_form_soundness"
MCDIARMID = "uniform/test_uniform_mcdiarmid.py::test_mcdiarmid_coverage"
BALL_VOLUME = "uniform/test_uniform_volume.py::test_ball_volume_term_matches_monte_carlo"
CUBE_VOLUME = "uniform/test_uniform_volume.py::test_cube_volume_term_matches_monte_carlo"
COSINE_ATTACK = (
    "uniform/test_uniform_digits_attack.py::test_attacks_never_beat_the_cosine_certificate"
)
GRAPH_REFUSALS = f"{OPTIONS_TESTS}::test_graph_paths_refuse_a_certificate"
BAD_ARGUMENTS = "attr/test_certified_wrapper.py::test_bad_arguments_raise_naming_the_argument"

NO_CERTIFICATE = "no certificate is computed on this path (``return_certificate`` is refused)"


def _same(*cases: Case) -> tuple[Case, ...]:
    return cases


# -- rows shared by several entry points --------------------------------------------------------

ATTRIBUTION_METHOD = _same(
    Case(
        "any Captum method that attributes each row from its own noisy input (gradient, "
        "perturbation, layer and neuron methods; per-row randomness such as dropout)",
        CERTIFIED,
        "each per-sample map is a function of its own noisy row: the theorem's i.i.d. condition",
        (BAND, ATTACK, f"{CONDITIONS}::test_row_wise_random_methods_are_certified"),
    ),
    Case(
        "a NoiseTunnel (Captum's, or the drop-in without its own noise, transform, certifier)",
        CERTIFIED,
        "unwrapped to the method it wraps; the engine adds the noise once",
        (
            BAND,
            "attr/test_captum_equivalence.py::test_wrapping_a_noise_tunnel_unwraps_it",
            f"{OPTIONS_TESTS}::test_the_drop_in_noise_tunnel_is_unwrapped_not_smoothed_twice",
        ),
    ),
    Case(
        "the drop-in NoiseTunnel with its own noise, transform or certifier",
        REFUSED,
        "the wrapper would not use them",
        (f"{OPTIONS_TESTS}::test_the_drop_in_noise_tunnel_is_unwrapped_not_smoothed_twice",),
    ),
    Case(
        "a certified preset or CertifiedWrapper (SparseSmoothGrad, ...)",
        REFUSED,
        "it would be smoothed twice, its inner noise drawn from the global RNG, not `generator`",
        (f"{OPTIONS_TESTS}::test_a_certified_preset_is_not_smoothed_again",),
    ),
    Case(
        "ShapleyValueSampling, FeaturePermutation",
        REFUSED,
        "their random permutations are shared across rows: samples are not independent",
        (f"{CONDITIONS}::test_shapley_sampling_shares_permutations_across_rows_and_is_refused",),
    ),
    Case(
        "a model with BatchNorm in train mode (or without running statistics)",
        REFUSED,
        "a row's map depends on the other rows of its chunk",
        (
            f"{CONDITIONS}::test_batchnorm_in_train_mode_couples_rows_and_is_refused",
            f"{CONDITIONS}::test_batchnorm_hidden_in_a_closure_is_refused_before_it_runs",
        ),
    ),
)

FORWARD_FUNC = _same(
    Case(
        "any model",
        CERTIFIED,
        "wrapped in the preset's base method: the rows of ``attribution_method`` apply",
        (BAND, ATTACK),
    ),
)

NOISE = _same(
    Case(
        "a noise class in the certifier's ``supported_noises``",
        CERTIFIED,
        "each (certifier, noise) pair has its own soundness tests, listed by the walk",
        (PAIRS,),
    ),
    Case(
        "any other noise (GeneralizedGaussianNoise, a subclass)",
        REFUSED,
        "no rule is proven for it",
        (PAIRS, f"{CONDITIONS}::test_noise_subclass_is_not_accepted_implicitly"),
    ),
    Case(
        "a name string (``'laplace'``)",
        REFUSED,
        "noise is an object (TypeError)",
        ("attr/test_noise_scale_vocabulary.py::test_noise_is_an_object_not_a_name",),
    ),
)

TRANSFORM = _same(
    Case(
        "a transform declaring values in [0, 1] (or an l2 bound, for the cosine certificates)",
        CERTIFIED,
        "the band (Clopper-Pearson if binary, else KL) covers its expectation",
        (BAND, KL_BAND),
    ),
    Case(
        "an unbounded transform (Identity), or one that breaks its declaration",
        REFUSED,
        "no confidence band holds for an unbounded map",
        (BAD_ARGUMENTS, f"{CONDITIONS}::test_transform_declaring_binary_must_produce_binary_maps"),
    ),
)

CERTIFIER = _same(
    Case(
        "None (the noise's default) or any public Certifier",
        CERTIFIED,
        "checked against the noise and the transform before sampling",
        (PAIRS,),
    ),
)

INPUTS = _same(
    Case(
        "float32 or float64 tensors, or a tuple of them",
        CERTIFIED,
        "the norm is that of the concatenated perturbation, the scale the smallest one "
        "(real-valued noise up to float32 rounding: see Floating point)",
        (SMALLEST_SCALE, ENGINE_OPTIONS, BAND),
    ),
    Case(
        "float16 or bfloat16 (any tensor of a tuple)",
        REFUSED,
        "noise drawn and added on a 16-bit grid is another law; cast to float32 (TypeError)",
        (f"{OPTIONS_TESTS}::test_16_bit_inputs_are_refused_with_a_certificate",),
    ),
)

NT_TYPE = _same(
    Case("'smoothgrad'", CERTIFIED, "returns E[s], the certified map", (BAND, ATTACK)),
    Case(
        "'smoothgrad_sq', 'vargrad'",
        REFUSED,
        "they return E[s^2] and Var[s], whose top-K is not the certified one",
        (
            f"{OPTIONS_TESTS}::test_vargrad_returns_another_top1_than_the_certified_one_and_is_refused",
            f"{OPTIONS_TESTS}::test_every_route_to_nt_type_is_refused_with_a_certificate",
        ),
    ),
)

NT_SAMPLES = _same(
    Case("any int >= 1", CERTIFIED, "``n`` of the band; recorded as ``cert.n``", (BAND,)),
)

NT_SAMPLES_BATCH_SIZE = _same(
    Case(
        "None or any int >= 1",
        CERTIFIED,
        "chunking regroups i.i.d. rows (batch statistics, which would couple them, are refused)",
        (BAND, f"{CONDITIONS}::test_batchnorm_in_train_mode_couples_rows_and_is_refused"),
    ),
)

SCALE = _same(
    Case(
        "> 0: a number, a tensor per example, channel or feature, or a tuple per input",
        CERTIFIED,
        "certified with the smallest scale (anisotropic noise is at least as smooth)",
        (SMALLEST_SCALE, ENGINE_OPTIONS, PRESET_OPTIONS),
    ),
    Case(
        "0 anywhere, negative, NaN",
        REFUSED,
        "a feature without noise is not smoothed",
        (
            "attr/test_noise_tunnel_dropin.py::test_a_certificate_refuses_zero_stdevs_and_says_why",
            "attr/test_noise_tunnel_dropin.py::test_negative_or_nan_stdevs_still_refused",
            PRESET_OPTIONS,
        ),
    ),
)

RELATIVE_SCALE = _same(
    Case("False", NOT_APPLICABLE, "the scale is absolute"),
    Case(
        "True",
        REFUSED,
        "the scale would depend on the input the certificate perturbs",
        (
            f"{CONDITIONS}::test_relative_stdevs_with_certificate_is_beaten_in_closed_form_and_refused",
            f"{CONDITIONS}::test_relative_scale_refused_by_every_preset",
        ),
    ),
)

DRAW_BASELINE = _same(
    Case(
        "True or False",
        CERTIFIED,
        "baselines drawn per row with the generator: rows stay i.i.d.",
        (BAND, ENGINE_OPTIONS),
    ),
)

GENERATOR = _same(
    Case(
        "None or any torch.Generator",
        CERTIFIED,
        "the source of the noise; the statement holds with probability 1 - alpha over it "
        "(choose a seed for reproducibility, never for a favourable outcome)",
        (BAND,),
    ),
)

RETURN_CERTIFICATE = _same(
    Case("True or False", NOT_APPLICABLE, "the switch this table is about"),
)

ALPHA = _same(
    Case("in (0, 1)", CERTIFIED, "the band's failure probability, ``cert.alpha``", (BAND,)),
    Case("outside (0, 1)", REFUSED, "not a probability", (BAD_ARGUMENTS,)),
)

BOUND = _same(
    Case(
        "None (but on the rank-linear map), 'kl', 'hoeffding'; 'clopper_pearson' on binary maps",
        CERTIFIED,
        "simultaneous band over the 2d tails",
        (BAND, KL_BAND),
    ),
    Case(
        "'betting'; None on the rank-linear map (its transform's default_bound)",
        CERTIFIED,
        "betting capital over the 2d tails (Ville): valid at every n, so at any n",
        (BETTING_CAPITAL, BETTING_EXACT, BETTING_BAND, LINEAR_DEFAULT),
    ),
    Case(
        "'clopper_pearson' on a non-binary map, an unknown name",
        REFUSED,
        "the band would not hold",
        (BAD_ARGUMENTS,),
    ),
)

VOCABULARY = "attr/test_noise_scale_vocabulary.py"

WRONG_SCALE_NAME = Case(
    "the name that does not apply to the noise (``noise_scale`` with Gaussian noise, "
    "``stdevs`` changed from its default with any other noise)",
    REFUSED,
    "each noise takes one name for its scale (TypeError naming the right one)",
    (
        f"{VOCABULARY}::test_stdevs_is_the_gaussian_scale_and_noise_scale_is_refused_for_it",
        f"{VOCABULARY}::test_other_noise_takes_noise_scale_and_refuses_stdevs",
    ),
)

STOP_WHEN = _same(
    Case("None", NOT_APPLICABLE, "a fixed number of samples per example"),
    Case(
        "a CertificationTarget (a ``radius`` to certify, or a ``precision`` for the radius), "
        "with return_certificate=True and a top-K certifier",
        CERTIFIED,
        "betting confidence sequence: valid at any (data-dependent) stopping time",
        (
            BETTING_EXACT,
            BETTING_BAND,
            "attr/test_stop_when.py::test_stop_when_stops_examples_early_and_records_samples",
            "attr/test_stop_when.py::test_stop_when_radius_search_on_the_digits_cnn",
            "certify/test_sequential_certification.py::"
            "test_radius_bracket_holds_the_exact_maps_radius",
        ),
    ),
    Case(
        "anything else; without a certificate; a fixed-n bound; deltas; drawn baselines",
        REFUSED,
        "a fixed-n band read at a stopping time is not valid (the tests' control)",
        ("attr/test_stop_when.py::test_stop_when_refusals_name_the_argument",),
    ),
)

ENGINE_KWARGS = _same(
    Case(
        "``target`` (any Captum target: int, tuple, tensor, list, per example), "
        "``baselines``, ``feature_mask`` and every other argument of the wrapped method "
        "(``n_steps``, ...)",
        CERTIFIED,
        "expanded per noisy sample as NoiseTunnel does; fixed per example: part of the "
        "per-sample function",
        (BAND, ATTACK, ENGINE_OPTIONS),
    ),
    Case(
        "``target='noisy_argmax'``",
        CERTIFIED,
        "each row's target is a function of its own noisy input",
        (ATTACK,),
    ),
    Case(
        "``additional_forward_args``",
        CERTIFIED,
        "fixed per example, not perturbed: part of the per-sample function",
        (BAND, "attr/test_captum_equivalence.py::test_tuple_inputs_with_additional_forward_args"),
    ),
    Case(
        "``return_convergence_delta``",
        NOT_APPLICABLE,
        "the deltas are returned alongside; the certificate is about the map only",
    ),
)

PRESET_NT_TYPE = _same(
    NT_TYPE[0],
    Case(
        "'smoothgrad_sq', 'vargrad'",
        REFUSED,
        "a preset returns (and certifies) the mean map only, with or without a certificate",
        (f"{OPTIONS_TESTS}::test_every_route_to_nt_type_is_refused_with_a_certificate",),
    ),
)

LOSS_GRADIENT = _same(Case("any", NOT_APPLICABLE, NO_CERTIFICATE))

SPARSITY = _same(
    Case(
        "a count or a fraction of d",
        CERTIFIED,
        "any [0, 1]-valued per-sample map",
        (GAUSS_RULE, HOLDER, PAIRWISE, BAND),
    ),
)

NOISE_LAYER = _same(
    Case("None", NOT_APPLICABLE, "the noise is added to the inputs"),
    Case(
        "a module (a text model's embedding)",
        CERTIFIED,
        "the noise is added to its activation h; the certificate is stated for l2 "
        "perturbations of h (docs/certificates.rst, section 11)",
        (
            "attr/test_layer_noise_certificates.py::test_exact_map_and_radius_in_embedding_space",
            "attr/test_layer_noise_certificates.py::test_coverage_at_alpha_and_teeth",
            "attr/test_noise_layer.py::test_same_numbers_as_the_mapped_call_and_as_the_1281_workaround",
        ),
    ),
    Case(
        "a module that runs twice per forward, a non-float activation, a layer method on "
        "another module, batch statistics, shared randomness",
        REFUSED,
        "the certificate would not describe the model",
        (
            "attr/test_layer_noise.py::test_refusals",
            "attr/test_noise_layer.py::test_refusals_apply_at_the_layer",
        ),
    ),
)

#: The table: function qualified name -> parameter -> cases.
OPTIONS: dict[str, dict[str, tuple[Case, ...]]] = {
    "CertifiedWrapper.__init__": {
        "attribution_method": ATTRIBUTION_METHOD,
        "noise": NOISE,
        "transform": TRANSFORM,
        "certifier": CERTIFIER,
        "noise_layer": NOISE_LAYER,
    },
    "CertifiedWrapper.attribute": {
        "inputs": INPUTS,
        "nt_type": NT_TYPE,
        "nt_samples": NT_SAMPLES,
        "nt_samples_batch_size": NT_SAMPLES_BATCH_SIZE,
        "stdevs": (*SCALE, WRONG_SCALE_NAME),
        "draw_baseline_from_distrib": DRAW_BASELINE,
        "noise": NOISE,
        "transform": TRANSFORM,
        "relative_stdevs": (*RELATIVE_SCALE, WRONG_SCALE_NAME),
        "noise_scale": (*SCALE, WRONG_SCALE_NAME),
        "relative_noise_scale": (*RELATIVE_SCALE, WRONG_SCALE_NAME),
        "generator": GENERATOR,
        "return_certificate": RETURN_CERTIFICATE,
        "alpha": ALPHA,
        "bound": BOUND,
        "stop_when": STOP_WHEN,
        "create_graph": (
            Case("False", NOT_APPLICABLE, "the streaming path"),
            Case(
                "True",
                REFUSED,
                "a differentiable map for attacks and training, without a certificate",
                (GRAPH_REFUSALS,),
            ),
        ),
        "kwargs": ENGINE_KWARGS,
    },
    "CertifiedWrapper.attribute_settings": {
        "inputs": INPUTS,
        "transforms": (
            Case(
                "transforms a certificate accepts (as ``transform``)",
                CERTIFIED,
                "each setting's statistics equal a pass with that transform alone",
                ("attr/test_stop_when.py::test_settings_from_one_pass_equal_separate_calls",),
            ),
            Case("an empty list", REFUSED, "no setting", (SETTINGS,)),
        ),
        "alpha": (
            *ALPHA,
            Case("one per setting", CERTIFIED, "each certificate at its own alpha", (SETTINGS,)),
        ),
        "return_certificate": RETURN_CERTIFICATE,
        "attribute_kwargs": (
            Case(
                "the arguments of attribute",
                CERTIFIED,
                "the same plan as attribute, one per setting",
                (SETTINGS, BAND),
            ),
            Case(
                "transform, stop_when, create_graph, nt_type, deltas",
                REFUSED,
                "not a one-pass statistic",
                (SETTINGS,),
            ),
        ),
    },
    "CertifiedWrapper.loss_gradient": {
        "inputs": LOSS_GRADIENT,
        "loss_fn": LOSS_GRADIENT,
        "wrt": LOSS_GRADIENT,
        "attribute_kwargs": (
            Case(
                "``return_certificate=True``",
                REFUSED,
                NO_CERTIFICATE,
                (GRAPH_REFUSALS,),
            ),
            Case("the other arguments of attribute", NOT_APPLICABLE, NO_CERTIFICATE),
        ),
    },
    "NoiseTunnel.__init__": {
        "attribution_method": ATTRIBUTION_METHOD,
        "noise": NOISE,
        "transform": TRANSFORM,
        "certifier": CERTIFIER,
        "noise_layer": NOISE_LAYER,
    },
    "SparseSmoothGrad.__init__": {
        "forward_func": FORWARD_FUNC,
        "sparsity": SPARSITY,
        "variant": (
            Case(
                "'binary', 'relaxed', 'linear'",
                CERTIFIED,
                "[0, 1]-valued maps (binary: Clopper-Pearson; others: KL band)",
                (GAUSS_RULE, BAND, KL_BAND),
            ),
        ),
        "clip": (Case("a count or a fraction", CERTIFIED, "part of the relaxed map", (KL_BAND,)),),
        "attribution_method": ATTRIBUTION_METHOD,
        "noise_layer": NOISE_LAYER,
    },
    "RenyiRobustSmooth.__init__": {
        "forward_func": FORWARD_FUNC,
        "sparsity": SPARSITY,
        "scoring": (
            Case(
                "'topk', 'linear', 'geometric', a non-increasing scoring tensor",
                CERTIFIED,
                "[0, 1]-valued rank-rescaled maps with a known score mass",
                (HOLDER, PAIRWISE, RENYI_ATTACK),
            ),
        ),
        "gamma": (Case("in (0, 1]", CERTIFIED, "the geometric family's decay", (HOLDER,)),),
        "attribution_method": ATTRIBUTION_METHOD,
        "noise_layer": NOISE_LAYER,
        "method": (
            Case(
                "'best', 'holder', 'pairwise'; 'phi' (Gaussian), 'laplace' (Laplace)",
                CERTIFIED,
                "each rule holds on the band event; 'best' is their union",
                (HOLDER, PAIRWISE, GAUSS_RULE, LAPLACE),
            ),
            Case(
                "'phi' with Laplace noise, 'laplace' with Gaussian noise",
                REFUSED,
                "an exact rule of another law",
                ("renyi/test_rdp_certificate_api.py::test_bad_arguments",),
            ),
        ),
        "orders": (
            Case("None or any orders > 1", CERTIFIED, "the bound holds at every order", (HOLDER,)),
        ),
    },
    "UniformSmoothedAttribution.__init__": {
        "forward_func": FORWARD_FUNC,
        "attribution_method": ATTRIBUTION_METHOD,
        "noise_layer": NOISE_LAYER,
        "norm_bound": (
            Case(
                "> 0",
                CERTIFIED,
                "each map is clipped to it and checked; the cosine bound uses it",
                (MCDIARMID, "uniform/test_uniform_preset.py::test_norm_bound_clipping"),
            ),
        ),
        "softmax": (
            Case(
                "True or False",
                CERTIFIED,
                "part of the per-sample function",
                (MCDIARMID, COSINE_ATTACK),
            ),
        ),
    },
    # certifiers (those without parameters, e.g. GaussianTopKCertifier, have no row)
    "CosineCertifier.__init__": {
        "input_dim": (
            Case("None or the engine's count", CERTIFIED, "d of the volume term", (BALL_VOLUME,)),
            Case(
                "another count",
                REFUSED,
                "a smaller d understates the worst case",
                (
                    f"{CONDITIONS}::"
                    "test_input_dim_override_understates_the_worst_case_and_is_refused",
                ),
            ),
        ),
    },
    "FeatureCertifier.__init__": {
        "threshold": (Case("in (0, 1)", CERTIFIED, "tau of the per-feature rule", (FEATURE,)),),
    },
    "RDPTopKCertifier.__init__": {
        "method": (
            Case(
                "'best', 'holder', 'pairwise', 'phi', 'laplace'",
                CERTIFIED,
                "each rule holds on the band event",
                (HOLDER, PAIRWISE, LAPLACE),
            ),
            Case(
                "an exact rule of another law",
                REFUSED,
                "'phi' needs Gaussian, 'laplace' Laplace noise",
                ("renyi/test_rdp_certificate_api.py::test_bad_arguments",),
            ),
        ),
        "orders": (
            Case("None or any orders > 1", CERTIFIED, "the bound holds at every order", (HOLDER,)),
        ),
        "num_input_features": (
            Case("None or the engine's count", CERTIFIED, "N of the norm conversions", (HOLDER,)),
            Case(
                "another count",
                REFUSED,
                "a smaller N would certify a larger radius than is true",
                (f"{CONDITIONS}::test_num_input_features_override_is_refused_and_immutable",),
            ),
        ),
    },
}

# A preset's attribute is CertifiedWrapper.attribute with the preset's defaults (one signature):
# the engine's rows, with what the preset restricts.
_ENGINE_ATTRIBUTE = OPTIONS["CertifiedWrapper.attribute"]
OPTIONS["SparseSmoothGrad.attribute"] = {**_ENGINE_ATTRIBUTE, "nt_type": PRESET_NT_TYPE}
OPTIONS["RenyiRobustSmooth.attribute"] = {**_ENGINE_ATTRIBUTE, "nt_type": PRESET_NT_TYPE}
OPTIONS["UniformSmoothedAttribution.attribute"] = {
    **_ENGINE_ATTRIBUTE,
    "nt_type": PRESET_NT_TYPE,
    "noise": (
        Case(
            "UniformBallNoise(), UniformCubeNoise() (the default)",
            CERTIFIED,
            "cosine certificate in l2 (ball) or l_inf (cube)",
            (BALL_VOLUME, CUBE_VOLUME, MCDIARMID, COSINE_ATTACK),
        ),
        Case(
            "any other noise, or a name",
            REFUSED,
            "the cosine certificates are proven for uniform noise only (TypeError)",
            (f"{VOCABULARY}::test_noise_is_an_object_not_a_name",),
        ),
    ),
    "stdevs": (
        Case("None (the default)", NOT_APPLICABLE, "uniform noise takes ``noise_scale``"),
        WRONG_SCALE_NAME,
    ),
    "relative_stdevs": (
        Case("False", NOT_APPLICABLE, "uniform noise takes ``relative_noise_scale``"),
        WRONG_SCALE_NAME,
    ),
}


def options_rst() -> str:
    """The table as a reStructuredText ``list-table`` (rendered into the user guide)."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 20 16 30 10 24",
        "",
        "   * - entry point",
        "     - argument",
        "     - values",
        "     - with ``return_certificate=True``",
        "     - why, and the tests that prove it",
    ]
    for function, params in OPTIONS.items():
        for name, cases in params.items():
            for case in cases:
                evidence = "; ".join(f"``{t.split('::')[-1]}``" for t in case.tests)
                lines += [
                    f"   * - ``{function}``",
                    f"     - ``{name}``",
                    f"     - {case.values}",
                    f"     - {case.status}",
                    f"     - {case.why}" + (f" ({evidence})" if evidence else ""),
                ]
    return "\n".join(lines) + "\n"
