"""Uniform smoothing (Uniform Gradient, Wang et al. 2020) with a certified cosine bound."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import torch
from captum.attr import Attribution, Saliency
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.ball_scales import check_ball_scales
from captum_certified._utils.validation import (
    check_bool,
    check_positive,
    format_float_inputs,
    warn_deprecated,
)
from captum_certified.attr._core.certification_conditions import refuse_input_dependent_scale
from captum_certified.attr._core.certified_wrapper import CertifiedWrapper
from captum_certified.attr._core.noise_scale import parse_scales
from captum_certified.certify import CosineCertificate
from captum_certified.noise import UniformBallNoise, UniformCubeNoise
from captum_certified.transforms import (
    AttributionTransform,
    Identity,
    L2NormClip,
    UnitL2Normalize,
)

NOISE_NAMES = ("cube", "l2_ball")


class _SoftmaxOutput:
    """``softmax(forward_func(*args), dim=-1)``: differentiate class probabilities, not logits."""

    def __init__(self, forward_func: Callable[..., Tensor]) -> None:
        self.forward_func = forward_func

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        return torch.softmax(self.forward_func(*args, **kwargs), dim=-1)

    def __repr__(self) -> str:
        return f"softmax({self.forward_func!r})"


class UniformSmoothedAttribution(CertifiedWrapper):
    r"""Uniform smoothing of attributions: Uniform Gradient and a certified cosine bound.

    Each noisy copy ``x + u`` is attributed by the base method (default: the signed gradient of
    the target logit, ``Saliency`` with ``abs=False``) and the maps are averaged.

    - ``noise="cube"``: ``u ~ U[-r, r]^d`` i.i.d. per feature, the **Uniform Gradient** (UG) of
      Wang et al., "Smoothed Geometry for Robust Attribution" (NeurIPS 2020):
      ``UG(x) = (1/N) sum_t grad_x z_y(x + u_t)`` with the paper's ``r = 4/255`` on [0, 1]
      pixels and ``N = 50``. Noise is drawn as
      ``u = (2 * torch.rand(shape, generator=generator) - 1) * r``
      (:class:`~captum_certified.noise.UniformCubeNoise`).
    - ``noise="l2_ball"``: ``u`` uniform on the l2 ball of radius ``r`` in ``R^d`` (``d`` all
      features of an example, tuple inputs together;
      :class:`~captum_certified.noise.UniformBallNoise`). With ``return_certificate=True`` each
      sample's map is scaled to unit l2 norm (or clipped to ``norm_bound``) and a
      :class:`~captum_certified.certify.CosineCertificate` is returned: with probability at
      least ``1 - alpha``, ``cos(hbar(x), hbar(x + delta)) >= cert.cosine_lower_bound(t)``
      for all ``||delta||_2 <= t``, where ``hbar`` is the expected smoothed (normalized) map.

    **Uniform Gradient at the paper's radius is an empirical defence, not a certified one.**
    With cube noise and ``return_certificate=True`` the l_inf
    :class:`~captum_certified.certify.CubeCosineCertificate` is returned, and it is vacuous
    there: at ``d = 3072`` (CIFAR-10), ``r = 4/255`` and ``||delta||_inf <= 1/255`` the
    difference bound ``2M (1 - (1 - eps/(2r))^d) = 2M (1 - (7/8)^3072)`` equals ``2M`` and
    the certified cosine is 0. The l2 ball needs ``r >> t sqrt(d)``: at ``d = 3072`` and
    ``r = 1``, ``Delta(t = 0.01) = 0.437 M``.

    Args:
        forward_func (Callable): The model (or any function returning per-class scores).
        attribution_method (Attribution, optional): Base attribution applied to each noisy
                    copy; any Captum attribution. Default: ``Saliency(forward_func)``, called
                    with ``abs=False`` (signed gradients)
        norm_bound (float, optional): ``M``. None: certified calls scale each sample's map to
                    unit l2 norm (``M = 1``) and plain calls average raw maps (Uniform
                    Gradient). A float: every call clips each sample's map to l2 norm ``M``
                    (:class:`~captum_certified.transforms.L2NormClip`). Default: None
        softmax (bool, optional): Differentiate softmax probabilities instead of logits (the
                    ``BallWrapper`` of the paper's Keras evaluation code); only with the
                    default base method. Default: False

    Examples::

        >>> usa = UniformSmoothedAttribution(model)
        >>> ug = usa.attribute(x, target=y, nt_samples=50, noise_scale=4/255, noise="cube")
        >>> attr, cert = usa.attribute(x, target=y, nt_samples=2048, noise_scale=2.0,
        ...                            noise="l2_ball", return_certificate=True, alpha=0.05)
        >>> cert.cosine_lower_bound(radius=0.05)     # (bsz,)
        tensor([0.778, 0.786, 0.785, 0.780], dtype=torch.float64)
        >>> cert.certified_radius(min_cosine=0.9)    # (bsz,)
        tensor([0.034, 0.034, 0.034, 0.034], dtype=torch.float64)
    """

    def __init__(
        self,
        forward_func: Callable[..., Tensor],
        attribution_method: Attribution | None = None,
        norm_bound: float | None = None,
        *,
        softmax: bool = False,
    ) -> None:
        check_bool(softmax, "softmax")
        if norm_bound is not None:
            norm_bound = check_positive(norm_bound, "norm_bound")
        if attribution_method is not None and softmax:
            raise ValueError(
                "`softmax=True` wraps the forward function of the default Saliency base; with "
                "a custom `attribution_method`, build it on a softmax-wrapped forward function"
            )
        self.norm_bound = norm_bound
        self.softmax = softmax
        self._default_method = attribution_method is None
        if attribution_method is None:
            forward = _SoftmaxOutput(forward_func) if softmax else forward_func
            attribution_method = Saliency(forward)
        super().__init__(attribution_method, noise="cube")

    def _transform_for(self, return_certificate: bool) -> AttributionTransform:
        if self.norm_bound is not None:
            return L2NormClip(self.norm_bound)
        return UnitL2Normalize() if return_certificate else Identity()

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        *args: Any,
        return_certificate: Literal[True],
        **kwargs: Any,
    ) -> tuple[Any, CosineCertificate]: ...

    @overload
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        *args: Any,
        return_certificate: Literal[False] = False,
        **kwargs: Any,
    ) -> Any: ...

    @log_usage()
    def attribute(  # type: ignore[override, misc]
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: Any = None,
        nt_samples: int = 50,
        nt_samples_batch_size: int | None = 64,
        noise_scale: float | Tensor | tuple[float | Tensor, ...] | None = None,
        noise: str | UniformCubeNoise | UniformBallNoise = "cube",
        relative_noise_scale: bool = False,
        additional_forward_args: Any = None,
        *,
        generator: torch.Generator | None = None,
        return_certificate: bool = False,
        alpha: float = 0.05,
        **kwargs: Any,
    ) -> Any:
        r"""Uniformly smoothed attributions (and optionally a cosine certificate).

        Args:
            inputs (Tensor or tuple[Tensor, ...]): Input batch; tuple in, tuple out. For
                        tuple inputs the ball noise, the normalization and the certificate
                        run over all features of all tensors together.
            target (int, tuple, Tensor, list or str, optional): Captum target (the paper
                        uses the true label), or ``"noisy_argmax"``. Default: None
            nt_samples (int, optional): Noise samples ``n`` per example. Default: 50
            nt_samples_batch_size (int, optional): Samples evaluated together (bounds peak
                        memory). Default: 64
            noise_scale (float, Tensor or tuple, optional): ``r``, the cube half-width or the
                        ball radius, in input units (or a fraction of the range, see
                        ``relative_noise_scale``). For the cube it may be per example, channel
                        or feature (a tensor) or per input (a tuple), as ``noise_scale`` in
                        :class:`~captum_certified.attr.CertifiedWrapper`; the ball needs one
                        value per example shared by all features and inputs. None: 4/255.
                        (Renamed from ``radius``, which still works for one release with a
                        ``DeprecationWarning``; the certificates' queries keep ``radius`` for
                        the perturbation size.) Default: None
            noise (str, optional): ``"cube"`` (Uniform Gradient) or ``"l2_ball"`` (or an
                        instance of :class:`~captum_certified.noise.UniformCubeNoise` /
                        :class:`~captum_certified.noise.UniformBallNoise`). Default: "cube"
            relative_noise_scale (bool, optional): Multiply ``noise_scale`` by each example's
                        value range ``max(x) - min(x)`` (the paper's PyTorch notebook uses
                        ``0.2 * (max - min)``). For the cube the range is per input tensor (the
                        engine's ``relative_noise_scale``); for the ball it is taken over all
                        inputs of the example together. Refused with
                        ``return_certificate=True``: the scale would depend on the input, so
                        pass an absolute ``noise_scale`` (e.g. 0.2 times the dataset's range,
                        computed once). (Renamed from ``relative_radius``, deprecated.)
                        Default: False
            additional_forward_args (Any, optional): Extra forward arguments. Default: None
            generator (torch.Generator, optional): Source of all randomness; None uses the
                        global torch RNG. Default: None
            return_certificate (bool, optional): Also return a certificate: a
                        :class:`~captum_certified.certify.CosineCertificate` (l2) for
                        ``"l2_ball"``, a :class:`~captum_certified.certify.CubeCosineCertificate`
                        (l_inf, vacuous at small radii) for ``"cube"``. Each sample's map is
                        then normalized to unit l2 norm (or clipped to ``norm_bound``).
                        Default: False
            alpha (float, optional): Failure probability of the Monte-Carlo bound on
                        ``||hbar(x)||``. Default: 0.05
            **kwargs: Passed to the base attribution method (``abs`` defaults to False for
                        the default Saliency base), or ``transform`` to override the
                        per-sample map (a certificate needs one declaring ``norm_bound``).

        Returns:
            **attributions** (same shape and tuple-ness as ``inputs``), and **certificate**
            if ``return_certificate=True``.

        Examples::

            >>> attr, cert = usa.attribute(x, target=y, nt_samples=2048, noise_scale=2.0,
            ...                            noise="l2_ball", return_certificate=True)
            >>> cert.min_smoothing_radius(radius=0.05, min_cosine=0.9)
            tensor([2.909, 2.864, 2.866, 2.902], dtype=torch.float64)
        """
        if "stdevs" in kwargs:  # NoiseTunnel's name; uniform noise has a native scale instead
            raise TypeError(
                "UniformSmoothedAttribution takes `noise_scale` (the cube's half-width or the "
                "ball's radius), not `stdevs` (a Gaussian standard deviation)"
            )
        # errors name the argument the user passed (the deprecated spellings included)
        name = "radius" if "radius" in kwargs else "noise_scale"
        relative_name = "relative_radius" if "relative_radius" in kwargs else "relative_noise_scale"
        noise_scale = _renamed(kwargs, "radius", "noise_scale", noise_scale, None)
        relative = _renamed(
            kwargs, "relative_radius", "relative_noise_scale", relative_noise_scale, False
        )
        scale: Any = 4 / 255 if noise_scale is None else noise_scale
        noise_dist = _resolve_uniform_noise(noise)
        check_bool(relative, relative_name)
        if return_certificate:
            refuse_input_dependent_scale(relative, relative_name)
        inputs_t, _ = format_float_inputs(inputs)
        if isinstance(noise_dist, UniformBallNoise):
            scale = _ball_scale(scale, inputs_t, relative, name, relative_name)
            relative = False
        else:  # validate here so errors name the argument the user passed (maybe `radius`)
            parse_scales(scale, inputs_t, relative=relative, name=name)
        if self._default_method:
            kwargs.setdefault("abs", False)
        transform = kwargs.pop("transform", None)
        if transform is None:
            transform = self._transform_for(bool(return_certificate))
        return self._run_preset(
            inputs,
            target,
            additional_forward_args,
            kwargs,
            nt_samples=nt_samples,
            nt_samples_batch_size=nt_samples_batch_size,
            noise_scale=scale,
            noise=noise_dist,
            transform=transform,
            relative_noise_scale=relative,
            generator=generator,
            return_certificate=return_certificate,
            alpha=alpha,
        )


def _renamed(kwargs: dict[str, Any], old: str, new: str, value: Any, default: Any) -> Any:
    """Take a deprecated argument name from ``kwargs`` (warning), or the new one's value."""
    if old not in kwargs:
        return value
    if value is not default:
        raise TypeError(f"pass `{new}` or its deprecated name `{old}`, not both")
    warn_deprecated(
        f"UniformSmoothedAttribution's `{old}` is deprecated, pass `{new}` (`radius` is the "
        "certificates' perturbation size, `noise_scale` the noise's native scale)"
    )
    return kwargs.pop(old)


def _resolve_uniform_noise(noise: Any) -> UniformCubeNoise | UniformBallNoise:
    if isinstance(noise, (UniformCubeNoise, UniformBallNoise)):
        return noise
    if isinstance(noise, str) and noise.lower() in NOISE_NAMES:
        return UniformCubeNoise() if noise.lower() == "cube" else UniformBallNoise()
    raise ValueError(f"`noise` must be one of {NOISE_NAMES}, got {noise!r}")


def _ball_scale(
    scale: Any, inputs: tuple[Tensor, ...], relative: bool, name: str, relative_name: str
) -> Tensor | tuple[Tensor, ...]:
    """One radius per example shared by all inputs, as per-input broadcastable tensors."""
    scales = parse_scales(scale, inputs, relative=False, name=name)
    batch = inputs[0].shape[0]
    shapes = [tuple(x.shape) for x in inputs]
    per_example = check_ball_scales(shapes, scales, name=name)
    per_example = per_example.to(torch.float64).expand(batch).clone()
    if relative:
        flat = torch.cat([x.detach().reshape(batch, -1).to(torch.float64) for x in inputs], 1)
        span = flat.max(dim=1).values - flat.min(dim=1).values
        if (span <= 0).any():
            raise ValueError(
                f"relative `{relative_name.removeprefix('relative_')}` needs inputs with a "
                "non-constant range per example"
            )
        per_example = per_example * span
    out = tuple(per_example.to(x.dtype).reshape((batch,) + (1,) * (x.dim() - 1)) for x in inputs)
    return out if len(out) > 1 else out[0]
