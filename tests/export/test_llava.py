"""`export llava`: the JSON LLaVA's loader reads, on a real build of generated data."""

from __future__ import annotations

import json

from fixtures.exporting import export, files_of

from medtrinity.export.boxes import box_text
from medtrinity.export.phrasebank import BANK
from medtrinity.export.selection import split_of


def _entries(folder) -> dict[str, list[dict]]:
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(folder.glob("*.json"))
        if p.name != "export.json"
    }


def test_every_conversation_opens_with_one_image_token_whose_file_holds_the_stored_bytes(
    mini_build, mini_rows, tmp_path
):
    summary = export("llava", mini_build, tmp_path / "llava", include_test=True)
    by_id = {row["id"]: row for row in mini_rows}
    splits = _entries(tmp_path / "llava")
    assert set(splits) == {split_of(row["split"]) for row in mini_rows} == {"train", "val", "test"}
    kinds_seen = set()
    for split, entries in splits.items():
        for entry in entries:
            record_id, kind = entry["id"].rsplit("-", 1)
            kinds_seen.add(kind)
            row = by_id[record_id]
            assert split_of(row["split"]) == split
            turns = entry["conversations"]
            assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2) and turns
            assert turns[0]["value"].startswith("<image>\n")
            assert sum(t["value"].count("<image>") for t in turns) == 1
            image = tmp_path / "llava" / entry["image"]
            assert image.read_bytes() == row["image"]["bytes"]  # the stored bytes, not re-encoded
            if kind == "caption":
                assert turns[0]["value"].removeprefix("<image>\n") in BANK["caption"]
                assert turns[1]["value"] == row["description"]
    assert kinds_seen == {"caption", "qa", "grounded"}
    assert sum(summary.written.values()) == len(mini_rows)


def test_test_split_records_are_left_out_unless_asked(mini_build, mini_rows, tmp_path):
    summary = export("llava", mini_build, tmp_path / "llava", kind="qa")
    tests = {row["id"] for row in mini_rows if split_of(row["split"]) == "test"}
    assert tests and summary.catalog.left_out["test"] == len(tests)
    assert not (tmp_path / "llava" / "test.json").exists()
    written = {entry["id"] for entries in _entries(tmp_path / "llava").values() for entry in entries}
    assert written == {row["id"] for row in mini_rows} - tests  # one kind: the entry id is the record id
    assert not any(p.stem in tests for p in (tmp_path / "llava" / "images").iterdir())


def test_box_formats():
    assert box_text([10, 20, 30, 40], 100, 200, "norm") == "[0.100, 0.100, 0.300, 0.200]"
    assert box_text([10, 20, 30, 40], 100, 200, "qwen") == "<|box_start|>(100,100),(300,200)<|box_end|>"
    assert box_text([10, 20, 30, 40], 100, 200, "pixels") == "[10, 20, 30, 40]"
    assert box_text([0, 0, 7, 3], 7, 3, "qwen") == "<|box_start|>(0,0),(1000,1000)<|box_end|>"


def test_grounded_turns_give_each_annotated_roi_box_in_the_chosen_format(mini_build, mini_rows, tmp_path):
    row = next(r for r in mini_rows if r["source"] == "kvasir-seg" and len(r["rois"]) == 2)
    for box_format in ("norm", "qwen", "pixels"):
        export("llava", mini_build, tmp_path / box_format, kind="grounded", box_format=box_format)
        entry = next(e for e in _entries(tmp_path / box_format)["train"] if e["id"] == row["id"])
        boxes = [box_text(roi["bbox"], row["width"], row["height"], box_format) for roi in row["rois"]]
        answers = [t["value"] for t in entry["conversations"][1::2]]
        joiner = "" if box_format == "qwen" else ", "
        label = "<|object_ref_start|>polyp<|object_ref_end|>" if box_format == "qwen" else "polyp: "
        assert answers[0] == label + joiner.join(boxes)
        questions = [t["value"] for t in entry["conversations"][0::2]]
        assert all(box in question for box, question in zip(boxes, questions[1:], strict=True))
        assert answers[1:] == ["polyp", "polyp"]


def test_expert_rois_are_grounded_only_when_asked(mini_build, mini_rows, tmp_path):
    expert_only = {
        r["id"]
        for r in mini_rows
        if r["rois"] and all(roi["source"] != "annotation" for roi in r["rois"]) and split_of(r["split"]) != "test"
    }
    export("llava", mini_build, tmp_path / "default", kind="grounded")
    export("llava", mini_build, tmp_path / "expert", kind="grounded", include_expert=True)
    default = {e["id"] for e in _entries(tmp_path / "default")["train"]}
    expert = {e["id"] for e in _entries(tmp_path / "expert")["train"]}
    assert expert_only and not (default & expert_only) and (expert & expert_only)


def test_two_runs_are_byte_identical(mini_build, tmp_path):
    export("llava", mini_build, tmp_path / "one", include_test=True)
    export("llava", mini_build, tmp_path / "two", include_test=True)
    assert files_of(tmp_path / "one") == files_of(tmp_path / "two")
