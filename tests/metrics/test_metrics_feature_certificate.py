"""%certified vs radius and the certified grid pointing game, against brute-force counts."""

import pytest
import torch

from captum_certified.certify import FeatureCertificate
from captum_certified.metrics import (
    certified_fraction,
    certified_grid_pointing_game,
    make_grid_images,
)
from captum_certified.noise import GaussianNoise


def _cert(bsz=3, d=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    lower = torch.rand(bsz, d, generator=g, dtype=torch.float64)
    upper = (lower + 0.2 * torch.rand(bsz, d, generator=g, dtype=torch.float64)).clamp(max=1)
    return FeatureCertificate(
        lower,
        upper,
        noise=GaussianNoise(),
        norm="l2",
        scale=torch.full((bsz,), 0.25),
        n=100,
        alpha=0.001,
        bound="clopper_pearson",
    )


def test_certified_fraction_matches_brute_force():
    cert = _cert()
    radius, side = cert.feature_radius(), cert.decision()
    grid = torch.tensor([0.0, 0.05, 0.1, 0.2, 0.5])
    curve = certified_fraction(cert, grid)
    imp = certified_fraction(cert, grid, side="important")
    assert curve.shape == (3, 5)
    for b in range(3):
        for i, r in enumerate(grid.tolist()):
            n_any = sum(1 for j in range(64) if side[b, j] != 0 and radius[b, j] > r)
            n_imp = sum(1 for j in range(64) if side[b, j] > 0 and radius[b, j] > r)
            assert curve[b, i].item() == n_any / 64
            assert imp[b, i].item() == n_imp / 64
    torch.testing.assert_close(certified_fraction(cert, 0.1), curve[:, 2])
    torch.testing.assert_close(certified_fraction(cert, 0.1), cert.fraction_certified(0.1))
    assert (curve[:, :-1] >= curve[:, 1:]).all() and (curve[:, 0] > 0).all()
    with pytest.raises(TypeError, match="certified_map"):
        certified_fraction(object(), 0.1)
    with pytest.raises(ValueError, match="side"):
        certified_fraction(cert, 0.1, side="all")
    with pytest.raises(ValueError, match="radii"):
        certified_fraction(cert, -1.0)


def test_grid_pointing_game_matches_brute_force():
    cert = _cert(bsz=4, d=2 * 8 * 8, seed=1)
    cells = torch.tensor([0, 1, 2, 3])
    for radius in (0.0, 0.1):
        score = certified_grid_pointing_game(cert, cells, (2, 8, 8), radius=radius)
        tri = cert.certified_map(radius).reshape(4, 2, 8, 8)
        for b in range(4):
            imp = [
                (c, y, x)
                for c in range(2)
                for y in range(8)
                for x in range(8)
                if tri[b, c, y, x] > 0
            ]
            row, col = divmod(int(cells[b]), 2)
            hits = [p for p in imp if p[1] // 4 == row and p[2] // 4 == col]
            expected = len(hits) / len(imp) if imp else 0.0
            assert score[b].item() == pytest.approx(expected, abs=1e-15)
    # nothing certified important: the score is 0, never a guess
    none = FeatureCertificate(
        torch.zeros(1, 16, dtype=torch.float64),
        torch.full((1, 16), 0.4, dtype=torch.float64),
        noise=GaussianNoise(),
        norm="l2",
        scale=torch.ones(1),
        n=10,
        alpha=0.1,
        bound="cp",
    )
    assert certified_grid_pointing_game(none, 0, (4, 4)).item() == 0.0
    with pytest.raises(ValueError, match="map_shape"):
        certified_grid_pointing_game(cert, cells, (8, 8))
    with pytest.raises(ValueError, match="map_shape"):
        certified_grid_pointing_game(cert, cells, (2, 4, 16), grid=(3, 2))
    with pytest.raises(ValueError, match="target_cell"):
        certified_grid_pointing_game(cert, 4, (2, 8, 8))


def test_make_grid_images_tiles_distinct_classes():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(30) % 6
    images = labels.view(-1, 1, 1, 1).float().expand(30, 1, 3, 2) + 0.0
    grids, cells = make_grid_images(images, labels, num_grids=20, generator=g)
    assert grids.shape == (20, 1, 6, 4) and cells.shape == (20, 4)
    for m in range(20):
        assert len(set(cells[m].tolist())) == 4
        for i in range(4):
            r, c = divmod(i, 2)
            block = grids[m, 0, 3 * r : 3 * r + 3, 2 * c : 2 * c + 2]
            assert (block == cells[m, i]).all()
    with pytest.raises(ValueError, match="classes"):
        make_grid_images(images[:3], labels[:3], 1)
