"""tissue on synthetic H&E-like tissue on glass and on scikit-image's real IHC image."""

import numpy as np
import skimage.data

from medtrinity.roi.experts import get_expert


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def synthetic_he(seed=0):
    """A pink eosin blob on white glass; purple nuclei densely packed in its left part, sparse elsewhere."""
    rng = np.random.default_rng(seed)
    shape = (256, 256)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    tissue = (rows - 128) ** 2 / 95**2 + (cols - 128) ** 2 / 110**2 <= 1
    dense = tissue & (cols < 110)
    image = np.empty(shape + (3,))
    image[:] = (244, 244, 246)
    image[tissue] = (232, 160, 200)
    centres = [(r, c) for r in range(4, 256, 9) for c in range(4, 256, 9) if dense[r, c]]
    centres += [(r, c) for r in range(10, 256, 30) for c in range(10, 256, 30) if tissue[r, c] and not dense[r, c]]
    for r, c in centres:
        r, c = r + rng.integers(-2, 3), c + rng.integers(-2, 3)
        image[(rows - r) ** 2 + (cols - c) ** 2 <= 9] = (95, 55, 150)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), tissue, dense


def test_synthetic_tissue_and_nuclei_dense_region_match_the_known_masks():
    image, tissue, dense = synthetic_he()
    regions = {r.label: r for r in get_expert("tissue").locate(image, "Histopathology", "colon", [])}
    assert sorted(regions) == ["nuclei-dense region", "tissue"]
    assert dice(regions["tissue"].mask, tissue) >= 0.9
    assert dice(regions["nuclei-dense region"].mask, dense) >= 0.8
    assert regions["tissue"].score > 0.5


def test_a_tile_wholly_covered_by_tissue_is_all_tissue():
    image, tissue, _ = synthetic_he()
    tile = image[60:190, 60:190]  # inside the blob: no glass in view
    regions = {r.label: r for r in get_expert("tissue").locate(tile, "Histopathology", None, [])}
    assert regions["tissue"].mask.all()


def test_blank_glass_has_no_tissue():
    rng = np.random.default_rng(0)
    glass = np.clip(245 + rng.normal(0, 3, (128, 128, 3)), 0, 255).astype(np.uint8)
    assert get_expert("tissue").locate(glass, "Microscopy", None, []) == []


def test_real_ihc_tissue_is_stained_tissue_not_background():
    image = skimage.data.immunohistochemistry()  # 512 x 512 RGB, bundled with scikit-image
    regions = {r.label: r for r in get_expert("tissue").locate(image, "Histopathology", None, [])}
    tissue = regions["tissue"].mask
    gray = image.mean(axis=2)
    assert 0.4 <= tissue.mean() <= 0.95
    assert gray[tissue].mean() < gray[~tissue].mean() - 40
    # by inspection: the white gap at the left edge (x 0-35, y 300-450) is glass, the brown gland at
    # x 270-370, y 320-480 is tissue
    assert tissue[300:450, 0:35].mean() < 0.2
    assert tissue[340:460, 280:360].mean() > 0.9
