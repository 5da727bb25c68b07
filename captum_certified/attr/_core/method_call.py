"""The wrapped attribution method applied to one chunk of noisy rows (the runners' per-sample).

Arguments of the method that have a row per example (``target``, ``baselines``,
``additional_forward_args``, ``feature_mask``) are expanded to the noisy rows as Captum's
``NoiseTunnel`` expands them; ``target="noisy_argmax"`` attributes each noisy row to its own top
class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from captum.attr import Attribution
from torch import Tensor

from captum_certified._utils.captum_compat import call_attribute
from captum_certified._utils.expansion import (
    expand_additional_forward_args,
    expand_baselines,
    expand_feature_mask,
    expand_target,
)

#: Pass as ``target`` to differentiate each noisy sample's own top class (Levine et al.).
NOISY_ARGMAX = "noisy_argmax"


class MethodCall:
    """``per_sample(noisy, n_chunk, create_graph)`` for :func:`sampling.sample_chunks`.

    Collects the method's convergence deltas (``collect_deltas``) and records whether the
    method returned a tuple (``returned_tuple``: tuple out iff the method returns a tuple, as
    NoiseTunnel; a layer method may return one tensor for tuple inputs, or a tuple for one
    input tensor).
    """

    def __init__(
        self,
        method: Attribution,
        inputs: tuple[Tensor, ...],
        is_tuple: bool,
        kwargs: Mapping[str, Any],
        *,
        draw_baseline_from_distrib: bool,
        generator: torch.Generator | None,
        collect_deltas: bool = False,
    ) -> None:
        self.method = method
        self.inputs = inputs
        self.is_tuple = is_tuple
        self.kwargs = dict(kwargs)
        self.draw = draw_baseline_from_distrib
        self.generator = generator
        self.deltas: list[Tensor] | None = [] if collect_deltas else None
        self.returned_tuple = is_tuple
        self._expanded: dict[int, dict[str, Any]] = {}

    def __call__(self, noisy: tuple[Tensor, ...], n_chunk: int, graph: bool) -> tuple:
        if n_chunk not in self._expanded or self.draw:
            self._expanded[n_chunk] = self._expand(n_chunk)
        call_kwargs = dict(self._expanded[n_chunk])
        if isinstance(self.kwargs.get("target"), str):
            call_kwargs["target"] = self._noisy_argmax(noisy, call_kwargs)
        # Captum's gradient methods differentiate every noisy sample's output as its own root;
        # the call uses the identical single-root gradient (with a graph in graph mode).
        out = call_attribute(self.method, noisy if self.is_tuple else noisy[0], call_kwargs, graph)
        if self.deltas is not None:
            out, delta = out
            self.deltas.append(delta)
        outs = out if isinstance(out, tuple) else (out,)
        if not all(isinstance(o, Tensor) for o in outs):
            raise TypeError(
                "`attribution_method` must return a tensor or a tuple of tensors, got "
                f"{type(out).__name__} (for a list of layers, wrap one layer at a time)"
            )
        self.returned_tuple = isinstance(out, tuple)
        return outs

    def _expand(self, n: int) -> dict[str, Any]:
        out = dict(self.kwargs)
        batch = self.inputs[0].shape[0]
        if "target" in out and not isinstance(out["target"], str):
            out["target"] = expand_target(out["target"], n, batch)
        if "additional_forward_args" in out:
            out["additional_forward_args"] = expand_additional_forward_args(
                out["additional_forward_args"], n
            )
        if "baselines" in out:
            out["baselines"] = expand_baselines(
                out["baselines"],
                self.inputs,
                n,
                draw_from_distribution=self.draw,
                generator=self.generator,
            )
        if "feature_mask" in out:
            out["feature_mask"] = expand_feature_mask(out["feature_mask"], n)
        return out

    def _noisy_argmax(self, noisy: tuple[Tensor, ...], kwargs: dict[str, Any]) -> Tensor:
        args = kwargs.get("additional_forward_args")
        args = () if args is None else args
        logits = self.method.forward_func(*noisy, *args)
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            raise ValueError("target='noisy_argmax' needs a forward_func returning (N, classes)")
        return logits.argmax(dim=1)
