"""`eval leakage`: altered copies of training images in a test split are found, and nothing else is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures.eval_builds import write_build
from fixtures.phantoms import cropped, jpeg, phantom, resized, shifted
from PIL import Image

from medtrinity.cli import main
from medtrinity.evaluate.hash_index import HashIndex
from medtrinity.evaluate.leakage import DEFAULT_MAX_DISTANCE, run_leakage
from medtrinity.evaluate.patients import PatientKeys
from medtrinity.export.selection import read_exclude_file

DISTINCT = 520
ALTERATIONS = {
    "resized": lambda p: resized(p, 0.6),
    "jpeg75": lambda p: jpeg(p, 75),
    "cropped": lambda p: cropped(p, 0.05),
    "shifted": lambda p: shifted(p),
}
LEAKED = range(20)  # training images whose altered copies sit in the test split


@pytest.fixture(scope="module")
def leaky_build(tmp_path_factory) -> tuple[Path, list[str], dict[str, str]]:
    """520 distinct training/validation images; a test split of 20 altered copies of training images and 40
    distinct images of its own; and one training image shipped again by a second source."""
    folder = tmp_path_factory.mktemp("leaky") / "build"
    entries = [("phantoms", "val" if n % 10 == 9 else "train", f"img{n}.png", phantom(n)) for n in range(DISTINCT)]
    copies = {}
    for n in LEAKED:
        kind = list(ALTERATIONS)[n % len(ALTERATIONS)]
        copies[f"test/{kind}{n}.png"] = f"img{n}.png"
        entries.append(("phantoms", "test", f"test/{kind}{n}.png", ALTERATIONS[kind](phantom(n))))
    entries += [("phantoms", "test", f"test/own{n}.png", phantom(n)) for n in range(DISTINCT, DISTINCT + 40)]
    entries.append(("mirror", "train", "copy-of-img100.png", resized(phantom(100), 1.3)))
    ids = write_build(folder, entries)
    return folder, ids, copies


def test_finds_every_altered_copy_and_no_false_pair(leaky_build, tmp_path):
    folder, ids, copies = leaky_build
    report = run_leakage(folder, [], out=tmp_path / "report")
    by_file = {}
    for pair in report.pairs:
        by_file.setdefault(pair.kind, set()).add(tuple(sorted((pair.a.file, pair.b.file))))
    assert by_file["split"] == {tuple(sorted(item)) for item in copies.items()}
    assert by_file["source"] == {("copy-of-img100.png", "img100.png")}
    assert len(report.pairs) == len(LEAKED) + 1
    assert all(max(p.phash_distance, p.dhash_distance) <= DEFAULT_MAX_DISTANCE for p in report.pairs)
    # the ids to exclude: the training copy of each pair, and the second source's copy of img100
    excluded = read_exclude_file(tmp_path / "report" / "exclude.txt")
    assert excluded == {ids[n] for n in LEAKED} | {ids[-1]}
    assert read_exclude_file(tmp_path / "report" / "leakage.json") == excluded
    data = json.loads((tmp_path / "report" / "leakage.json").read_text())
    assert data["counts"]["split"] == {"phantoms/test": 20, "phantoms/train": 18, "phantoms/val": 2}


def test_against_a_folder_of_benchmark_images(leaky_build, tmp_path):
    folder, _, _ = leaky_build
    bench = tmp_path / "bench"
    bench.mkdir()
    Image.fromarray(shifted(cropped(phantom(250)))).save(bench / "q250.png")
    (bench / "q300.jpg").write_bytes(jpeg(resized(phantom(300), 1.5)))
    Image.fromarray(phantom(10_000)).save(bench / "unseen.png")
    (bench / "notes.txt").write_text("not an image")
    assert main(["eval", "leakage", str(folder), "--against", str(bench), "--out", str(tmp_path / "r")]) == 0
    data = json.loads((tmp_path / "r" / "leakage.json").read_text())
    found = {(p["a"]["file"], p["b"]["file"]) for p in data["pairs"] if p["kind"] == "benchmark"}
    assert found == {("img250.png", "q250.png"), ("img300.png", "q300.jpg")}
    assert data["benchmarks"] == {str(bench): 3}


def test_index_finds_exactly_what_brute_force_finds():
    rng = np.random.default_rng(1)
    base = [int(v) for v in rng.integers(0, 2**63, 3000, dtype=np.int64)]
    # hashes near some of the indexed ones, at every distance up to and beyond the radius
    queries = [
        base[i] ^ sum(1 << int(b) for b in rng.choice(64, d, replace=False))
        for i, d in zip(range(0, 3000, 50), list(range(14)) * 5)
    ]
    for radius in (0, 3, 8, 10, 17):
        index = HashIndex(np.array(base, dtype=np.uint64), radius)
        for q in queries:
            brute = [(i, (v ^ q).bit_count()) for i, v in enumerate(base) if (v ^ q).bit_count() <= radius]
            assert index.near(q) == brute
        if radius <= DEFAULT_MAX_DISTANCE:
            assert index.compared < len(queries) * len(base) / 10  # far fewer comparisons than all pairs
        _, ids, _ = index.query(np.array(queries, dtype=np.uint64))  # the batch form finds the same
        assert sum(len(index.near(v)) for v in queries) == len(ids)


def test_patients_are_reported_by_salted_hash():
    keys = PatientKeys(salt=b"s" * 32)
    a = keys.key("mimic-cxr-jpg", "files/p10/p10000032/s50414267/x.jpg")
    assert a == keys.key("mimic-cxr-jpg", "files/p10/p10000032/s53189527/y.jpg") and "10000032" not in a
    assert keys.key("mimic-cxr-jpg", "files/p10/p10000033/s1/x.jpg") != a
    assert PatientKeys().key("mimic-cxr-jpg", "files/p10/p10000032/s1/x.jpg") != a  # another report, another salt
    assert keys.key("busi", "benign/benign (1).png") is None


def test_patient_in_two_splits(tmp_path):
    folder = tmp_path / "b"
    write_build(
        folder,
        [
            ("mimic-cxr-jpg", "train", "files/p10/p10000032/s1/a.jpg", phantom(1)),
            ("mimic-cxr-jpg", "test", "files/p10/p10000032/s2/b.jpg", phantom(2)),
            ("mimic-cxr-jpg", "test", "files/p11/p11000001/s3/c.jpg", phantom(3)),
        ],
    )
    report = run_leakage(folder, [], out=tmp_path / "r")
    assert [p["splits"] for p in report.patients] == [{"test": 1, "train": 1}]
    assert "10000032" not in (tmp_path / "r" / "leakage.json").read_text()
