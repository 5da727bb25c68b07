"""Uniform smoothing (Uniform Gradient, Wang et al. 2020) with a certified cosine bound."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from captum.attr import Attribution, Saliency
from torch import Tensor

from captum_certified._utils.ball_scales import check_ball_scales
from captum_certified._utils.validation import check_bool, check_positive
from captum_certified.attr._core.certified_wrapper import CertifiedWrapper
from captum_certified.attr._core.noise_scale import parse_scales
from captum_certified.attr._core.preset_defaults import with_defaults
from captum_certified.noise import NoiseDistribution, UniformBallNoise, UniformCubeNoise
from captum_certified.transforms import L2NormClip, UnitL2Normalize


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

    - ``noise=UniformCubeNoise()`` (the default): ``u ~ U[-r, r]^d`` i.i.d. per feature, the
      **Uniform Gradient** (UG) of Wang et al., "Smoothed Geometry for Robust Attribution"
      (NeurIPS 2020):
      ``UG(x) = (1/N) sum_t grad_x z_y(x + u_t)`` with the paper's ``r = 4/255`` on [0, 1]
      pixels and ``N = 50``. Noise is drawn as
      ``u = (2 * torch.rand(shape, generator=generator) - 1) * r``
      (:class:`~captum_certified.noise.UniformCubeNoise`).
    - ``noise=UniformBallNoise()``: ``u`` uniform on the l2 ball of radius ``r`` in ``R^d``
      (``d`` all features of an example, tuple inputs together;
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

    :meth:`attribute` is :meth:`CertifiedWrapper.attribute` with ``nt_samples=50``,
    ``nt_samples_batch_size=64`` and ``noise_scale=4/255``: ``r``, the cube half-width or the
    ball radius, in input units (``stdevs``, a Gaussian standard deviation, is refused). For
    the cube it may be per example, channel or feature (a tensor) or per input (a tuple); the
    ball needs one value per example shared by all features and inputs.
    ``relative_noise_scale=True`` multiplies ``r`` by each example's value range ``max(x) -
    min(x)`` (the paper's PyTorch notebook uses ``0.2 * (max - min)``): per input tensor for
    the cube, over all inputs of the example for the ball; refused with
    ``return_certificate=True`` (pass an absolute ``noise_scale``, e.g. 0.2 times the
    dataset's range). The certificate is a
    :class:`~captum_certified.certify.CosineCertificate` (l2) for the ball and a
    :class:`~captum_certified.certify.CubeCosineCertificate` (l_inf, vacuous at small radii)
    for the cube; ``alpha`` is the failure probability of its Monte-Carlo bound on
    ``||hbar(x)||``. A ``transform`` argument replaces the per-sample map (a certificate needs
    one declaring ``norm_bound``); ``abs`` defaults to False for the default Saliency base.

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

        >>> from captum_certified.noise import UniformBallNoise
        >>> usa = UniformSmoothedAttribution(model)
        >>> ug = usa.attribute(x, target=y, nt_samples=50, noise_scale=4/255)  # cube noise
        >>> attr, cert = usa.attribute(x, target=y, nt_samples=2048, noise_scale=2.0,
        ...                            noise=UniformBallNoise(), return_certificate=True,
        ...                            alpha=0.05)
        >>> cert.cosine_lower_bound(radius=0.05)     # (bsz,)
        tensor([0.778, 0.786, 0.785, 0.780], dtype=torch.float64)
        >>> cert.certified_radius(min_cosine=0.9)    # (bsz,)
        tensor([0.034, 0.034, 0.034, 0.034], dtype=torch.float64)
        >>> cert.min_smoothing_radius(radius=0.05, min_cosine=0.9)
        tensor([2.910, 2.865, 2.866, 2.901], dtype=torch.float64)
    """

    noise_types = (UniformCubeNoise, UniformBallNoise)

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
        default_method = attribution_method is None
        if attribution_method is None:
            forward = _SoftmaxOutput(forward_func) if softmax else forward_func
            attribution_method = Saliency(forward)
        clip = None if norm_bound is None else L2NormClip(norm_bound)
        super().__init__(attribution_method, noise=UniformCubeNoise(), transform=clip)
        self.certified_transform = UnitL2Normalize() if clip is None else clip
        if default_method:
            self.method_defaults = {"abs": False}  # signed gradients

    def noise_scales(
        self,
        value: Any,
        inputs: tuple[Tensor, ...],
        *,
        noise: NoiseDistribution,
        relative: bool,
        name: str,
    ) -> tuple[Tensor, ...]:
        """Cube: positive scales of any broadcastable shape; ball: one radius per example."""
        if isinstance(noise, UniformBallNoise):
            return _ball_scale(value, inputs, relative, name)
        return parse_scales(value, inputs, relative=relative, name=name)

    nt_types = ("smoothgrad",)  # a preset returns (and certifies) the mean map only
    attribute = with_defaults(
        CertifiedWrapper.attribute,
        nt_samples=50,
        nt_samples_batch_size=64,
        stdevs=None,
        noise_scale=4 / 255,
    )


def _ball_scale(
    scale: Any, inputs: tuple[Tensor, ...], relative: bool, name: str
) -> tuple[Tensor, ...]:
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
                f"relative `{name}` needs inputs with a non-constant range per example"
            )
        per_example = per_example * span
    return tuple(per_example.to(x.dtype).reshape((batch,) + (1,) * (x.dim() - 1)) for x in inputs)
