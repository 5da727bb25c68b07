"""Resolving the ``explainer`` argument of the attacks into a differentiable attribution."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from numbers import Real
from typing import Any

import torch
from captum.attr import InputXGradient, Saliency
from torch import Tensor

from captum_certified._utils.model_calls import format_args, format_target
from captum_certified._utils.validation import (
    check_count_spec,
    check_int,
    check_positive,
    format_inputs,
)
from captum_certified.attr._core import graph_attribution as gradients
from captum_certified.attr._core.noise_scale import parse_scales
from captum_certified.attr._core.smoothed_guide import smoothed_map, smoothed_map_loss_gradient

Tensors = tuple[Tensor, ...]

EXPLAINERS = (
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "smoothgrad",
    "sparse_smoothgrad",
)

_OPTIONS: dict[str, dict[str, Any]] = {
    "saliency": {"abs": True},
    "input_x_gradient": {},
    "integrated_gradients": {"baselines": None, "n_steps": 50, "method": "gausslegendre"},
    "smoothgrad": {
        "n_guide": 64,
        "stdevs": 0.25,
        "noise": "fixed",
        "n_eval": None,
        "nt_samples_batch_size": 128,
    },
    "sparse_smoothgrad": {
        "n_guide": 64,
        "stdevs": 0.25,
        "noise": "fixed",
        "n_eval": None,
        "sparsity": 0.1,
        "nt_samples_batch_size": 128,
    },
}
NOISE_MODES = ("fixed", "per_step")


def _draw_seed(generator: torch.Generator | None) -> int:
    device = generator.device if generator is not None else torch.device("cpu")
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=device).item())


class ExplainerRun:
    """Noise of one attack run (one ``perturb`` call) of a smoothed explainer.

    The noise is not stored (that would take memory proportional to ``n_guide``): each map is
    recomputed chunk by chunk from a generator reseeded with the run's seed, so ``"fixed"``
    noise replays the same numbers at every step (and the evaluation noise is the guide noise
    when ``n_eval == n_guide``).
    """

    def __init__(
        self,
        explainer: DifferentiableExplainer,
        inputs: Tensors,
        generator: torch.Generator | None,
    ) -> None:
        self.explainer = explainer
        self.generator = generator
        self.device = generator.device if generator is not None else torch.device("cpu")
        self.eval_seed: int | None = None
        self.guide_seed: int | None = None
        if explainer.smoothed:
            opts = explainer.options
            parse_scales(opts["stdevs"], inputs)  # checked once, before the first step
            n_eval = opts["n_eval"] or opts["n_guide"]
            self.eval_seed = _draw_seed(generator)
            if opts["noise"] == "fixed":
                same = n_eval == opts["n_guide"]
                self.guide_seed = self.eval_seed if same else _draw_seed(generator)

    def _seeded(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    def eval_generator(self) -> torch.Generator | None:
        return None if self.eval_seed is None else self._seeded(self.eval_seed)

    def guide_generator(self) -> torch.Generator | None:
        if not self.explainer.smoothed:
            return None
        if self.explainer.options["noise"] == "per_step":
            return self._seeded(_draw_seed(self.generator))
        assert self.guide_seed is not None
        return self._seeded(self.guide_seed)


class DifferentiableExplainer:
    r"""An attribution method usable inside an attack (see :data:`EXPLAINERS`).

    ``graph(...)`` returns attributions that keep the graph to the input (for the attack
    direction); ``evaluate(...)`` returns detached attributions (to select iterates and to
    report). They differ only for ``"sparse_smoothgrad"``: the
    graph is the mean of ``|g| / sum |g|`` over the guide noise (Levine et al.'s guide), the
    evaluation is the mean of the binary top-tau maps (the Sparsified SmoothGrad estimate).

    Args:
        explainer (str or Callable): A name in :data:`EXPLAINERS` or a callable
                    ``(model, inputs, target) -> attributions`` that builds its result with
                    ``create_graph=True``; ``inputs`` has the attacked input's tuple-ness and
                    ``target`` is a ``(bsz,)`` int64 tensor. If it accepts an
                    ``additional_forward_args`` keyword, that is passed too.
        options (dict, optional): Options of the named explainer (see the attacks' docs).
    """

    def __init__(self, explainer: str | Callable[..., Any], options: dict | None = None) -> None:
        options = dict(options or {})
        if isinstance(explainer, str):
            if explainer not in EXPLAINERS:
                raise ValueError(f"`explainer` must be one of {EXPLAINERS}, got {explainer!r}")
            defaults = _OPTIONS[explainer]
            unknown = sorted(set(options) - set(defaults))
            if unknown:
                raise TypeError(
                    f"`explainer_kwargs` has unknown option(s) {unknown} for explainer "
                    f"{explainer!r}; valid: {sorted(defaults)}"
                )
            self.options = {**defaults, **options}
            self.name = explainer
            self.fn: Callable[..., Any] | None = None
            self._check_options()
        elif callable(explainer):
            if options:
                raise TypeError("`explainer_kwargs` is only used with a named explainer")
            self.options = {}
            self.name = getattr(explainer, "__name__", type(explainer).__name__)
            self.fn = explainer
            try:
                params = inspect.signature(explainer).parameters
                self._takes_args = "additional_forward_args" in params or any(
                    p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
                )
            except (TypeError, ValueError):
                self._takes_args = False
        else:
            raise TypeError(
                f"`explainer` must be a name in {EXPLAINERS} or a callable, got "
                f"{type(explainer).__name__}"
            )
        self.smoothed = self.name in ("smoothgrad", "sparse_smoothgrad") and self.fn is None

    def _check_options(self) -> None:
        o = self.options
        if self.name == "integrated_gradients":
            gradients.check_ig_options(o["method"], o["n_steps"])
        if self.name == "saliency" and not isinstance(o["abs"], bool):
            raise TypeError(f"`abs` must be a bool, got {type(o['abs']).__name__}")
        if self.smoothed_name:
            for key in ("n_guide", "n_eval", "nt_samples_batch_size"):
                if o[key] is not None or key == "n_guide":
                    check_int(o[key], key, 1)
            if o["noise"] not in NOISE_MODES:
                raise ValueError(f"`noise` must be one of {NOISE_MODES}, got {o['noise']!r}")
            if isinstance(o["stdevs"], Real):  # tensors and tuples are checked per run
                check_positive(o["stdevs"], "stdevs")
            if self.name == "sparse_smoothgrad" and o["sparsity"] is not None:
                o["sparsity"] = check_count_spec(o["sparsity"], "sparsity")

    @property
    def smoothed_name(self) -> bool:
        return self.name in ("smoothgrad", "sparse_smoothgrad")

    def start(self, inputs: Tensors, generator: torch.Generator | None) -> ExplainerRun:
        """Draw the noise of one attack run (nothing for unsmoothed explainers)."""
        return ExplainerRun(self, inputs, generator)

    def _call(
        self,
        model: Callable[..., Tensor],
        inputs: Tensors,
        target: Tensor | None,
        args: tuple,
        is_tuple: bool,
        generator: torch.Generator | None,
        create_graph: bool,
        evaluate: bool,
    ) -> Tensors:
        if self.fn is not None:
            kwargs = {"additional_forward_args": args} if args and self._takes_args else {}
            if args and not self._takes_args:
                raise TypeError(
                    "`additional_forward_args` given, but the explainer callable has no "
                    "`additional_forward_args` parameter"
                )
            with torch.enable_grad():
                points = (
                    inputs if create_graph else tuple(x.detach().requires_grad_() for x in inputs)
                )
                out = self.fn(model, points if is_tuple else points[0], target, **kwargs)
            outs = out if isinstance(out, tuple) else (out,)
            if not all(isinstance(o, Tensor) for o in outs):
                raise TypeError("the explainer callable must return a Tensor or a tuple of them")
            return outs
        o = self.options
        if self.name == "saliency":
            return gradients.attribute_with_graph(
                Saliency, model, inputs, target, args, create_graph=create_graph, abs=o["abs"]
            )
        if self.name == "input_x_gradient":
            return gradients.attribute_with_graph(
                InputXGradient, model, inputs, target, args, create_graph=create_graph
            )
        if self.name == "integrated_gradients":
            return gradients.integrated_gradients(
                model,
                inputs,
                target,
                args,
                create_graph=create_graph,
                baselines=o["baselines"],
                n_steps=o["n_steps"],
                method=o["method"],
            )
        return smoothed_map(
            model,
            inputs,
            target,
            args,
            self._sample_map(evaluate),
            n=(o["n_eval"] or o["n_guide"]) if evaluate else o["n_guide"],
            chunk=o["nt_samples_batch_size"],
            stdevs=o["stdevs"],
            generator=generator,
            create_graph=create_graph,
            sparsity=o["sparsity"] if self.name == "sparse_smoothgrad" else 0.1,
        )

    def _sample_map(self, evaluate: bool) -> str:
        if self.name == "smoothgrad":
            return "abs_grad"
        if evaluate and self.options["sparsity"] is not None:
            return "binary_topk"
        return "normalized_abs_grad"

    def graph(
        self,
        model: Callable[..., Tensor],
        inputs: Tensors,
        target: Tensor | None,
        args: tuple,
        is_tuple: bool,
        run: ExplainerRun,
    ) -> Tensors:
        """Attributions with the graph to ``inputs`` (``create_graph=True``)."""
        return self._call(model, inputs, target, args, is_tuple, run.guide_generator(), True, False)

    def loss_gradient(
        self,
        model: Callable[..., Tensor],
        inputs: Tensors,
        target: Tensor | None,
        args: tuple,
        is_tuple: bool,
        run: ExplainerRun,
        loss_fn: Callable[[Tensors], Tensor],
    ) -> tuple[Tensor, Tensors]:
        """``loss_fn(graph map)`` and its gradient w.r.t. ``inputs`` (leaves requiring grad).

        Smoothed explainers differentiate chunk by chunk (memory bounded by
        ``nt_samples_batch_size``, not by ``n_guide``); the others through one graph.
        """
        if self.smoothed:
            o = self.options
            return smoothed_map_loss_gradient(
                model,
                inputs,
                target,
                args,
                self._sample_map(False),
                loss_fn,
                n=o["n_guide"],
                chunk=o["nt_samples_batch_size"],
                stdevs=o["stdevs"],
                generator=run.guide_generator(),
            )
        with torch.enable_grad():
            loss = loss_fn(self.graph(model, inputs, target, args, is_tuple, run))
            grads = torch.autograd.grad(loss.sum(), inputs, allow_unused=True)
        return loss.detach(), tuple(
            torch.zeros_like(t) if g is None else g.detach() for g, t in zip(grads, inputs)
        )

    def evaluate(
        self,
        model: Callable[..., Tensor],
        inputs: Tensors,
        target: Tensor | None,
        args: tuple,
        is_tuple: bool,
        run: ExplainerRun | None,
    ) -> Tensors:
        """Detached attributions (on the evaluation noise of ``run`` if smoothed)."""
        gen = run.eval_generator() if run is not None else None
        out = self._call(
            model, tuple(x.detach() for x in inputs), target, args, is_tuple, gen, False, True
        )
        return tuple(t.detach() for t in out)

    def __repr__(self) -> str:
        return f"DifferentiableExplainer({self.name!r}, {self.options})"


def differentiable_attribution(
    model: Callable[..., Tensor],
    inputs: Tensor | tuple[Tensor, ...],
    target: Any = None,
    explainer: str | Callable[..., Any] = "saliency",
    additional_forward_args: Any = None,
    *,
    create_graph: bool = True,
    generator: torch.Generator | None = None,
    **explainer_kwargs: Any,
) -> Tensor | tuple[Tensor, ...]:
    r"""An attribution map that can be differentiated with respect to the input.

    Runs Captum's own ``Saliency`` (``|grad|``), ``InputXGradient`` (``x * grad``) and
    ``IntegratedGradients`` (Captum's quadrature, ``multiply_by_inputs=True``) with their
    gradient function replaced by one that keeps the graph
    (``torch.autograd.grad(..., create_graph=True)``), so the values are Captum's and the
    result has a graph to ``inputs`` (and to the model's parameters). Captum's methods as
    shipped cannot be differentiated (Captum issue #361). The smoothed explainers average a
    per-sample map over ``n_guide`` Gaussian noise draws from ``generator``:

    - ``"smoothgrad"``: mean of ``|grad|`` (what ``NoiseTunnel(Saliency)`` computes, from the
      same noise);
    - ``"sparse_smoothgrad"``: mean of ``|grad| / sum(|grad|)`` (sum over all features of the
      example), the smooth "guide" of Levine et al.'s attacks. The binary top-tau map of
      :class:`~captum_certified.attr.SparseSmoothGrad` has no gradient; the attacks use it
      only to *evaluate* iterates.

    A ReLU network has a zero second derivative almost everywhere: differentiate the map of
    :func:`softplus_surrogate` (model) instead.

    Args:
        model (Callable): Returns ``(bsz, classes)`` scores (or ``(bsz,)``).
        inputs (Tensor or tuple[Tensor, ...]): Input batch; tuple in, tuple out. Inputs that
                    require grad keep their graph; others are differentiated as new leaves
                    (the caller's tensors and flags are not modified).
        target (int, list, Tensor, optional): Class per example (Captum's forms for 2-D
                    outputs). None only for single-output models. Default: None
        explainer (str or Callable, optional): ``"saliency"``, ``"input_x_gradient"``,
                    ``"integrated_gradients"``, ``"smoothgrad"``, ``"sparse_smoothgrad"``,
                    or a callable ``(model, inputs, target) -> attributions``.
                    Default: "saliency"
        additional_forward_args (Any, optional): Extra model arguments (batch in dim 0).
                    Default: None
        create_graph (bool, optional): Keep the graph. Default: True
        generator (torch.Generator, optional): Noise source of the smoothed explainers.
                    Default: None (global RNG)
        **explainer_kwargs: ``abs`` (saliency); ``baselines``, ``n_steps``, ``method``
                    (integrated_gradients); ``n_guide``, ``stdevs`` (smoothed).

    Returns:
        **attributions** (*Tensor* or *tuple[Tensor, ...]*): same structure as ``inputs``.

    Examples::

        >>> from captum_certified.robust import softplus_surrogate
        >>> twin = softplus_surrogate(model, beta=10.0)
        >>> x = images.clone().requires_grad_()
        >>> sal = differentiable_attribution(twin, x, target=labels)
        >>> loss = sal.flatten(1)[:, :10].sum()
        >>> (direction,) = torch.autograd.grad(loss, x)
    """
    exp = DifferentiableExplainer(explainer, explainer_kwargs)
    xs, is_tuple = format_inputs(inputs)
    args = format_args(additional_forward_args)
    tgt = format_target(target, xs[0].shape[0], xs[0].device)
    out = exp._call(model, xs, tgt, args, is_tuple, generator, create_graph, False)
    if not create_graph:
        out = tuple(t.detach() for t in out)
    return out if is_tuple else out[0]
