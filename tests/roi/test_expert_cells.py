"""cells (and tissue on Microscopy) on synthetic cells in medium and on scikit-image's real cell image."""

import numpy as np
import pytest
import skimage.data

from medtrinity.roi.experts import get_expert


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def disc(shape, centre_xy, radius) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (cols - centre_xy[0]) ** 2 + (rows - centre_xy[1]) ** 2 <= radius**2


def synthetic_cells(bright: bool, seed=0):
    """Three cells on a flat gray medium, each ringed by a halo of the opposite polarity."""
    rng = np.random.default_rng(seed)
    shape = (240, 300)
    image = np.full(shape, 0.35)
    truth = np.zeros(shape, dtype=bool)
    for centre, radius in (((70, 60), 26), ((200, 90), 20), ((150, 180), 32)):
        cell = disc(shape, centre, radius)
        image[disc(shape, centre, radius + 8) & ~cell] = 0.18 if bright else 0.55  # the halo
        image[cell] = 0.75 if bright else 0.1
        truth |= cell
    image += rng.normal(0, 0.02, shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), truth


@pytest.mark.parametrize("bright", [True, False])
def test_synthetic_cells_without_their_halo(bright):
    image, truth = synthetic_cells(bright)
    regions = get_expert("cells").locate(image, "Microscopy", None, [])
    assert [r.label for r in regions] == ["cell", "cell", "cell"]
    assert [int(r.mask.sum()) for r in regions] == sorted((int(r.mask.sum()) for r in regions), reverse=True)
    found = np.logical_or.reduce([r.mask for r in regions])
    assert dice(found, truth) >= 0.9
    assert all(r.score > 0.5 for r in regions)
    assert regions[0].source == "expert:cells@1.0"


def test_textured_or_stained_backgrounds_are_not_flat_backgrounds():
    rng = np.random.default_rng(0)
    texture = (rng.random((128, 128)) * 255).astype(np.uint8)
    assert get_expert("cells").locate(texture, "Microscopy", None, []) == []
    pink = np.empty((128, 128, 3))
    pink[:] = (232, 160, 200)
    pink[disc((128, 128), (64, 64), 20)] = (95, 55, 150)
    assert get_expert("cells").locate(pink.astype(np.uint8), "Microscopy", None, []) == []


# skimage.data.cell(): 660 x 550 gray, one cell in saline on a flat gray background. By inspection the
# cell is the bright disc centred near x 429, y 374, about 64 px in radius, ringed by a dark halo.
CELL_CENTRE_XY, CELL_RADIUS = (429, 374), 64


def test_real_cell_is_the_cell_not_the_frame():
    image = skimage.data.cell()
    (region,) = get_expert("cells").locate(image, "Microscopy", None, [])
    truth = disc(image.shape, CELL_CENTRE_XY, CELL_RADIUS)
    assert region.label == "cell"
    assert dice(region.mask, truth) >= 0.85
    assert image[region.mask].mean() > image[~region.mask].mean() + 80  # the bright cell, not its dark halo


def test_tissue_on_real_cell_reports_the_cell_for_microscopy_and_never_the_whole_frame():
    image = skimage.data.cell()
    truth = disc(image.shape, CELL_CENTRE_XY, CELL_RADIUS)
    (cell,) = get_expert("tissue").locate(image, "Microscopy", None, [])
    assert cell.label == "cell" and dice(cell.mask, truth) >= 0.85
    assert cell.source == "expert:tissue@1.1"
    regions = get_expert("tissue").locate(image, "Histopathology", None, [])
    assert [r.label for r in regions] == ["tissue"]  # a gray image: no stain, no nuclei-dense region
    assert regions[0].mask.mean() < 0.1
