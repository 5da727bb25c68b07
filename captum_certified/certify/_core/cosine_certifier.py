"""Certifiers of the cosine certificates: check the declared norm bound, build the certificate."""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor

from captum_certified._utils.statistics import StreamingMoments
from captum_certified._utils.validation import (
    check_positive_int,
)
from captum_certified.certify._core.certificate import noise_object
from captum_certified.certify._core.certifier import Certifier
from captum_certified.certify._core.cosine_certificate import (
    CosineCertificate,
    CubeCosineCertificate,
)
from captum_certified.noise import (
    NoiseDistribution,
    UniformBallNoise,
    UniformCubeNoise,
)
from captum_certified.transforms import AttributionTransform

#: Relative tolerance on the declared norm bound when checking sampled maps: a row passes if
#: ``||h||_2 <= M (1 + NORM_TOLERANCE)``. It absorbs float rounding of third-party transforms
#: (the package's own keep ``||h|| <= M`` exactly); to stay sound the certificate then uses
#: ``M (1 + NORM_TOLERANCE)`` in all its bounds.
NORM_TOLERANCE = 1e-6


class CosineCertifier(Certifier):
    r"""Builds a :class:`CosineCertificate` for uniform l2-ball smoothing.

    Accepts only transforms declaring a finite ``norm_bound`` ``M`` (e.g.
    :class:`~captum_certified.transforms.UnitL2Normalize`,
    :class:`~captum_certified.transforms.L2NormClip`) and checks every sampled chunk:
    each row must satisfy ``||h||_2 <= M (1 + NORM_TOLERANCE)``, ``NORM_TOLERANCE = 1e-6``
    (float rounding of third-party transforms; the certificate then uses the slightly larger
    bound). The volume term needs the number ``d`` of *input* features the noise is drawn over
    (not the map's size, which differs for layer attributions): the engine passes it as
    ``num_input_features``. ``input_dim`` can only restate it: a value that disagrees with the
    engine's count is refused, since a smaller ``d`` would certify a larger radius than is true.

    Args:
        input_dim (int, optional): Expected ``d``, checked against the engine's count.
                    Default: None (the engine's ``num_input_features``)
    """

    supported_noises: tuple[type[NoiseDistribution], ...] = (UniformBallNoise,)
    certificate_class: type[CosineCertificate] = CosineCertificate

    def __init__(self, *, input_dim: int | None = None) -> None:
        self.input_dim = None if input_dim is None else check_positive_int(input_dim, "input_dim")

    def check_transform(self, transform: AttributionTransform) -> None:
        """Require a transform with a declared finite l2 norm bound ``norm_bound``."""
        m = getattr(transform, "norm_bound", None)
        if (
            isinstance(m, bool)
            or not isinstance(m, Real)
            or not math.isfinite(float(m))
            or float(m) <= 0
        ):
            raise ValueError(
                "`return_certificate=True` with uniform noise needs a transform that bounds "
                "each map's l2 norm and declares it as `norm_bound` (UnitL2Normalize or "
                f"L2NormClip); {transform!r} declares none"
            )

    def sample_summary(self, maps: Tensor, transform: AttributionTransform) -> Tensor:
        """``(non-finite, largest row l2 norm)`` of a ``(N, d)`` chunk, on its device."""
        if not maps.numel():
            return torch.full((2,), -torch.inf, dtype=torch.float64, device=maps.device)
        norms = maps.detach().to(torch.float64).norm(dim=1)
        bad = (~torch.isfinite(norms)).any().to(torch.float64)
        return torch.stack([bad, torch.nan_to_num(norms, nan=torch.inf).max()])

    def check_summary(self, summary: Tensor, transform: AttributionTransform) -> None:
        """Every row finite and ``||h||_2 <= M (1 + 1e-6)``."""
        m = float(transform.norm_bound)  # type: ignore[attr-defined]  # see check_transform
        bad, worst = (float(v) for v in summary.tolist())
        if bad > 0:
            raise ValueError(f"transform {transform!r} produced NaN or infinite values")
        if worst > m * (1.0 + NORM_TOLERANCE):
            raise ValueError(
                f"transform {transform!r} produced a map of l2 norm {worst:.6g} above its "
                f"declared norm_bound {m}; the cosine certificate needs ||h||_2 <= norm_bound"
            )

    def certify(
        self,
        statistics: StreamingMoments,
        *,
        scale: Tensor,
        noise: NoiseDistribution,
        alpha: float,
        bound: str | None,
        transform: AttributionTransform,
        num_input_features: int,
    ) -> CosineCertificate:
        if bound not in (None, "mcdiarmid"):
            raise ValueError(
                f"`bound` must be None or 'mcdiarmid' for the cosine certificate, got {bound!r}"
            )
        noise = noise_object(noise)
        self.check_noise(noise)
        self.check_transform(transform)
        input_dim = check_positive_int(num_input_features, "num_input_features")
        if self.input_dim is not None and self.input_dim != input_dim:
            raise ValueError(
                f"`input_dim`={self.input_dim} disagrees with the {input_dim} input features the "
                "noise perturbs; the certificate must use the true count (omit `input_dim`)"
            )
        mean = statistics.mean
        return self.certificate_class(
            mean.norm(dim=1),
            scale=scale,
            input_dim=input_dim,
            norm_bound=float(transform.norm_bound),  # type: ignore[attr-defined]
            n=statistics.n,
            alpha=alpha,
            norm_tolerance=NORM_TOLERANCE,
            noise=noise,
            num_features=int(mean.shape[1]),
        )


class CubeCosineCertifier(CosineCertifier):
    r"""Builds a :class:`CubeCosineCertificate` (l_inf) for uniform cube smoothing.

    Same checks as :class:`CosineCertifier`. The certificate is vacuous at the small radii of
    the Uniform Gradient paper; it exists to say so with numbers.
    """

    supported_noises = (UniformCubeNoise,)
    certificate_class = CubeCosineCertificate
