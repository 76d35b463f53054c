"""The cellpose adapter: its refusals (no download, no partial or Cellpose 3 files) and its label image
reading. Cellpose 4 always builds a full ViT-L (~300M weights): running it on a random network takes
~25 s on 2 cores, so that run is opt-in: MEDTRINITY_SLOW=1."""

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cellpose.models")

from medtrinity.errors import UserError  # noqa: E402
from medtrinity.roi.experts import get_expert  # noqa: E402
from medtrinity.roi.experts.cellpose_model import cell_regions  # noqa: E402


def test_a_model_name_is_refused_rather_than_downloaded():
    with pytest.raises(UserError, match="does not exist"):
        get_expert("cellpose", model="cpsam")


def test_partial_and_cellpose3_files_are_refused(tmp_path):
    partial = tmp_path / "readout_only.pt"
    torch.save({"W2": torch.eye(4), "out.weight": torch.zeros(2, 2)}, partial)
    with pytest.raises(UserError, match="missing encoder.patch_embed.proj.weight"):
        get_expert("cellpose", model=str(partial))
    cp3 = tmp_path / "cyto3"
    torch.save({"downsample.down.res_down_0.conv.conv_0.0.weight": torch.zeros(1)}, cp3)
    with pytest.raises(UserError, match="missing W2"):
        get_expert("cellpose", model=str(cp3))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="not a PyTorch weights file"):
        get_expert("cellpose", model=str(junk))


def test_label_image_becomes_one_region_per_cell_largest_first():
    masks = np.zeros((20, 30), np.int32)
    masks[2:6, 2:6] = 1  # 16 px
    masks[10:18, 10:20] = 2  # 80 px
    probability = np.where(masks == 2, 0.9, 0.6)
    regions = cell_regions(masks, probability, "expert:cellpose@t")
    assert [(r.label, int(r.mask.sum()), r.score) for r in regions] == [("cell", 80, 0.9), ("cell", 16, 0.6)]
    assert regions[0].bbox == (10.0, 10.0, 20.0, 18.0)
    assert cell_regions(np.zeros((5, 5), np.int32), np.zeros((5, 5)), "s") == []


@pytest.mark.skipif(os.environ.get("MEDTRINITY_SLOW") != "1", reason="builds a full ViT-L: set MEDTRINITY_SLOW=1")
def test_random_full_size_network_runs_end_to_end(tmp_path):
    from cellpose.vit import CPSAM

    torch.manual_seed(0)
    path = tmp_path / "random_cpsam"
    torch.save(CPSAM().state_dict(), path)
    image = np.zeros((64, 64), np.uint8)
    image[20:40, 20:40] = 200
    regions = get_expert("cellpose", model=str(path), version="random").locate(image, "Microscopy", None, [])
    for region in regions:
        assert region.source == "expert:cellpose@random" and region.mask.shape == (64, 64)
