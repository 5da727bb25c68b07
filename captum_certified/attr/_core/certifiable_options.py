"""Options of one ``attribute()`` call that a certificate cannot honour, refused in one place.

:mod:`certification_conditions` refuses what breaks the certificate's theorem (an
input-dependent scale, rows that share randomness, batch statistics). This module refuses what
would make the certificate speak about something else than what the call returns or computes:

1. ``nt_type``: the certificate is about the expected per-sample map ``E[s]``, which only
   ``nt_type="smoothgrad"`` returns (``"smoothgrad_sq"`` returns ``E[s^2]``, ``"vargrad"``
   ``Var[s]``: their top-K is another set than the one certified);
2. 16-bit floating-point inputs: the noise is drawn and added in the input's dtype, so with
   ``float16`` or ``bfloat16`` the noisy input is rounded to a grid of spacing up to ``2^-8``
   on [0.5, 1) (``bfloat16``), and a model that reads the low bits of its input is steered by
   a perturbation of about half a grid step, far below any certified radius.

:func:`check_certifiable_options` is called once, before sampling, when a certificate is asked
for; plain smoothing accepts every option.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: The only ``nt_type`` whose returned map is the certified one.
CERTIFIED_NT_TYPE = "smoothgrad"

#: The smallest floating-point width (in bits) a certificate accepts for the noisy inputs.
MIN_CERTIFIED_BITS = 32


def refuse_other_nt_type(nt_type: str) -> None:
    """Raise ``ValueError`` unless ``nt_type`` returns the certified map ``E[s]``."""
    if nt_type != CERTIFIED_NT_TYPE:
        returned = {"smoothgrad_sq": "E[s^2]", "vargrad": "Var[s]"}.get(nt_type, "another map")
        raise ValueError(
            f"`nt_type`={nt_type!r} cannot be certified: it returns {returned}, while the "
            "certificate is about the expected per-sample map E[s] (nt_type='smoothgrad'); "
            "the top-K of the returned map is not the certified one. Pass "
            "nt_type='smoothgrad' with return_certificate=True, or smooth without a "
            "certificate"
        )


def refuse_low_precision_inputs(inputs: tuple[Tensor, ...], name: str = "inputs") -> None:
    """Raise ``TypeError`` for a floating-point input narrower than 32 bits.

    The noise is drawn and added in the input's dtype; its rounding is what a model that reads
    low bits exploits. ``float32`` and ``float64`` are accepted (see the floating-point
    condition in the user guide); a model may still compute in 16 bits internally, since its
    cast is part of the function being smoothed.
    """
    for i, x in enumerate(inputs):
        if x.is_floating_point() and torch.finfo(x.dtype).bits < MIN_CERTIFIED_BITS:
            where = f"`{name}`" if len(inputs) == 1 else f"`{name}`[{i}]"
            raise TypeError(
                f"{where} has dtype {x.dtype}: a certificate needs float32 or float64 inputs. "
                f"In {x.dtype} the noise is drawn and added on a grid of spacing "
                f"{torch.finfo(x.dtype).eps:.1e} at 1.0, and a model that reads the low bits "
                "of its input can change its map with a perturbation of half a grid step, "
                "far below any certified radius. Cast the inputs with `.float()` (the model "
                "may still cast to 16 bits inside its forward), or smooth without a "
                "certificate"
            )


def check_certifiable_options(*, nt_type: str, inputs: tuple[Tensor, ...]) -> None:
    """Every per-call option check a certificate needs beyond the theorem's conditions.

    Args:
        nt_type: the reduction the call asked for.
        inputs: the formatted input tensors (the noise is added to them in their dtype).
    """
    refuse_other_nt_type(nt_type)
    refuse_low_precision_inputs(inputs)
