"""Expansion of per-example arguments to noisy sample batches (Captum's repeat_interleave).

The expanded batch is ``[x0 + e0, ..., x0 + e(n-1), x1 + e0, ...]``: sample ``t`` of example
``b`` sits at row ``b * n + t``. These mirror Captum's semantics so wrapped methods see what
they would see under :class:`captum.attr.NoiseTunnel`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def expand_target(target: Any, n: int, batch_size: int) -> Any:
    """Repeat a per-example target ``n`` times per example; shared targets stay as they are."""
    if isinstance(target, list):
        if len(target) != batch_size:
            raise ValueError(
                f"`target` list has {len(target)} entries for a batch of {batch_size} examples"
            )
        return [t for t in target for _ in range(n)]
    if isinstance(target, Tensor) and target.numel() > 1:
        if target.shape[0] != batch_size:
            raise ValueError(
                f"`target` tensor has {target.shape[0]} rows for a batch of {batch_size} examples"
            )
        return target.repeat_interleave(n, dim=0)
    return target


def expand_additional_forward_args(args: Any, n: int) -> Any:
    """Repeat-interleave every tensor with a batch dim; other arguments are passed unchanged."""
    if args is None:
        return None
    args = args if isinstance(args, tuple) else (args,)
    return tuple(
        a.repeat_interleave(n, dim=0) if isinstance(a, Tensor) and a.dim() > 0 else a for a in args
    )


def format_baselines(baselines: Any, inputs: tuple[Tensor, ...]) -> tuple[Any, ...]:
    if baselines is None:
        return tuple(torch.zeros_like(x[:1]) for x in inputs)
    baselines = baselines if isinstance(baselines, tuple) else (baselines,)
    if len(baselines) != len(inputs):
        raise ValueError(
            f"`baselines` has {len(baselines)} entries for {len(inputs)} input tensors"
        )
    return baselines


def expand_baselines(
    baselines: tuple[Any, ...],
    inputs: tuple[Tensor, ...],
    n: int,
    *,
    draw_from_distribution: bool,
    generator: torch.Generator | None,
) -> tuple[Any, ...]:
    """Expand baselines for ``n`` samples per example.

    With ``draw_from_distribution`` every noisy sample gets a baseline row drawn uniformly
    from the given baseline tensor, using ``generator`` (Captum draws with NumPy's global RNG
    and reuses the same draw for every partition).
    """
    batch = inputs[0].shape[0]
    out = []
    for x, b in zip(inputs, baselines):
        if not isinstance(b, Tensor):
            out.append(b)
        elif draw_from_distribution:
            draw_device = generator.device if generator is not None else "cpu"
            rows = torch.randint(
                b.shape[0], (batch * n,), generator=generator, device=draw_device
            ).to(b.device)
            out.append(b[rows])
        elif b.shape[0] == x.shape[0] and b.shape[0] > 1:
            out.append(b.repeat_interleave(n, dim=0))
        else:
            out.append(b)
    return tuple(out)


def expand_feature_mask(mask: Any, n: int) -> Any:
    """Repeat-interleave feature masks that carry a batch dimension."""
    if mask is None:
        return None
    if isinstance(mask, tuple):
        return tuple(expand_feature_mask(m, n) for m in mask)
    if isinstance(mask, Tensor) and mask.dim() > 0 and mask.shape[0] > 1:
        return mask.repeat_interleave(n, dim=0)
    return mask
