"""stop_when=CertificationTarget(...) and attribute_settings through the engine."""

from __future__ import annotations

import math

import pytest
import torch
from _digits import trained_digits_cnn
from captum.attr import Saliency
from torch import nn

from captum_certified.attr import CertifiedWrapper, SparseSmoothGrad
from captum_certified.attr._core.certified_wrapper import _attribute_signature
from captum_certified.attr._core.plan import Mode, resolve_plan
from captum_certified.attr._core.sequential_runner import restrict
from captum_certified.certify import CertificationTarget, GaussianTopKCertificate
from captum_certified.certify._core.target import (
    CANNOT_CERTIFY,
    CERTIFIED,
    RESOLVED,
    UNRESOLVED,
)
from captum_certified.transforms import TopKBinarize


def model_and_inputs(batch: int = 4):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))
    x = 2 * torch.rand(batch, 1, 4, 4, generator=torch.Generator().manual_seed(1)) - 1
    return model, x


def plan_for(wrapper, x, **kwargs):
    """The plan ``wrapper.attribute(x, **kwargs)`` would run."""
    signature = _attribute_signature(type(wrapper))
    call = signature.bind(wrapper, x, **kwargs)
    call.apply_defaults()
    arguments = dict(call.arguments)
    del arguments["self"], arguments["create_graph"]
    extra = arguments.pop("kwargs")
    return resolve_plan(
        wrapper,
        Mode.STREAM,
        stdevs_default=signature.parameters["stdevs"].default,
        kwargs=extra,
        **{k: v for k, v in arguments.items() if k != "inputs"},
        inputs=arguments["inputs"],
    )


def test_stop_when_stops_examples_early_and_records_samples():
    model, x = model_and_inputs(6)
    rows: list[int] = []
    handle = model.register_forward_hook(lambda m, i, o: rows.append(o.shape[0]))
    ssg = SparseSmoothGrad(model, sparsity=0.25)
    target = CertificationTarget(k=4, radius=0.2, overlap=0.5)
    try:
        attr, cert = ssg.attribute(
            x,
            target=torch.tensor([0, 1, 2, 0, 1, 2]),
            nt_samples=2048,
            nt_samples_batch_size=64,
            stdevs=0.5,
            return_certificate=True,
            stop_when=target,
            generator=torch.Generator().manual_seed(0),
        )
    finally:
        handle.remove()
    assert attr.shape == x.shape
    assert isinstance(cert, GaussianTopKCertificate) and cert.bound == "betting_sequence"
    assert cert.samples_used.shape == (6,)
    assert (cert.samples_used <= 2048).all() and (cert.samples_used % 64 == 0).all()
    assert int(cert.samples_used.min()) < 2048  # someone stopped early
    assert rows[-1] < rows[0]  # finished examples left the batch
    reached = target.reached(cert)
    # measured: samples [1088, 2048, 128, 128, 512, 2048], certified all but two
    assert reached.any() and not reached.all()
    # an example that stopped before the budget was certified or provably out of reach
    early = cert.samples_used < 2048
    assert reached[early].any()
    # the decision is recorded: certified exactly where the final certificate reaches it
    assert set(cert.stop_decision.tolist()) <= {CERTIFIED, CANNOT_CERTIFY}
    assert torch.equal(cert.stop_decision == CERTIFIED, reached)
    assert torch.equal(cert.stop_radius, cert.certified_radius(4, 0.5))
    assert (cert.stop_radius <= cert.stop_radius_best).all()
    # the attributions are the mean maps of the samples each example used
    assert ((attr.flatten(1) >= 0) & (attr.flatten(1) <= 1)).all()


def digits_radius_search(precision: float, count: int = 8, max_samples: int = 4096):
    """SparseSmoothGrad (sigma 0.25, sparsity 0.1) on ``count`` correctly classified digits,
    searching the radius of top-20 % overlap 0.5 to ``precision``."""
    model, x, y, _ = trained_digits_cnn()
    with torch.no_grad():
        keep = (model(x).argmax(1) == y).nonzero().squeeze(-1)[:count]
    target = CertificationTarget(k=0.2, overlap=0.5, precision=precision)
    _, cert = SparseSmoothGrad(model, sparsity=0.1).attribute(
        x[keep],
        target=y[keep],
        nt_samples=max_samples,
        nt_samples_batch_size=128,
        stdevs=0.25,
        return_certificate=True,
        stop_when=target,
        generator=torch.Generator().manual_seed(0),
    )
    return cert


def test_stop_when_radius_search_on_the_digits_cnn():
    cert = digits_radius_search(precision=0.1)
    assert isinstance(cert, GaussianTopKCertificate) and cert.bound == "betting_sequence"
    # the recorded R_cert is the certificate's own query; R_best is the swapped band's,
    # rebuilt here from the certificate's band
    r_cert = cert.certified_radius(0.2, 0.5)
    assert torch.equal(cert.stop_radius, r_cert)
    swapped = GaussianTopKCertificate(
        cert.upper,
        cert.lower,
        noise=cert.noise_distribution,
        norm="l2",
        scale=cert.scale,
        n=cert.n,
        alpha=cert.alpha,
        bound=cert.bound,
    )
    torch.testing.assert_close(cert.stop_radius_best, swapped.certified_radius(0.2, 0.5))
    gap = cert.stop_radius_best - cert.stop_radius
    resolved = cert.stop_decision == RESOLVED
    assert set(cert.stop_decision.tolist()) <= {RESOLVED, UNRESOLVED}
    # every example stopped resolved (gap <= precision) or at the budget
    assert (gap[resolved] <= 0.1).all()
    assert (cert.samples_used[~resolved] == 4096).all()
    # measured: all 8 resolved, samples 1152..2560 (mean 1728), R_cert 0.09..0.22
    assert resolved.sum() >= 6 and (cert.stop_radius[resolved] > 0).all()
    assert math.isfinite(float(cert.stop_radius_best.max()))


def test_coarser_precision_uses_fewer_samples():
    coarse = digits_radius_search(precision=0.2).samples_used
    fine = digits_radius_search(precision=0.05).samples_used
    # measured: mean 688 vs 4048 of 4096
    assert coarse.sum() < 0.5 * fine.sum()
    assert (coarse < 4096).all()


def test_stop_when_refusals_name_the_argument():
    model, x = model_and_inputs()
    ssg = SparseSmoothGrad(model, sparsity=0.25)
    target = CertificationTarget(k=4, radius=0.05, overlap=0.5)
    kw = dict(target=0, nt_samples=128, stdevs=0.1)
    with pytest.raises(ValueError, match="stop_when"):
        ssg.attribute(x, stop_when=target, **kw)  # no certificate asked
    with pytest.raises(TypeError, match="stop_when"):
        ssg.attribute(x, return_certificate=True, stop_when=(4, 0.05, 0.5), **kw)
    with pytest.raises(ValueError, match="bound"):
        ssg.attribute(x, return_certificate=True, stop_when=target, bound="kl", **kw)


def test_fixed_n_certificates_record_samples_used():
    model, x = model_and_inputs()
    _, cert = SparseSmoothGrad(model, sparsity=0.25).attribute(
        x, target=0, nt_samples=64, stdevs=0.1, return_certificate=True
    )
    assert cert.samples_used.tolist() == [64] * 4
    assert cert.stop_decision is None and cert.stop_radius is None
    assert cert.stop_radius_best is None


def test_restrict_selects_the_rows_of_per_example_arguments():
    model, x = model_and_inputs()
    cw = CertifiedWrapper(Saliency(model), transform=TopKBinarize(0.25))
    index = torch.tensor([1, 3])
    extra = torch.arange(4.0)
    shared = torch.ones(3)
    for target, want in (([0, 1, 2, 0], [1, 0]), (torch.tensor([0, 1, 2, 0]), [1, 0]), (2, 2)):
        plan = plan_for(
            cw,
            x,
            target=target,
            nt_samples=8,
            return_certificate=True,
            additional_forward_args=(extra, 5),
            baselines=x.flip(0),
        )
        sub = restrict(plan, index)
        got = sub.method_kwargs["target"]
        assert (got.tolist() if isinstance(got, torch.Tensor) else got) == want
        assert torch.equal(sub.inputs[0], x[index])
        assert torch.equal(sub.method_kwargs["additional_forward_args"][0], extra[index])
        assert sub.method_kwargs["additional_forward_args"][1] == 5
        assert torch.equal(sub.method_kwargs["baselines"][0], x.flip(0)[index])
        assert sub.scales[0].shape[0] == 2
    # a shared baseline (one row) and a shared scale stay shared
    plan = plan_for(cw, x, target=0, nt_samples=8, baselines=x[:1], stdevs=shared[0].item())
    sub = restrict(plan, index)
    assert torch.equal(sub.method_kwargs["baselines"][0], x[:1])


def test_settings_from_one_pass_equal_separate_calls():
    model, x = model_and_inputs()
    ssg = SparseSmoothGrad(model)
    transforms = [TopKBinarize(t) for t in (0.125, 0.25, 0.5)]
    kw = dict(target=1, nt_samples=96, nt_samples_batch_size=32, stdevs=0.5)
    out = ssg.attribute_settings(
        x, transforms, alpha=[0.01, 0.02, 0.03], generator=torch.Generator().manual_seed(0), **kw
    )
    for (attr, cert), transform, alpha in zip(out, transforms, (0.01, 0.02, 0.03)):
        ref_attr, ref_cert = ssg.attribute(
            x,
            transform=transform,
            alpha=alpha,
            return_certificate=True,
            generator=torch.Generator().manual_seed(0),
            **kw,
        )
        assert torch.equal(attr, ref_attr)
        assert torch.equal(cert.lower, ref_cert.lower) and torch.equal(cert.upper, ref_cert.upper)
        assert cert.alpha == alpha
    plain = ssg.attribute_settings(
        x, transforms, return_certificate=False, generator=torch.Generator().manual_seed(0), **kw
    )
    assert torch.equal(plain[1], out[1][0])
    with pytest.raises(ValueError, match="alpha"):
        ssg.attribute_settings(x, transforms, alpha=[0.05], **kw)
    with pytest.raises(ValueError, match="transforms"):
        ssg.attribute_settings(x, [], **kw)
    with pytest.raises(ValueError, match="stop_when"):
        ssg.attribute_settings(x, transforms, stop_when=None, **kw)
