"""Upsample (Captum's LayerAttribution.interpolate) and Compose, alone and in the engine."""

import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from captum_certified.attr import CertifiedWrapper
from captum_certified.transforms import Compose, Identity, TopKBinarize, Upsample


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area"])
def test_upsample_matches_captum_interpolate(mode):
    a = torch.randn(3, 2, 3, 5, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(3, 1, 7, 11)
    expected = LayerAttribution.interpolate(a, (7, 11), interpolate_mode=mode)
    out = Upsample(to=x, mode=mode)(a)
    torch.testing.assert_close(out, expected.reshape(3, -1))
    assert Upsample(to=(7, 11), mode=mode).output_shapes([torch.Size([2, 3, 5])]) == [
        torch.Size([2, 7, 11])
    ]
    # an int size applies to every spatial dim, as in F.interpolate
    torch.testing.assert_close(
        Upsample(to=6, mode=mode)(a),
        LayerAttribution.interpolate(a, 6, interpolate_mode=mode).reshape(3, -1),
    )


def test_upsample_and_compose_validation():
    with pytest.raises(TypeError, match="`to`"):
        Upsample(to="big")
    with pytest.raises(ValueError, match="`to`"):
        Upsample(to=(0, 4))
    with pytest.raises(ValueError, match="`to`"):
        Upsample(to=torch.zeros(4, 4))
    with pytest.raises(ValueError, match="spatial"):
        Upsample(to=(4, 4))(torch.zeros(2, 16))
    with pytest.raises(ValueError, match="`to`"):
        Upsample(to=(4, 4, 4))(torch.zeros(2, 1, 2, 2))
    with pytest.raises(ValueError, match="`transforms`"):
        Compose()
    with pytest.raises(TypeError, match="`transforms`"):
        Compose(Identity(), "topk")
    c = Compose(Upsample(to=(4, 4)), TopKBinarize(0.25))
    assert c.kind == "binary" and not c.is_identity and Compose(Identity()).is_identity
    a = torch.tensor([[[[0.0, 1.0], [3.0, 2.0]]]])
    # nearest 2x: the bottom-left quarter (value 3) is the top 4 of 16
    expected = torch.zeros(4, 4)
    expected[2:, :2] = 1
    assert torch.equal(c.from_outputs((a,)), expected.reshape(1, 16))
    assert "Upsample" in repr(c) and "TopKBinarize" in repr(c)


def _pooled_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3),
    ).eval()


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_engine_upsamples_layer_gradcam(mode):
    # interpolation is linear: the mean of upsampled maps is the upsampled mean (same noise)
    model = _pooled_model()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    method = LayerGradCam(model, model[2])
    call = dict(target=1, nt_samples=6, stdevs=0.2)
    plain = CertifiedWrapper(method).attribute(
        x, generator=torch.Generator().manual_seed(3), **call
    )
    assert plain.shape == (2, 1, 4, 4)
    up = CertifiedWrapper(method, transform=Upsample(to=x, mode=mode)).attribute(
        x, generator=torch.Generator().manual_seed(3), **call
    )
    assert up.shape == (2, 1, 8, 8)
    expected = LayerAttribution.interpolate(plain, (8, 8), interpolate_mode=mode)
    torch.testing.assert_close(up, expected, rtol=1e-5, atol=1e-6)


def test_width_changing_transform_without_layout_returns_flat_maps():
    class FirstHalf(Identity):
        @property
        def is_identity(self) -> bool:
            return False

        def __call__(self, a):
            return a[:, : a.shape[1] // 2]

    model = _pooled_model()
    x = torch.rand(2, 1, 8, 8)
    out = CertifiedWrapper(LayerGradCam(model, model[2]), transform=FirstHalf()).attribute(
        x, target=0, nt_samples=2, stdevs=0.1
    )
    assert out.shape == (2, 8)
