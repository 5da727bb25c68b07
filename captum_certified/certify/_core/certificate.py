"""Certificate base class: the statistics a certificate came from, and how it was bounded."""

from __future__ import annotations

import torch
from torch import Tensor


class Certificate:
    r"""Common fields of every certificate.

    A certificate is a pure function of Monte-Carlo statistics. It records what it was
    computed from so that a reader can audit it.

    Attributes:
        noise (str): Name of the smoothing distribution.
        norm (str): Perturbation norm the certificate speaks about (e.g. ``"l2"``).
        scale (Tensor): Noise scale per example, shape ``(bsz,)`` (float64); for tuple inputs
                    or per-feature scales, the smallest one (the bound is driven by it).
        n (int): Number of noise samples per example.
        alpha (float): Failure probability: every statement holds simultaneously for all
                    queries on an example with probability at least ``1 - alpha`` over the
                    sampling.
        bound (str): Confidence-band method.
        num_features (int): Number of features ``d`` of the map.
    """

    def __init__(
        self,
        *,
        noise: str,
        norm: str,
        scale: Tensor,
        n: int,
        alpha: float,
        bound: str,
        num_features: int,
        num_input_features: int | None = None,
    ) -> None:
        self.noise = noise
        self.norm = norm
        self.scale = scale.detach().to(torch.float64)
        self.n = n
        self.alpha = alpha
        self.bound = bound
        self.num_features = num_features
        self._num_input_features: int | None = None
        self.num_input_features = num_input_features

    @property
    def num_input_features(self) -> int | None:
        """Number of input features the noise perturbed (all input tensors of an example
        together); None if unknown. It can be set once and never changed."""
        return self._num_input_features

    @num_input_features.setter
    def num_input_features(self, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"`num_input_features` must be a positive int, got {value!r}")
        known = getattr(self, "_num_input_features", None)
        if known is not None and value != known:
            # a fact about the noise, not a tuning knob: a smaller count would certify a
            # larger radius than is true
            raise ValueError(
                f"`num_input_features` is already {known} (the number of perturbed input "
                f"features); it cannot be changed to {value!r}"
            )
        self._num_input_features = value

    @property
    def batch_size(self) -> int:
        return int(self.scale.shape[0])

    def __len__(self) -> int:
        return self.batch_size

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(batch_size={self.batch_size}, "
            f"num_features={self.num_features}, "
            f"noise={self.noise!r}, norm={self.norm!r}, n={self.n}, alpha={self.alpha}, "
            f"bound={self.bound!r})"
        )
