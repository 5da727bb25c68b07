"""Certifiers' per-chunk checks as device-side summaries, combined by maximum (issue 25).

The engine combines the summaries of all chunks on the device and checks them once, before the
certificate is built, so the sampling loop does not read values on the host. Combining must
lose nothing: a violation in any one chunk is caught, and clean chunks pass.
"""

from __future__ import annotations

import pytest
import torch

from captum_certified.certify import CosineCertifier, GaussianTopKCertifier, RDPTopKCertifier
from captum_certified.transforms import L2NormClip, LinearRank, TopKBinarize


def _combined(certifier, chunks, transform):
    summaries = [certifier.sample_summary(c, transform) for c in chunks]
    out = summaries[0]
    for s in summaries[1:]:
        out = torch.maximum(out, s)
    return out


BINARY_GOOD = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.tensor([[1.0, 0.0, -0.5]]), r"outside \[0, 1\]"),
        (torch.tensor([[1.0, 0.0, 1.5]]), r"outside \[0, 1\]"),
        (torch.tensor([[1.0, 0.0, float("nan")]]), r"outside \[0, 1\]"),
        (torch.tensor([[1.0, 0.5, 0.0]]), "declares kind='binary'"),
    ],
)
def test_a_violation_in_any_chunk_is_caught_after_combining(bad, message):
    certifier, t = GaussianTopKCertifier(), TopKBinarize(1)
    for chunks in ([bad, BINARY_GOOD], [BINARY_GOOD, bad], [BINARY_GOOD, bad, BINARY_GOOD]):
        with pytest.raises(ValueError, match=message):
            certifier.check_summary(_combined(certifier, chunks, t), t)
        with pytest.raises(ValueError, match=message):  # and chunk by chunk, as before
            for c in chunks:
                certifier.check_samples(c, t)
    certifier.check_summary(_combined(certifier, [BINARY_GOOD, BINARY_GOOD], t), t)
    empty = torch.zeros(0, 3)
    certifier.check_summary(_combined(certifier, [empty, BINARY_GOOD], t), t)


def test_cosine_norm_and_finiteness_survive_combining():
    certifier, t = CosineCertifier(), L2NormClip(1.0)
    good = torch.tensor([[0.6, 0.8], [0.1, 0.0]])
    long = torch.tensor([[0.9, 0.9]])  # norm 1.27 > 1
    inf = torch.tensor([[float("inf"), 0.0]])
    certifier.check_summary(_combined(certifier, [good, good], t), t)
    with pytest.raises(ValueError, match="l2 norm 1.27"):
        certifier.check_summary(_combined(certifier, [good, long, good], t), t)
    with pytest.raises(ValueError, match="NaN or infinite"):
        certifier.check_summary(_combined(certifier, [good, inf], t), t)


def test_rdp_constant_totals_survive_combining():
    certifier, t = RDPTopKCertifier(), LinearRank(2)
    good = t(torch.tensor([[3.0, 1.0, 2.0], [0.1, 0.3, 0.2]]))  # totals 1 + 1/2
    certifier.check_summary(_combined(certifier, [good, good], t), t)
    off = good.clone()
    off[1, 0] = 0.25  # in [0, 1], but the row's total is no longer S
    with pytest.raises(ValueError, match="per-sample totals"):
        certifier.check_summary(_combined(certifier, [good, off], t), t)


# -- through the engine ------------------------------------------------------------------------


class _BadSecondChunk(TopKBinarize):
    """TopKBinarize whose second call (the second chunk) returns a value outside [0, 1]."""

    def __init__(self) -> None:
        super().__init__(1)
        self.calls = 0

    def __call__(self, attributions):
        out = super().__call__(attributions)
        self.calls += 1
        if self.calls == 2:
            out = out.clone()
            out[0, 0] = 1.5
        return out


def _attribute(certifier, transform):
    from captum.attr import Saliency

    from captum_certified.attr import CertifiedWrapper

    cw = CertifiedWrapper(Saliency(lambda x: x.sum(1, keepdim=True) ** 2), certifier=certifier)
    return cw.attribute(
        torch.tensor([[0.5, -1.0, 2.0]]),
        target=0,
        nt_samples=12,
        nt_samples_batch_size=4,
        stdevs=0.3,
        transform=transform,
        return_certificate=True,
    )


def test_the_engine_refuses_a_violation_in_a_later_chunk():
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        _attribute(GaussianTopKCertifier(), _BadSecondChunk())
    assert _attribute(GaussianTopKCertifier(), TopKBinarize(1))[1].n == 12


def test_a_certifier_with_its_own_check_samples_is_called_on_every_chunk():
    class Own(GaussianTopKCertifier):
        def __init__(self) -> None:
            super().__init__()
            self.chunks = 0

        def check_samples(self, maps, transform):
            self.chunks += 1
            super().check_samples(maps, transform)

    own = Own()
    _attribute(own, TopKBinarize(1))
    assert own.chunks == 3
