"""The model's computation in a faster form, with the noise still drawn and added in float32.

:class:`FastForward` wraps a model so that the engine adds its float32 noise *before* any
rounding: the wrapper receives the float32 noisy input ``z = x + eps``, and only then converts
it (``channels_last`` layout, ``torch.autocast`` to bfloat16/float16, ``torch.compile``). The
smoothed function is ``s(round(z))``: rounding after the noise is post-processing, so the
certificates hold with the same float32 caveat as for the float32 model (proof in the user
guide, "Mixed precision inside the model"). 16-bit *inputs* stay refused: there the noise
itself would be drawn and added on the 16-bit grid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor, nn

#: Autocast dtypes accepted by :class:`FastForward`.
AUTOCAST_DTYPES = (torch.bfloat16, torch.float16)


class FastForward(nn.Module):
    r"""A model's forward (and so its backward) in mixed precision, ``channels_last`` or compiled.

    Pass it to any attribution method in place of the model. The engine draws the noise in
    the input's dtype (float32) and adds it to the float32 input; this wrapper only changes how
    the model computes on that noisy input, which is part of the smoothed function, so
    ``return_certificate=True`` keeps its meaning (see :doc:`/guide`, "Mixed precision inside
    the model"). Outputs are returned in float32 (the input's dtype), so attribution targets,
    gradients with respect to the input and the statistics stay float32.

    The wrapper changes nothing about the wrapped model: its parameters, mode and memory
    format are left as they are (``channels_last`` converts the input only; the convolution
    kernels then pick the channels-last algorithms).

    Args:
        model (nn.Module): The model (any callable module).
        autocast (torch.dtype, optional): ``torch.bfloat16`` or ``torch.float16``: run the
                    forward under ``torch.autocast`` of the input's device type. None keeps
                    the model's own precision. Default: None
        channels_last (bool, optional): Convert 4-d inputs to ``torch.channels_last`` memory
                    format before the forward (convolutional networks). Default: False
        compile (bool, optional): Run the forward through ``torch.compile`` (forward and
                    backward are compiled on first use; no hooks are involved on the gradient
                    path of ``Saliency``, ``InputXGradient`` and ``IntegratedGradients``).
                    Default: False
        compile_kwargs (dict, optional): Keyword arguments of ``torch.compile``.
                    Default: None

    Examples::

        >>> from captum_certified.attr import SparseSmoothGrad
        >>> fast = FastForward(model, autocast=torch.bfloat16, channels_last=True)
        >>> attr, cert = SparseSmoothGrad(fast, sparsity=0.1).attribute(
        ...     x, target=y, nt_samples=8, stdevs=0.25, return_certificate=True,
        ...     generator=torch.Generator().manual_seed(0))
        >>> attr.dtype, cert.n
        (torch.float32, 8)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        autocast: torch.dtype | None = None,
        channels_last: bool = False,
        compile: bool = False,
        compile_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not callable(model):
            raise TypeError(f"`model` must be callable, got {type(model).__name__}")
        if autocast is not None and autocast not in AUTOCAST_DTYPES:
            raise ValueError(
                f"`autocast` must be None, torch.bfloat16 or torch.float16, got {autocast!r}"
            )
        for name, flag in (("channels_last", channels_last), ("compile", compile)):
            if not isinstance(flag, bool):
                raise TypeError(f"`{name}` must be a bool, got {type(flag).__name__}")
        if compile_kwargs is not None and not isinstance(compile_kwargs, dict):
            raise TypeError(f"`compile_kwargs` must be a dict, got {type(compile_kwargs).__name__}")
        self.model = model
        self.autocast = autocast
        self.channels_last = channels_last
        self.compiled = compile  # (nn.Module.compile is a method)
        # not registered as a submodule: it shares the model's parameters
        compiled = torch.compile(model, **(compile_kwargs or {})) if compile else None
        object.__setattr__(self, "_compiled", compiled)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self.channels_last:
            inputs = tuple(
                x.contiguous(memory_format=torch.channels_last)
                if isinstance(x, Tensor) and x.dim() == 4
                else x
                for x in inputs
            )
        fn = cast(Callable[..., Any], self.model if self._compiled is None else self._compiled)
        if self.autocast is None:
            return fn(*inputs, **kwargs)
        first = next((x for x in inputs if isinstance(x, Tensor) and x.is_floating_point()), None)
        device_type = first.device.type if first is not None else "cpu"
        out_dtype = first.dtype if first is not None else torch.float32
        with torch.autocast(device_type=device_type, dtype=self.autocast):
            out = fn(*inputs, **kwargs)
        return _cast(out, out_dtype)

    def extra_repr(self) -> str:
        return (
            f"autocast={self.autocast}, channels_last={self.channels_last}, compile={self.compiled}"
        )


def _cast(out: Any, dtype: torch.dtype) -> Any:
    if isinstance(out, Tensor):
        return out.to(dtype) if out.is_floating_point() else out
    if isinstance(out, tuple):
        return tuple(_cast(o, dtype) for o in out)
    return out
