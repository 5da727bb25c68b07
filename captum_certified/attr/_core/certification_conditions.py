"""What a certificate assumes about the smoothing, checked before (and while) sampling.

A certificate is a theorem about the expected map ``E h(x + eps)`` of one example, estimated
from ``n`` i.i.d. per-sample maps. It holds only if

1. the noise scale is fixed (it must not depend on ``x``: a relative scale changes with the
   perturbation the certificate is about);
2. each per-sample map is a function of that row's noisy input and of randomness drawn for that
   row alone (no permutation or batch statistic shared across rows);
3. the noise is the family the certifier was proven for (checked by the certifier).

The functions here refuse the first two with an error that says why and what to do instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from captum.attr import Attribution, FeaturePermutation, ShapleyValues, ShapleyValueSampling
from torch import nn


def refuse_input_dependent_scale(relative: bool, name: str) -> None:
    """Refuse a noise scale relative to each example's range when a certificate is asked for.

    Args:
        relative: whether the scale is a fraction of ``max(x) - min(x)``.
        name: the argument that asked for it (``"relative_stdevs"`` or
            ``"relative_noise_scale"``); the scale is the argument it names after ``relative_``.
    """
    if relative:
        scale = name.removeprefix("relative_")
        raise ValueError(
            f"`{name}=True` cannot be certified: the noise scale would depend on the input "
            f"({scale} * (max(x) - min(x))), so the method run at x + delta smooths with "
            "another scale than the certificate assumes. Pass an absolute scale instead, e.g. "
            f"computed once from the dataset's range: {scale} = fraction * (data.max() - "
            "data.min())"
        )


def shares_randomness_across_rows(method: Attribution) -> bool:
    """Whether ``method`` draws randomness shared by all rows of one call.

    Captum's ``ShapleyValueSampling`` draws one feature permutation per sampling round for the
    whole batch, and ``FeaturePermutation`` (and ``LayerFeaturePermutation``) permutes features
    *across* the rows of the batch; the noisy samples of one example are then dependent and
    their mean does not concentrate around the expected map. ``ShapleyValues`` enumerates every
    permutation (deterministic) and is fine. Every other Captum method computes each row's map
    from that row alone, with randomness (GradientShap's baselines and path points, Lime and
    KernelShap's perturbations, dropout) drawn per row.
    """
    if isinstance(method, FeaturePermutation):
        return True
    return isinstance(method, ShapleyValueSampling) and not isinstance(method, ShapleyValues)


def refuse_shared_randomness(method: Attribution) -> None:
    """Raise ``ValueError`` for a wrapped method whose rows share randomness."""
    if shares_randomness_across_rows(method):
        raise ValueError(
            f"`return_certificate=True` is refused for {type(method).__name__}: it shares its "
            "random permutations across the rows of a batch, so the noisy samples of one "
            "example are not independent and no confidence band holds. Use a method that "
            "attributes each row on its own (e.g. ShapleyValues, KernelShap, "
            "FeatureAblation, a gradient method), or smooth without a certificate"
        )


def uses_batch_statistics(module: nn.Module) -> bool:
    """Whether ``module``'s output for one row depends on the other rows of its batch.

    Batch normalization normalizes with the batch's statistics in training mode, and also in
    eval mode when it tracks no running statistics (``track_running_stats=False``).
    """
    if not isinstance(module, nn.modules.batchnorm._BatchNorm):
        return False
    return module.training or module.running_mean is None or module.running_var is None


def _modules_of(obj: Any) -> Iterator[nn.Module]:
    if isinstance(obj, nn.Module):
        yield from obj.modules()
    owner = getattr(obj, "__self__", None)  # a bound method such as model.forward
    if isinstance(owner, nn.Module):
        yield from owner.modules()


def batch_dependent_modules(method: Attribution) -> list[str]:
    """Names of the modules reachable from ``method`` that use batch statistics."""
    found: list[str] = []
    seen: set[int] = set()
    for root in (method.forward_func, getattr(method, "layer", None)):
        for module in _modules_of(root):
            if id(module) not in seen and uses_batch_statistics(module):
                seen.add(id(module))
                found.append(_describe(module))
    return found


def _describe(module: nn.Module) -> str:
    state = "train mode" if module.training else "track_running_stats=False"
    return f"{type(module).__name__} ({state})"


def refuse_batch_statistics(method: Attribution) -> None:
    """Raise ``ValueError`` if a module reachable from ``method`` uses batch statistics."""
    found = batch_dependent_modules(method)
    if found:
        raise ValueError(_batch_statistics_message(", ".join(found)))


def _batch_statistics_message(what: str) -> str:
    return (
        f"`return_certificate=True` is refused: {what} normalizes each row with statistics "
        "of the whole batch, so an example's map depends on the other rows (and on "
        "nt_samples_batch_size) and certification would overwrite its running statistics. "
        "Call model.eval() first (BatchNorm with track_running_stats=False has no eval mode: "
        "replace it). Dropout is allowed: its masks are independent per row"
    )


@contextlib.contextmanager
def batch_statistics_guard(enabled: bool = True) -> Iterator[None]:
    """Refuse, while active, any batch-statistics module that runs, wherever it is reached.

    :func:`refuse_batch_statistics` sees only modules reachable from the method's attributes; a
    model hidden in a closure is caught here instead, before its forward runs (so its running
    statistics are not updated). The global hook is removed on exit.
    """
    if not enabled:
        yield
        return

    def _pre_hook(module: nn.Module, args: Any) -> None:
        if uses_batch_statistics(module):
            raise ValueError(_batch_statistics_message(_describe(module)))

    handle = nn.modules.module.register_module_forward_pre_hook(_pre_hook)
    try:
        yield
    finally:
        handle.remove()
