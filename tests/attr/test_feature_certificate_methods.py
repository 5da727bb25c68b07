"""Every Captum method of Anani et al.'s list that Captum has runs through FeatureCertifier on
the trained digits CNN (layer methods through Upsample), and the certificate is consistent with
its own band and the smoothed map it came with."""

import pytest
import torch
from _digits import pick_examples, trained_digits_cnn
from captum.attr import (
    LRP,
    Deconvolution,
    FeatureAblation,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    LayerGradientXActivation,
    Occlusion,
    Saliency,
)

from captum_certified.attr import CertifiedWrapper
from captum_certified.certify import FeatureCertificate, FeatureCertifier
from captum_certified.transforms import Compose, TopKBinarize, Upsample

INPUT_METHODS = {
    "Saliency": (lambda m: Saliency(m), {}),
    "GuidedBackprop": (lambda m: GuidedBackprop(m), {}),
    "Deconvolution": (lambda m: Deconvolution(m), {}),
    "InputXGradient": (lambda m: InputXGradient(m), {}),
    "IntegratedGradients": (lambda m: IntegratedGradients(m), {"n_steps": 8}),
    "LRP": (lambda m: LRP(m), {}),
    "Occlusion": (
        lambda m: Occlusion(m),
        {"sliding_window_shapes": (1, 2, 2), "strides": (1, 2, 2)},
    ),
    "FeatureAblation": (lambda m: FeatureAblation(m), {}),
    "GuidedGradCam": (lambda m: GuidedGradCam(m, m.features[2]), {}),
}
# CAM-style layer maps, upsampled to the input before sparsifying
LAYER_METHODS = {
    "LayerGradCam": lambda m: LayerGradCam(m, m.features[3]),
    # LayerCAM = ReLU(grad x activation) summed over channels; the channel sum is GradCAM's
    "LayerGradientXActivation": lambda m: LayerGradientXActivation(m, m.features[3]),
}


@pytest.fixture(scope="module")
def digits():
    model, x, y, _ = trained_digits_cnn()
    return (model, *pick_examples(model, x, y, 2))


def _check(cert, attr, d):
    assert isinstance(cert, FeatureCertificate)
    assert cert.lower.shape == (2, d) and cert.n == 64
    side = cert.decision()
    assert set(side.unique().tolist()) <= {-1, 0, 1}
    # consistent with its own band and with the smoothed map's estimate
    mean = attr.reshape(2, -1).double()
    assert ((cert.lower <= mean + 1e-9) & (mean <= cert.upper + 1e-9)).all()
    assert (side[mean <= 0.5] <= 0).all() and (side[mean >= 0.5] >= 0).all()
    assert (side != 0).any(), "nothing certified"
    assert (cert.feature_radius()[side == 0] == 0).all()


@pytest.mark.parametrize("name", list(INPUT_METHODS))
def test_input_methods_run_through_the_feature_certifier(digits, name):
    model, x, y = digits
    factory, extra = INPUT_METHODS[name]
    cw = CertifiedWrapper(
        factory(model), transform=TopKBinarize(0.25), certifier=FeatureCertifier()
    )
    attr, cert = cw.attribute(
        x,
        target=y,
        nt_samples=64,
        stdevs=0.15,
        alpha=0.001,
        return_certificate=True,
        generator=torch.Generator().manual_seed(0),
        **extra,
    )
    assert attr.shape == x.shape
    _check(cert, attr, 64)


@pytest.mark.parametrize("name", list(LAYER_METHODS))
def test_layer_methods_run_through_upsample(digits, name):
    model, x, y = digits
    transform = Compose(Upsample(to=x), TopKBinarize(0.25))
    cw = CertifiedWrapper(
        LAYER_METHODS[name](model), transform=transform, certifier=FeatureCertifier()
    )
    attr, cert = cw.attribute(
        x,
        target=y,
        nt_samples=64,
        stdevs=0.15,
        alpha=0.001,
        return_certificate=True,
        generator=torch.Generator().manual_seed(0),
    )
    channels = 1 if name == "LayerGradCam" else 16
    assert attr.shape == (2, channels, 8, 8)
    _check(cert, attr, channels * 64)
