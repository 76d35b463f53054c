"""medtrinity-25m over a miniature of the release's three layouts: rows read, broken ones quarantined with their
reason, counts reconciled, boxes recovered, images cleaned, released captions audited."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures.build import box_iou, build_source
from fixtures.medtrinity_25m import LOWER_RIGHT, TOP_LEFT, make_medtrinity_25m
from PIL import Image

from medtrinity.errors import UserError
from medtrinity.roi.experts.green_box import outline_green
from medtrinity.sources.base import load_recipe, open_source
from medtrinity.sources.packed import TarMember, index_tar_zst

SOURCE = "medtrinity-25m"
WRITTEN = {
    "demo_00001",
    "demo_00002",
    "demo_00003",
    "chexpert_p1.jpg",
    "chexpert_p2.jpg",
    "brats_001.png",
    "NCT_TUM_01.jpg",
    "deeplesion_01.jpg",
    "deeplesion_02.jpg",
    "pmc_fig_07.jpg",
    "chexpert_p3.jpg",
}
QUARANTINED = {
    "demo_00004": "demo_00004: the released bytes are not a readable image",
    "demo_00005": "25M_demo/train-00000-of-00001.parquet row 4: no caption",
    "missing_001.jpg": "missing_001.jpg: no image in any shard of 25M_accessible/ (truncated, and may have held it: "
    "dataset_shard_2.tar.zst)",
    "25M_full/train-00000-of-00002.parquet#row5": "25M_full/train-00000-of-00002.parquet row 5: file_name "
    "chexpert_p1.jpg repeats 25M_full/train-00000-of-00002.parquet row 0",
    "deeplesion_03.jpg": "deeplesion_03.jpg: shard dataset_shard_2.tar.zst is truncated after member 3; its image is in "
    "the missing part",
    "deeplesion_04.jpg": "deeplesion_04.jpg: shard dataset_shard_2.tar.zst is truncated after member 3; its image is in "
    "the missing part",
}
BOXES = {
    "demo_00001": [TOP_LEFT],
    "demo_00002": [TOP_LEFT],
    "demo_00003": [],
    "chexpert_p1.jpg": [TOP_LEFT],
    "chexpert_p2.jpg": [TOP_LEFT],
    "brats_001.png": [TOP_LEFT, LOWER_RIGHT],
    "NCT_TUM_01.jpg": [],
    "deeplesion_01.jpg": [TOP_LEFT],
    "deeplesion_02.jpg": [TOP_LEFT],
    "pmc_fig_07.jpg": [LOWER_RIGHT],
    "chexpert_p3.jpg": [TOP_LEFT],
}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_medtrinity_25m(tmp_path_factory.mktemp("release") / "MedTrinity-25M")


@pytest.fixture(scope="module")
def built(release, tmp_path_factory):
    manifest, rows, quarantine = build_source(
        f"{SOURCE}:{release}", tmp_path_factory.mktemp("out") / "out", on_contradiction="keep"
    )
    return manifest, {r["origin"]["file"]: r for r in rows}, quarantine


def _reference(row: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in row["checks"] if c["name"].startswith("reference:")}


def test_rows_read_broken_ones_quarantined_and_counts_reconciled(built):
    manifest, rows, quarantine = built
    assert manifest["sources"][SOURCE] == {"seen": 17, "written": 11, "quarantined": 6}
    assert set(rows) == WRITTEN
    assert {file: q["reason"] for file, q in quarantine.items()} == QUARANTINED
    assert {q["stage"] for q in quarantine.values()} == {"read"}
    assert manifest["source_details"][SOURCE] == {
        "shards": {
            "dataset_shard_1.tar.zst": {"members": 4, "truncated_after": None, "rows_joined": 3, "rows_lost": 0},
            "dataset_shard_2.tar.zst": {"members": 3, "truncated_after": 3, "rows_joined": 2, "rows_lost": 2},
            "dataset_shard_3.tar.zst": {"members": 4, "truncated_after": None, "rows_joined": 3, "rows_lost": 0},
        },
        "rows_in_no_shard": 1,
    }


def test_metadata_comes_from_the_source_table_then_the_caption(built):
    _, rows, _ = built
    got = {f: (r["modality"], r["organ"], r["disease"]) for f, r in rows.items()}
    assert got["chexpert_p1.jpg"] == ("X-Ray", "chest", None)
    assert got["chexpert_p3.jpg"] == ("X-Ray", "chest", None)  # the source says X-ray, whatever the caption says
    assert got["brats_001.png"] == ("MRI", "brain", "glioma")
    assert got["NCT_TUM_01.jpg"] == ("Histopathology", "colon", "tumor")  # the disease word from the caption
    assert got["deeplesion_01.jpg"] == ("CT", "abdomen", None)  # DeepLesion: CT; the organ from the caption
    assert got["pmc_fig_07.jpg"] == ("CT", "abdomen", None)  # pmc_oa is mixed: all from the caption
    assert got["demo_00003"] == ("X-Ray", "chest", None)  # the demo has no source column
    assert rows["NCT_TUM_01.jpg"]["labels"] == ["tumor"]
    assert {k["label"]: k["kind"] for k in rows["brats_001.png"]["label_kinds"]}["glioma"] == "finding"


def test_reference_text_is_the_released_caption_and_origin_names_the_file(built, release):
    _, rows, _ = built
    table = pq.read_table(release / "25M_full" / "train-00001-of-00002.parquet").to_pylist()
    assert rows["pmc_fig_07.jpg"]["reference_text"] == table[4]["caption"]
    demo = pq.read_table(release / "25M_demo" / "train-00000-of-00001.parquet", columns=["id", "caption"]).to_pylist()
    assert rows["demo_00002"]["reference_text"] == demo[1]["caption"]
    assert all(r["source"] == SOURCE for r in rows.values())
    # the release's own id and source name, kept so that `export medtrinity-25m` gives the rows back
    origin = rows["pmc_fig_07.jpg"]["origin"]
    assert (origin["source_id"], origin["source_dataset"]) == (table[4]["id"], "pmc_oa") == ("1-4", "pmc_oa")
    assert {f: r["origin"]["source_dataset"] for f, r in rows.items() if f.startswith("demo")} == {
        "demo_00001": None,
        "demo_00002": None,
        "demo_00003": None,
    }  # the demo has no source column
    assert rows["demo_00002"]["origin"]["source_id"] == "demo_00002"


def test_boxes_are_recovered_and_the_stored_images_are_clean(built):
    _, rows, _ = built
    for file, truth in BOXES.items():
        row = rows[file]
        rois = row["rois"]
        assert len(rois) == len(truth), file
        for box in truth:
            assert max(box_iou(box, r["bbox"]) for r in rois) >= 0.9, file
        assert all(
            r["source"] == "recovered:green-box@1"
            and r["label"] == "marked region"
            and r["kind"] == "region"
            and r["score"] >= 0.9
            for r in rois
        ), file
        pixels = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])).convert("RGB"))
        assert (pixels.shape[1], pixels.shape[0]) == (row["width"], row["height"])
        assert not outline_green(pixels).any(), file  # no outline pixel is left in the stored image
        assert row["image"]["bytes"][:4] == b"\x89PNG"  # the cleaned pixels, losslessly
    png = rows["brats_001.png"]["rois"]  # a PNG outline has no JPEG bleed: exact
    assert sorted(r["bbox"] for r in png) == sorted([list(TOP_LEFT), list(LOWER_RIGHT)])
    # refilled: each outline band and 2 px on both sides: (46+4)x(34+4) - (46-8)x(34-8) + (46+4)x(36+4) - (46-10)x(36-10)
    assert rows["brats_001.png"]["origin"]["intensity"] == (
        "8-bit RGB as released; 2 green box outlines removed (linear fill of 1976 px, line width 2/3 px)"
    )
    assert rows["NCT_TUM_01.jpg"]["origin"]["intensity"] == "8-bit RGB as released; no green box outline found"


def test_released_captions_are_audited_right_ones_pass_wrong_ones_fail(built):
    _, rows, _ = built
    assert _reference(rows["chexpert_p1.jpg"])["reference:position"] == "pass"  # "upper left": right
    assert _reference(rows["chexpert_p2.jpg"])["reference:position"] == "fail"  # "lower right": wrong
    assert _reference(rows["demo_00001"])["reference:side"] == "pass"  # "left side of the image": right
    assert _reference(rows["demo_00002"])["reference:side"] == "fail"  # "right side of the image": wrong
    assert _reference(rows["brats_001.png"])["reference:position"] == "pass"  # both boxes where it says
    assert _reference(rows["pmc_fig_07.jpg"])["reference:position"] == "pass"
    assert _reference(rows["chexpert_p3.jpg"])["reference:modality"] == "fail"  # "MRI of the knee" on CheXpert
    assert _reference(rows["chexpert_p3.jpg"])["reference:organ"] == "fail"
    detail = next(c["detail"] for c in rows["chexpert_p2.jpg"]["checks"] if c["name"] == "reference:position")
    assert detail == "text says lower right but marked region is at top left (4.9%)"
    # the record's own description is checked as in every build, beside the audit
    assert {c["name"] for c in rows["chexpert_p2.jpg"]["checks"]} >= {"position", "reference:position"}


def test_medtrinity_verify_reads_back_the_same_audit(built, tmp_path_factory):
    from medtrinity.describe.verify_cli import tally

    manifest, rows, _ = built
    verdicts, records = tally(manifest_out(manifest), "reference_text")
    assert records[(SOURCE, "verified")] == 11
    for name in ("position", "side", "modality", "organ", "area", "roi_count"):
        stored = sum(_reference(r).get(f"reference:{name}") == "fail" for r in rows.values())
        assert verdicts[(SOURCE, name, "fail")] == stored, name


def manifest_out(manifest: dict):
    from pathlib import Path

    return Path(manifest["config"]["out"])


def test_each_subset_folder_can_be_given_itself(release, tmp_path):
    recipe = load_recipe(SOURCE)
    demo = [i.file for i in open_source(recipe, release / "25M_demo").items()]
    assert demo == ["demo_00001", "demo_00002", "demo_00003", "demo_00004", "demo_00005"]
    full = [i.file for i in open_source(recipe, release / "25M_full").items()]
    accessible = [i.file for i in open_source(recipe, release / "25M_accessible").items()]
    assert full == accessible and len(full) == 12
    # joined rows in shard member order (each shard streamed forward once), then the rows without an image
    assert full[:8] == [
        "chexpert_p1.jpg",
        "chexpert_p2.jpg",
        "brats_001.png",
        "deeplesion_01.jpg",
        "deeplesion_02.jpg",
        "NCT_TUM_01.jpg",
        "pmc_fig_07.jpg",
        "chexpert_p3.jpg",
    ]
    only_demo = recipe.model_copy(update={"options": {"subsets": ["demo"]}})
    assert len(list(open_source(only_demo, release).items())) == 5


def test_wrong_folders_are_refused_in_one_line(release, tmp_path):
    recipe = load_recipe(SOURCE)
    with pytest.raises(
        UserError,
        match=r"^medtrinity-25m expects 25M_demo/, 25M_full/ or 25M_accessible/ under .*: "
        r"none is there$",
    ):
        open_source(recipe, tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(release / "25M_full", copy / "25M_full")
    with pytest.raises(
        UserError,
        match=r"^25M_full/ holds captions without images: .*25M_accessible/ "
        r"\(dataset_shard_<N>\.tar\.zst\), which is missing beside it$",
    ):
        open_source(recipe, copy)
    shutil.copytree(release / "25M_accessible", copy / "25M_accessible")
    pq.write_table(
        pa.table({"id": ["x"], "file_name": ["a.jpg"], "caption": ["c"]}),
        copy / "25M_full" / "train-00002-of-00003.parquet",
    )
    with pytest.raises(
        UserError,
        match=r"train-00002-of-00003\.parquet has no column 'source': MedTrinity-25M's "
        r"25M_full has id, file_name, caption, source$",
    ):
        open_source(recipe, copy)
    with pytest.raises(UserError, match=r"unknown option 'subset' — did you mean 'subsets'\?"):
        open_source(recipe.model_copy(update={"options": {"subset": ["demo"]}}), release)


def test_the_shard_index_and_reading_members_out_of_order(release):
    shards = release / "25M_accessible"
    complete = index_tar_zst(shards / "dataset_shard_3.tar.zst")
    assert [m[0] for m in complete.members] == [
        "NCT_TUM_01.jpg",
        "pmc_fig_07.jpg",
        "chexpert_p3.jpg",
        "orphan_no_row.jpg",
    ]
    assert not complete.truncated and complete.metadata is None
    cut = index_tar_zst(shards / "dataset_shard_2.tar.zst")
    assert cut.truncated and [m[0] for m in cut.members] == ["metadata.json", "deeplesion_01.jpg", "deeplesion_02.jpg"]
    members = [TarMember("dataset_shard_3.tar.zst", *m) for m in complete.members]
    read = [members[i].read(shards) for i in (2, 0, 3, 1)]  # backwards and forwards: the stream restarts
    assert all(Image.open(io.BytesIO(data)).size == (200, 160) for data in read)
    assert len({bytes(d) for d in read}) == 4


def test_a_shard_cut_at_a_member_boundary_is_truncated(tmp_path):
    import tarfile

    import zstandard

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in ("a.jpg", "b.jpg"):
            info = tarfile.TarInfo(name)
            info.size = 600
            tar.addfile(info, io.BytesIO(bytes(600)))
        boundary = tar.offset  # after b.jpg's padded data, before the end-of-archive blocks
    path = tmp_path / "dataset_shard_9.tar.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(buffer.getvalue()[:boundary]))
    index = index_tar_zst(path)
    assert index.truncated and [m[0] for m in index.members] == ["a.jpg", "b.jpg"]
    path.write_bytes(zstandard.ZstdCompressor().compress(buffer.getvalue()))
    assert not index_tar_zst(path).truncated
