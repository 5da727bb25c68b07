"""Record the noisy inputs the CertifiedWrapper engine feeds its attribution (zennit's pattern)."""

from __future__ import annotations

import torch
from captum.attr import Attribution

from captum_certified.attr import CertifiedWrapper


def engine_noisy_inputs(x: torch.Tensor, wrapper_kwargs=None, **attribute_kwargs) -> torch.Tensor:
    """All noisy copies of ``x`` the engine evaluates, concatenated over its batches.

    They go through an identity "attribution" that records them; ``wrapper_kwargs`` go to
    :class:`CertifiedWrapper`, ``attribute_kwargs`` to its ``attribute``.
    """
    seen = []

    class Record(Attribution):
        def attribute(self, inputs, **kwargs):
            seen.append(inputs.detach().clone())
            return inputs

    CertifiedWrapper(Record(lambda z: z), **(wrapper_kwargs or {})).attribute(x, **attribute_kwargs)
    return torch.cat(seen)
