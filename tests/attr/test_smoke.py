import torch
from captum.attr import NoiseTunnel, Saliency

from captum_certified.attr import CertifiedWrapper


def test_identity_gaussian_matches_noise_tunnel_on_linear_model():
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    x = torch.randn(2, 6)
    torch.manual_seed(1)
    expected = NoiseTunnel(Saliency(model)).attribute(x, nt_samples=4, stdevs=0.5, target=1)
    got = CertifiedWrapper(Saliency(model)).attribute(
        x, nt_samples=4, stdevs=0.5, target=1, generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(got, expected)
