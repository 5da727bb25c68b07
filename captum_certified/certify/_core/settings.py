"""Several settings (sparsities, transforms) accumulated side by side from one sampling pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from captum_certified._utils.statistics import StreamingMoments
from captum_certified.transforms import AttributionTransform


class SettingStatistics:
    r"""Streamed statistics of several per-sample transforms of the same noisy attributions.

    The noisy attributions are computed once per chunk; each transform (a setting: top-tau
    binarization for several tau, a relaxed or a rank-rescaled map, ...) maps them, and its
    statistics are accumulated side by side. Setting ``i`` then yields the same statistics,
    bit for bit, as a pass with that transform alone on the same noise (the transforms are
    deterministic per row). Each setting's certificate is valid at its own ``alpha``; all of
    them hold together with probability at least ``1 - sum(alpha_i)`` (union bound: they share
    the samples, so nothing better is claimed); see :doc:`/certificates`.

    Args:
        transforms (Sequence[AttributionTransform]): One transform per setting.
        second_moment (bool, optional): Keep the centred second moment of every setting (the
                    betting band of non-binary maps needs it). Default: False

    Examples::

        >>> from captum_certified.transforms import TopKBinarize
        >>> stats = SettingStatistics([TopKBinarize(0.1), TopKBinarize(0.3)])
        >>> stats.update((torch.randn(2 * 8, 10),), batch=2, n_chunk=8)
        >>> [s.total.sum().item() for s in stats.statistics]
        [16.0, 48.0]
    """

    def __init__(
        self, transforms: Sequence[AttributionTransform], *, second_moment: bool = False
    ) -> None:
        transforms = list(transforms)
        if not transforms:
            raise ValueError("`transforms` must hold at least one transform")
        for t in transforms:
            if not isinstance(t, AttributionTransform):
                raise TypeError(
                    f"`transforms` must hold AttributionTransform instances, got {type(t).__name__}"
                )
        self.transforms = transforms
        self.statistics = [StreamingMoments(second_moment) for _ in transforms]

    def __len__(self) -> int:
        return len(self.transforms)

    def update(
        self,
        outputs: tuple[Tensor, ...],
        *,
        batch: int,
        n_chunk: int,
        check: Callable[[Tensor, AttributionTransform], None] | None = None,
    ) -> None:
        """Add one chunk: ``outputs`` are the method's per-sample outputs, ``batch * n_chunk``
        rows ordered example-major; ``check(maps, transform)`` sees each transformed chunk."""
        outs = tuple(o.detach() for o in outputs)
        for transform, stats in zip(self.transforms, self.statistics):
            maps = transform.from_outputs(outs)
            if check is not None:
                check(maps, transform)
            stats.update(maps.reshape(batch, n_chunk, -1))
