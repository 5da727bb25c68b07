"""``NoiseTunnel``: Captum's class interface on the smoothing engine (the drop-in name)."""

from __future__ import annotations

from captum.attr import Attribution, GradientAttribution

from captum_certified.attr._core.certified_wrapper import CertifiedWrapper
from captum_certified.certify import Certifier
from captum_certified.noise import NoiseDistribution
from captum_certified.transforms import AttributionTransform


class NoiseTunnel(CertifiedWrapper):
    r"""Drop-in replacement for :class:`captum.attr.NoiseTunnel` on the certified engine.

    Same constructor, attributes (``attribution_method``, ``is_delta_supported``,
    ``is_gradient_method``, ``multiplies_by_inputs``, ``has_convergence_delta()``) and
    ``attribute(inputs, nt_type, nt_samples, nt_samples_batch_size, stdevs,
    draw_baseline_from_distrib, **kwargs)`` signature as Captum's class; results agree
    with Captum's from the same random numbers (``vargrad`` more accurately, see
    :doc:`/noise_tunnel`). Everything :class:`CertifiedWrapper` adds is available as
    keyword arguments: ``noise``, ``transform`` and ``certifier`` here, and ``generator``,
    ``relative_stdevs``, ``noise_scale`` (the native scale of a non-Gaussian ``noise``, which
    takes it instead of ``stdevs``),
    ``return_certificate``, ``alpha`` and ``bound`` in :meth:`~CertifiedWrapper.attribute`.
    ``stdevs`` may be 0 (no noise, as in Captum) except with ``return_certificate=True``,
    where a certificate needs ``stdevs > 0``.

    Args:
        attribution_method (Attribution): An instance of any attribution algorithm of type
                    ``Attribution``, e.g. ``IntegratedGradients``, ``LayerConductance`` or
                    ``Saliency``. A :class:`captum.attr.NoiseTunnel` (or this class) is
                    unwrapped to the method it wraps.
        noise (NoiseDistribution, optional): Default noise; None:
                    :class:`~captum_certified.noise.GaussianNoise` ``()``. Default: None
        transform (AttributionTransform, optional): Default per-sample map.
                    Default: :class:`~captum_certified.transforms.Identity`
        certifier (Certifier, optional): Certificate builder; None uses the noise's
                    default. Default: None

    Examples::

        >>> # only the import line differs from Captum's NoiseTunnel example
        >>> from captum_certified.attr import IntegratedGradients, NoiseTunnel
        >>> net = ImageClassifier()
        >>> ig = IntegratedGradients(net)
        >>> input = torch.randn(2, 3, 32, 32, requires_grad=True)
        >>> nt = NoiseTunnel(ig)
        >>> attribution = nt.attribute(input, nt_type='smoothgrad',
        ...                            nt_samples=10, target=3)
    """

    is_delta_supported: bool
    is_gradient_method: bool

    def __init__(
        self,
        attribution_method: Attribution,
        *,
        noise: NoiseDistribution | None = None,
        transform: AttributionTransform | None = None,
        certifier: Certifier | None = None,
    ) -> None:
        super().__init__(attribution_method, noise=noise, transform=transform, certifier=certifier)
        # Captum's NoiseTunnel reads these once, at construction
        self.is_delta_supported = self.attribution_method.has_convergence_delta()
        self._multiply_by_inputs = self.attribution_method.multiplies_by_inputs
        self.is_gradient_method = isinstance(self.attribution_method, GradientAttribution)

    @property
    def multiplies_by_inputs(self) -> bool:
        return self._multiply_by_inputs

    def has_convergence_delta(self) -> bool:
        return self.is_delta_supported
