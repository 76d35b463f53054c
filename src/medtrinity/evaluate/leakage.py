"""`medtrinity eval leakage DIR --against PATH…`: near-duplicate images between a build and benchmark test
images, and inside the build across splits and across sources.

Every image is hashed twice (`image_hashes`): as stored, and its central 95 % (2.5 % cut from each side), so a
copy cropped by up to 5 % still matches one of the two. Two images are a pair when, for one of the four
combinations of their hashes, pHash and dHash both differ in at most `max_distance` of 64 bits (default 8).
The pHashes go into a multi-index hash table (`hash_index`), so each image is compared with a few candidates,
never with every other image. Pairs reported:
- benchmark: a build record and a benchmark test image (a folder of images, another build's test split, or
  RECIPE:PATH whose items of split "test" are read as a build would read them);
- split: two build records of different splits (train/val/test as `export` names them);
- source: two build records of the same split from different sources (one scan shipped by two collections).
The report (`leakage.json`, `leakage.md`, `exclude.txt`) lists each pair with both sides' provenance and the
distances, counts per source and split, and the ids to leave out of training — from each pair the build record
on the less held-out side (the training copy; of two copies in one split, the one later in the build) — which
`medtrinity export --exclude` reads (either file). Patients that a recipe's paths name and that appear in two
splits are listed by salted hash (`patients`).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medtrinity.errors import StageError, UserError
from medtrinity.evaluate.hash_index import HashIndex
from medtrinity.evaluate.image_hashes import ImageHash, distance, hash_pixels
from medtrinity.evaluate.patients import PatientKeys
from medtrinity.export.selection import split_of

DEFAULT_MAX_DISTANCE = 8
CROP_FRACTION = 0.05  # of each side together: the second hash is of the central 95 %
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".dcm", ".webp"}
_HELD_OUT = {"train": 0, "val": 1, "test": 2}


@dataclass
class Image:
    """One hashed image: a build record or a benchmark image."""

    id: str  # record id, or the benchmark image's path
    source: str
    split: str
    file: str | None
    hashes: tuple[ImageHash, ImageHash]
    benchmark: str | None = None  # the --against it came from


@dataclass
class Pair:
    kind: str  # benchmark | split | source
    a: Image
    b: Image
    phash_distance: int
    dhash_distance: int

    def as_dict(self) -> dict[str, Any]:
        def side(image: Image) -> dict[str, Any]:
            out = {"id": image.id, "source": image.source, "split": image.split, "file": image.file}
            return out | ({"benchmark": image.benchmark} if image.benchmark else {})

        return {
            "kind": self.kind,
            "a": side(self.a),
            "b": side(self.b),
            "phash_distance": self.phash_distance,
            "dhash_distance": self.dhash_distance,
        }


def image_hashes(pixels: np.ndarray) -> tuple[ImageHash, ImageHash]:
    height, width = pixels.shape[:2]
    dy, dx = round(height * CROP_FRACTION / 2), round(width * CROP_FRACTION / 2)
    inner = pixels[dy : height - dy, dx : width - dx] if height - 2 * dy >= 8 and width - 2 * dx >= 8 else pixels
    return hash_pixels(pixels), hash_pixels(np.ascontiguousarray(inner))


def pair_distance(a: tuple[ImageHash, ImageHash], b: tuple[ImageHash, ImageHash]) -> tuple[int, int]:
    """(pHash, dHash) distances of the closest of the four combinations (closest by the larger of the two)."""
    return min(((distance(x.phash, y.phash), distance(x.dhash, y.dhash)) for x in a for y in b), key=max)


# ---------------------------------------------------------------- reading images
def build_images(folder: str | Path, only_test: bool = False, benchmark: str | None = None) -> list[Image]:
    from medtrinity.export.build_reader import Build
    from medtrinity.image_codec import decode_image_bytes

    build = Build(folder)
    images = []
    for batch in build.batches(["id", "source", "split", "image", "origin"]):
        for row in batch:
            split = split_of(row["split"])
            if only_test and split != "test":
                continue
            pixels = decode_image_bytes(row["image"]["bytes"])
            images.append(
                Image(
                    row["id"], row["source"], split, (row["origin"] or {}).get("file"), image_hashes(pixels), benchmark
                )
            )
    return images


def folder_images(folder: Path, name: str) -> tuple[list[Image], int]:
    from medtrinity.sources.imaging import read_image

    images, unreadable = [], 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            pixels = read_image(path).pixels
        except (StageError, OSError, ValueError):
            unreadable += 1
            continue
        relative = str(path.relative_to(folder))
        images.append(Image(f"{name}/{relative}", name, "test", relative, image_hashes(pixels), name))
    return images, unreadable


def recipe_images(spec: str) -> tuple[list[Image], int]:
    """The test-split items of RECIPE:PATH, read as a build reads them."""
    from medtrinity.pipeline.config import SourceSpec
    from medtrinity.pipeline.stages import ReadStage
    from medtrinity.sources.base import load_recipe, open_source

    source = SourceSpec.parse(spec)
    recipe = load_recipe(source.recipe)
    layout = open_source(recipe, source.path)
    read, images, unreadable = ReadStage(), [], 0
    for item in layout.items():
        if split_of(item.split) != "test":
            continue
        try:
            pixels = read(item).pixels
        except (StageError, OSError, ValueError):
            unreadable += 1
            continue
        images.append(Image(f"{recipe.name}:{item.file}", recipe.name, "test", item.file, image_hashes(pixels), spec))
    return images, unreadable


def benchmark_images(spec: str) -> tuple[list[Image], int]:
    path = Path(spec)
    if path.is_dir() and (path / "manifest.json").is_file() and (path / "data").is_dir():
        images = build_images(path, only_test=True, benchmark=spec)
        return (images or build_images(path, benchmark=spec)), 0  # a build without a test split: all of it
    if path.is_dir():
        return folder_images(path, path.name or spec)
    if ":" in spec:
        return recipe_images(spec)
    raise UserError(f"--against {spec}: not a folder, a build or RECIPE:PATH")


# ---------------------------------------------------------------- finding pairs
class _Index:
    """The pHashes of both hash variants of each image in one multi-index table; candidates checked on the
    pair rule (both hashes within the distance, for one of the four combinations)."""

    def __init__(self, images: list[Image], max_distance: int) -> None:
        self.images, self.max_distance = images, max_distance
        self.owner = np.repeat(np.arange(len(images)), 2)
        self.table = HashIndex(_phashes(images), max_distance)

    def pairs(self, queries: list[Image]) -> list[tuple[int, int, int, int]]:
        """(query position, indexed position, pHash distance, dHash distance) of every pair, in order."""
        q, i, _ = self.table.query(_phashes(queries))
        candidates = sorted(set(zip((q // 2).tolist(), self.owner[i].tolist())))
        out = []
        for a, b in candidates:
            dp, dd = pair_distance(queries[a].hashes, self.images[b].hashes)
            if dp <= self.max_distance and dd <= self.max_distance:
                out.append((a, b, dp, dd))
        return out


def _phashes(images: list[Image]) -> np.ndarray:
    return np.array([h.phash for image in images for h in image.hashes], dtype=np.uint64)


def pairs_within(images: list[Image], max_distance: int) -> list[Pair]:
    pairs = []
    for i, j, dp, dd in _Index(images, max_distance).pairs(images):
        image, other = images[i], images[j]
        if j <= i or (other.split == image.split and other.source == image.source):
            continue
        pairs.append(Pair("split" if other.split != image.split else "source", image, other, dp, dd))
    return pairs


def pairs_against(build: list[Image], benchmark: list[Image], max_distance: int) -> list[Pair]:
    if not build or not benchmark:
        return []
    return [
        Pair("benchmark", build[j], benchmark[i], dp, dd)
        for i, j, dp, dd in _Index(build, max_distance).pairs(benchmark)
    ]


def training_side(pair: Pair) -> Image:
    """The build record of a pair that should not be trained on."""
    if pair.kind == "benchmark":
        return pair.a
    a, b = _HELD_OUT.get(pair.a.split, 0), _HELD_OUT.get(pair.b.split, 0)
    if a == b:  # two training copies: the one later in the build goes
        return pair.b
    return pair.a if a < b else pair.b


# ---------------------------------------------------------------- the report
@dataclass
class LeakageReport:
    build: str
    max_distance: int
    images: int
    benchmarks: dict[str, int]  # --against -> test images hashed
    unreadable: dict[str, int]
    pairs: list[Pair]
    patients: list[dict[str, Any]] = field(default_factory=list)
    out: Path | None = None

    @property
    def ids(self) -> list[str]:
        return sorted({training_side(p).id for p in self.pairs})

    def counts(self) -> dict[str, dict[str, int]]:
        """kind -> "source/split" of the build records in its pairs -> records."""
        seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for pair in self.pairs:
            for image in (pair.a, pair.b):
                if image.benchmark is None:
                    seen[pair.kind].add((image.id, f"{image.source}/{image.split}"))
        return {
            kind: dict(sorted(Counter(where for _, where in members).items())) for kind, members in sorted(seen.items())
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "build": self.build,
            "max_distance": self.max_distance,
            "images": self.images,
            "benchmarks": self.benchmarks,
            "unreadable": self.unreadable,
            "pairs": [p.as_dict() for p in self.pairs],
            "counts": self.counts(),
            "patients": self.patients,
            "ids": self.ids,
        }

    def lines(self) -> list[str]:
        kinds = Counter(p.kind for p in self.pairs)
        lines = [
            f"leakage of {self.build}: {self.images} images hashed, pairs within {self.max_distance} bits",
            (
                f"  benchmark pairs: {kinds['benchmark']}  split pairs: {kinds['split']}  "
                f"cross-source pairs: {kinds['source']}"
            ),
        ]
        for spec, n in self.benchmarks.items():
            skipped = self.unreadable.get(spec, 0)
            lines.append(f"  against {spec}: {n} test images" + (f" ({skipped} unreadable)" if skipped else ""))
        if self.patients:
            lines.append(f"  patients in more than one split: {len(self.patients)}")
        lines.append(f"  {len(self.ids)} record ids to leave out of training")
        if self.out:
            lines.append(f"  report: {self.out}/leakage.md; `medtrinity export … --exclude {self.out}/exclude.txt`")
        return lines

    def markdown(self) -> str:
        rows = [
            "# Leakage report",
            "",
            *[f"- {line.strip()}" for line in self.lines()[1:]],
            "",
            "| kind | build record | source/split | other | source/split | pHash | dHash |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in self.pairs:
            other = p.b.benchmark and f"{p.b.file} ({p.b.benchmark})" or p.b.id
            rows.append(
                f"| {p.kind} | {p.a.id} | {p.a.source}/{p.a.split} | {other} | {p.b.source}/{p.b.split} "
                f"| {p.phash_distance} | {p.dhash_distance} |"
            )
        for kind, counts in self.counts().items():
            rows += ["", f"## Records in {kind} pairs", "", *[f"- {where}: {n}" for where, n in counts.items()]]
        if self.patients:
            rows += ["", "## Patients in more than one split (salted hash)", ""]
            rows += [
                f"- {p['patient']}: {', '.join(f'{s} {n}' for s, n in p['splits'].items())}" for p in self.patients
            ]
        return "\n".join(rows) + "\n"

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "leakage.json").write_text(json.dumps(self.as_dict(), indent=1), encoding="utf-8")
        (folder / "leakage.md").write_text(self.markdown(), encoding="utf-8")
        header = f"# record ids of {self.build} found in leaking pairs (medtrinity eval leakage)\n"
        (folder / "exclude.txt").write_text(header + "".join(f"{i}\n" for i in self.ids), encoding="utf-8")
        self.out = folder


def patients_across_splits(folder: str | Path) -> list[dict[str, Any]]:
    from medtrinity.export.build_reader import Build

    keys = PatientKeys()
    splits: dict[str, Counter] = defaultdict(Counter)
    records: dict[str, list[str]] = defaultdict(list)
    for batch in Build(folder).batches(["id", "source", "split", "origin"]):
        for row in batch:
            key = keys.key(row["source"], (row["origin"] or {}).get("file"))
            if key is not None:
                splits[key][split_of(row["split"])] += 1
                records[key].append(row["id"])
    return [
        {"patient": key, "splits": dict(sorted(counts.items())), "records": sorted(records[key])}
        for key, counts in sorted(splits.items())
        if len(counts) > 1
    ]


def run_leakage(
    folder: str | Path,
    against: list[str],
    max_distance: int = DEFAULT_MAX_DISTANCE,
    out: str | Path | None = None,
    show_progress: bool = False,
) -> LeakageReport:
    folder = Path(folder)
    benchmarks = {}
    for spec in against:  # every --against is read before anything is written: a wrong path fails first
        benchmarks[spec] = benchmark_images(spec)
    images = build_images(folder)
    pairs = pairs_within(images, max_distance)
    for spec, (bench, _) in benchmarks.items():
        pairs += pairs_against(images, bench, max_distance)
    report = LeakageReport(
        str(folder),
        max_distance,
        len(images),
        {s: len(b) for s, (b, _) in benchmarks.items()},
        {s: n for s, (_, n) in benchmarks.items() if n},
        pairs,
        patients_across_splits(folder),
    )
    report.write(Path(out) if out else folder / "eval" / "leakage")
    return report
