"""Certified grid pointing game: certified-important pixels inside the target's grid cell."""

from __future__ import annotations

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.validation import check_radius
from captum_certified.certify import FeatureCertificate
from captum_certified.metrics._core.certified_fraction import _certified_map


def make_grid_images(
    images: Tensor,
    labels: Tensor,
    num_grids: int,
    grid: tuple[int, int] = (2, 2),
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Tile images of *different* classes into grids (the grid pointing game's inputs).

    Each grid holds ``grid[0] * grid[1]`` images of pairwise different labels, drawn at random
    (with ``generator``), placed row-major.

    Args:
        images (Tensor): ``(N, C, H, W)`` images.
        labels (Tensor): ``(N,)`` integer labels; at least ``grid[0] * grid[1]`` classes.
        num_grids (int): Number of grids ``m``.
        grid (tuple[int, int], optional): Rows and columns. Default: (2, 2)
        generator (torch.Generator, optional): Randomness. Default: None

    Returns:
        tuple[Tensor, Tensor]: ``(grids, cell_labels)``: ``(m, C, rows H, cols W)`` images and
        the ``(m, rows * cols)`` label of each cell.

    Examples::

        >>> grids, cells = make_grid_images(x, y, num_grids=8,
        ...                                generator=torch.Generator().manual_seed(0))
        >>> grids.shape, cells.shape  # 2 x 2 grids of 16 x 16 images
        (torch.Size([8, 3, 32, 32]), torch.Size([8, 4]))
        >>> target_cell = torch.zeros(8, dtype=torch.long)  # attribute the top-left digit
        >>> target = cells[:, 0]
    """
    if images.dim() != 4:
        raise ValueError(f"`images` must be (N, C, H, W), got shape {tuple(images.shape)}")
    if labels.shape != images.shape[:1]:
        raise ValueError("`labels` must have shape (N,) matching `images`")
    rows, cols = grid
    cells = rows * cols
    classes = labels.unique()
    if classes.numel() < cells:
        raise ValueError(f"`labels` has {classes.numel()} classes, a grid needs {cells}")
    if num_grids < 1:
        raise ValueError(f"`num_grids` must be >= 1, got {num_grids}")
    c, h, w = images.shape[1:]
    out = images.new_zeros(num_grids, c, rows * h, cols * w)
    cell_labels = torch.empty(num_grids, cells, dtype=torch.long)
    for g in range(num_grids):
        chosen = classes[torch.randperm(classes.numel(), generator=generator)[:cells]]
        for i, cls in enumerate(chosen):
            pool = (labels == cls).nonzero().flatten()
            j = pool[torch.randint(pool.numel(), (1,), generator=generator)].item()
            r, q = divmod(i, cols)
            out[g, :, r * h : (r + 1) * h, q * w : (q + 1) * w] = images[j]
            cell_labels[g, i] = int(cls)
    return out, cell_labels


@log_usage()
@torch.no_grad()
def certified_grid_pointing_game(
    certificate: FeatureCertificate,
    target_cell: Tensor | int,
    map_shape: tuple[int, ...],
    radius: float | Tensor = 0.0,
    grid: tuple[int, int] = (2, 2),
) -> Tensor:
    r"""Share of certified-important pixels that lie in the target's cell of a grid image.

    Anani et al.'s certified localisation score: of the features certified important at
    ``radius``, the fraction inside the grid cell holding the target class. An example with no
    certified-important feature scores 0 (an abstention is never a hit).

    Args:
        certificate (FeatureCertificate): A per-feature certificate.
        target_cell (Tensor or int): Row-major cell index per example, ``(bsz,)`` or one int.
        map_shape (tuple[int, ...]): Per-example shape of the map, ``(..., H, W)``; its
                    product must be the certificate's ``d``. Cells split the last two dims.
        radius (float or Tensor, optional): l2 radius ``>= 0`` (scalar or ``(bsz,)``).
                    Default: 0.0
        grid (tuple[int, int], optional): Rows and columns. Default: (2, 2)

    Returns:
        Tensor: ``(bsz,)`` float64 scores in [0, 1].

    Examples::

        >>> from captum.attr import Saliency
        >>> from captum_certified.attr import CertifiedWrapper
        >>> from captum_certified.certify import FeatureCertifier
        >>> from captum_certified.transforms import TopKBinarize
        >>> g = torch.Generator().manual_seed(0)
        >>> grids, cells = make_grid_images(x, y, num_grids=2, generator=g)
        >>> cw = CertifiedWrapper(Saliency(model), transform=TopKBinarize(0.1),
        ...                       certifier=FeatureCertifier())
        >>> _, cert = cw.attribute(grids, target=cells[:, 0], nt_samples=100, stdevs=0.25,
        ...                        return_certificate=True, generator=g)
        >>> certified_grid_pointing_game(cert, target_cell=0, map_shape=(3, 32, 32),
        ...                              radius=0.1)
        tensor([0.547, 0.117], dtype=torch.float64)
    """
    check_radius(radius)
    tri = _certified_map(certificate, radius)
    bsz, d = tri.shape
    if len(map_shape) < 2 or int(torch.Size(map_shape).numel()) != d:
        raise ValueError(f"`map_shape` {tuple(map_shape)} does not hold the map's {d} features")
    rows, cols = grid
    h, w = map_shape[-2:]
    if h % rows or w % cols:
        raise ValueError(f"`map_shape` {tuple(map_shape)} does not split into a {grid} grid")
    cell = torch.as_tensor(target_cell, dtype=torch.long).reshape(-1).expand(bsz)
    if ((cell < 0) | (cell >= rows * cols)).any():
        raise ValueError(f"`target_cell` must be in 0..{rows * cols - 1}")
    important = (tri > 0).reshape(bsz, -1, h, w)
    ys = torch.arange(h).div(h // rows, rounding_mode="floor")
    xs = torch.arange(w).div(w // cols, rounding_mode="floor")
    cell_of = (ys.view(-1, 1) * cols + xs.view(1, -1)).to(tri.device)  # (h, w)
    inside = cell_of.unsqueeze(0) == cell.to(tri.device).view(-1, 1, 1)  # (bsz, h, w)
    hits = (important & inside.unsqueeze(1)).flatten(1).sum(-1).to(torch.float64)
    total = important.flatten(1).sum(-1).to(torch.float64)
    return torch.where(total > 0, hits / total.clamp(min=1), torch.zeros_like(total))
