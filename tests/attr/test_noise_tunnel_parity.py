"""Walk every NoiseTunnel configuration of Captum's own test config against Captum's NoiseTunnel.

``captum.testing.attr.helpers.test_config`` (shipped in the captum wheel) is the list Captum's
target, JIT and DataParallel tests iterate; its ``noise_tunnel`` entries are the argument forms
Captum's maintainers exercise NoiseTunnel with (tuple inputs, additional forward args, list,
tuple-list and tensor targets, ``nt_samples_batch_size``, ``stdevs=0.0``). Each entry x each
algorithm x each ``nt_type`` x (unchunked, chunked with a remainder) runs through Captum's
NoiseTunnel and ours from the same global-RNG seed. ``smoothgrad``/``smoothgrad_sq`` must agree
to float32 rounding; ``vargrad`` differs on purpose (Captum's ``E[a^2] - E[a]^2`` in float32
cancels catastrophically, ours streams the variance in float64), so it is judged against a
float64 variance of the very per-sample attributions each implementation computed.
"""

from __future__ import annotations

import copy
import inspect
import random

import numpy as np
import pytest
import torch
from captum.attr import Attribution, GradientAttribution
from captum.attr import NoiseTunnel as CaptumNoiseTunnel
from captum.log import log_usage

from captum_certified.attr import NoiseTunnel

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")
SEED = 7
#: a positive noise scale for the chunked runs (the configs all use stdevs=0.0)
POSITIVE_STDEVS = 0.1
#: Captum's path methods default to 50 steps; the parity concerns NoiseTunnel's plumbing,
#: not their quadrature, and 8 steps keep the walk fast (configs that set n_steps keep it).
N_STEPS = 8


def _fewer_steps(algorithm: type, args: dict) -> dict:
    if "n_steps" in inspect.signature(algorithm.attribute).parameters:
        args.setdefault("n_steps", N_STEPS)
    if args.get("n_samples", 0) > 20:  # GradientShap configs with 1000 samples
        args["n_samples"] = 20
    return args


def _load_nt_configs() -> list[tuple[str, type, dict]]:
    testing = pytest.importorskip("captum.testing.attr.helpers.test_config")
    return [
        (entry["name"], algorithm, entry)
        for entry in testing.config
        if entry.get("noise_tunnel", False)
        for algorithm in entry["algorithms"]
    ]


def _import_config_leaving_rngs_as_found() -> list[tuple[str, type, dict]]:
    # importing Captum's test config seeds every global RNG (set_all_random_seeds(1234))
    states = (torch.random.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        return _load_nt_configs()
    finally:
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


CASES = _import_config_leaving_rngs_as_found()


def _runs(entry: dict, algorithm: type):
    """(inputs, kwargs) per run: unchunked as configured, and chunked with positive noise.

    The chunk is the config's ``nt_samples_batch_size`` or 3 (20 samples: a remainder of 2).
    """
    args = dict(entry["attribute_args"])
    inputs = args.pop("inputs")
    _fewer_steps(algorithm, args)
    unchunked = {k: v for k, v in args.items() if k != "nt_samples_batch_size"}
    chunk = args.get("nt_samples_batch_size", 3)
    chunked = dict(args, nt_samples_batch_size=chunk, stdevs=POSITIVE_STDEVS)
    return inputs, [unchunked, chunked]


def _run(cls, method: Attribution, inputs, kwargs: dict):
    torch.manual_seed(SEED)
    return cls(method).attribute(inputs, **copy.copy(kwargs))


def _as_tuple(out) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def test_the_walk_covers_every_noise_tunnel_config():
    # 6 configs x 8 algorithms in captum 0.9; the walk must not silently shrink
    assert len({name for name, _, _ in CASES}) >= 6
    assert len(CASES) >= 48


@pytest.mark.parametrize(
    "name, algorithm, entry", CASES, ids=[f"{n}-{a.__name__}" for n, a, _ in CASES]
)
def test_smoothgrad_and_smoothgrad_sq_match_captum(name, algorithm, entry):
    model = entry["model"]
    inputs, runs = _runs(entry, algorithm)
    for kwargs in runs:
        for nt_type in ("smoothgrad", "smoothgrad_sq"):
            kw = dict(kwargs, nt_type=nt_type)
            expected = _run(CaptumNoiseTunnel, algorithm(model), inputs, kw)
            got = _run(NoiseTunnel, algorithm(model), inputs, kw)
            assert type(got) is type(expected)
            for g, e in zip(_as_tuple(got), _as_tuple(expected)):
                assert g.shape == e.shape and g.dtype == e.dtype
                # float32 sums (Captum) vs float64 streaming (ours): ~100 float32 ulps of
                # the map's largest entry
                scale = e.abs().max().item()
                torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5 * scale + 1e-12)


def _recording(method: Attribution, seen: list):
    """``method`` behind a recorder of every per-sample attribution it returns."""
    base = GradientAttribution if isinstance(method, GradientAttribution) else Attribution

    class Recorder(base):  # type: ignore[misc, valid-type]
        @log_usage()
        def attribute(self, inputs, **kwargs):
            out = type(method).attribute.__wrapped__(method, inputs, **kwargs)
            seen.append(tuple(o.detach().clone() for o in _as_tuple(out)))
            return out

    return Recorder(method.forward_func)


def _float64_variance(seen: list, batch: int) -> tuple[torch.Tensor, ...]:
    per_input = zip(*seen)
    out = []
    for chunks in per_input:
        samples = torch.cat(
            [c.double().reshape((batch, -1) + tuple(c.shape[1:])) for c in chunks], dim=1
        )
        out.append(samples.var(dim=1, unbiased=False))
    return tuple(out)


def _max_error(result, reference: tuple[torch.Tensor, ...]) -> float:
    return max(
        (r.double() - ref).abs().max().item() for r, ref in zip(_as_tuple(result), reference)
    )


@pytest.mark.parametrize(
    "name, algorithm, entry", CASES, ids=[f"{n}-{a.__name__}" for n, a, _ in CASES]
)
def test_vargrad_is_closer_to_float64_than_captum(name, algorithm, entry):
    model = entry["model"]
    inputs, runs = _runs(entry, algorithm)
    batch = _as_tuple(inputs)[0].shape[0]
    for kwargs in runs:
        kw = dict(kwargs, nt_type="vargrad")
        seen_captum: list = []
        seen_ours: list = []
        captum = _run(CaptumNoiseTunnel, _recording(algorithm(model), seen_captum), inputs, kw)
        ours = _run(NoiseTunnel, _recording(algorithm(model), seen_ours), inputs, kw)
        ref_captum = _float64_variance(seen_captum, batch)
        ref_ours = _float64_variance(seen_ours, batch)
        err_captum = _max_error(captum, ref_captum)
        err_ours = _max_error(ours, ref_ours)
        # ours: float64 moments rounded once to float32 (half an ulp of the largest entry)
        largest = max(r.abs().max().item() for r in ref_ours)
        assert err_ours <= 2.0**-24 * largest
        assert err_ours <= err_captum


# -- layer and neuron methods --------------------------------------------------------------


def _load_layer_configs() -> list[tuple[str, type, dict]]:
    """One algorithm per layer/neuron config of Captum's test config, every class covered.

    Each config takes its least-used algorithm so far (119 pairs -> 46 runs, all 21 layer
    and neuron classes).
    """
    testing = pytest.importorskip("captum.testing.attr.helpers.test_config")
    used: dict[str, int] = {}
    cases = []
    for entry in testing.config:
        if "layer" not in entry or entry.get("noise_tunnel"):
            continue
        algorithm = min(entry["algorithms"], key=lambda a: used.get(a.__name__, 0))
        used[algorithm.__name__] = used.get(algorithm.__name__, 0) + 1
        cases.append((entry["name"], algorithm, entry))
    for entry in testing.config:  # classes the greedy pass missed, in their first config
        if "layer" in entry and not entry.get("noise_tunnel"):
            for algorithm in entry["algorithms"]:
                if algorithm.__name__ not in used:
                    used[algorithm.__name__] = 1
                    cases.append((entry["name"], algorithm, entry))
    return cases


def _import_layer_configs_leaving_rngs_as_found() -> list[tuple[str, type, dict]]:
    states = (torch.random.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        return _load_layer_configs()
    finally:
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


LAYER_CASES = _import_layer_configs_leaving_rngs_as_found()


def _layer_method(entry: dict, algorithm: type) -> Attribution:
    from captum.testing.attr.helpers.gen_test_utils import get_target_layer

    return algorithm(entry["model"], get_target_layer(entry["model"], entry["layer"]))


@pytest.mark.parametrize(
    "name, algorithm, entry",
    LAYER_CASES,
    ids=[f"{n}-{a.__name__}" for n, a, _ in LAYER_CASES],
)
def test_layer_and_neuron_methods_match_captum(name, algorithm, entry):
    args = _fewer_steps(algorithm, dict(entry["attribute_args"]))
    inputs = args.pop("inputs")
    kw = dict(args, nt_samples=3, nt_samples_batch_size=2, stdevs=POSITIVE_STDEVS)
    # baseline distributions: Captum draws rows with NumPy once, ours with torch per chunk
    # (docs/noise_tunnel.rst), so only the result's structure can be compared
    distribution = entry.get("baseline_distr", False)
    if distribution:
        kw["draw_baseline_from_distrib"] = True
    try:
        expected = _run(CaptumNoiseTunnel, _layer_method(entry, algorithm), inputs, kw)
    except Exception as error:  # noqa: BLE001 - compared with ours below
        expected = error
    if isinstance(expected, AttributeError) and "__wrapped__" in str(expected):
        # Captum's NoiseTunnel needs a @log_usage-decorated attribute (LayerLRP's is not)
        got = _run(NoiseTunnel, _layer_method(entry, algorithm), inputs, kw)
        assert all(torch.isfinite(g).all() for g in _as_tuple(got))
        return
    if isinstance(expected, Exception):  # a list of layers returns a list: both refuse
        assert isinstance(entry["layer"], list), expected
        with pytest.raises(TypeError, match="list of layers"):
            _run(NoiseTunnel, _layer_method(entry, algorithm), inputs, kw)
        return
    got = _run(NoiseTunnel, _layer_method(entry, algorithm), inputs, kw)
    assert type(got) is type(expected)
    for g, e in zip(_as_tuple(got), _as_tuple(expected)):
        assert g.shape == e.shape and g.dtype == e.dtype
        if distribution:
            assert torch.isfinite(g).all()
            continue
        scale = e.abs().max().item()
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5 * scale + 1e-12)


def test_the_layer_walk_covers_every_layer_and_neuron_class():
    assert len(LAYER_CASES) >= 46
    assert len({a for _, a, _ in LAYER_CASES}) >= 21
