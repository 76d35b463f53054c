"""MedTrinity-25M as released on Hugging Face (UCSC-VLAA/MedTrinity-25M), read as it is.

    PATH/                                  the downloaded dataset folder, or one of its three folders itself
      25M_demo/*.parquet                   columns image ({bytes, path}, HF Image), id, caption
      25M_full/train-*.parquet             columns id, file_name, caption, source (no images)
      25M_accessible/dataset_shard_<N>.tar.zst
                                           zstd tar of image files named by file_name (some also hold a
                                           metadata.json); some shards are truncated, many file_names in none

Every subset found is read (`options.subsets` picks): the demo's rows with their images; 25M_full's rows joined
by file_name with the images of the accessible shards (streamed with zstandard + tarfile, never unpacked:
each shard is indexed once while listing, and its rows are listed in member order so a worker streams it
forward once). A member's path inside the shard may carry folders; it joins on its full name, else its base
name.

Per record: `origin.file` is the row's file_name (the demo: its id); `origin.source_id` is the row's `id` and
`origin.source_dataset` its `source` (the demo has none), so `medtrinity export medtrinity-25m` gives the rows
back in the release's columns; `reference_text` is the released caption;
modality, organ and disease come from the row's `source` where this module's table knows the dataset
(SOURCES: independent of the caption, so the caption audit can catch a caption naming the wrong modality),
else from the caption (modality and organ words; a disease word only outside a negation). The green ROI
outlines burned into every image are recovered as boxes (`roi/experts/green_box.py`, ROI source
"recovered:green-box@1", label "marked region") and removed from the stored image; `origin.intensity` says so.
Each released caption is audited against the record (checks named "reference:<check>", see
`describe/reference_audit.py` and docs/MEDTRINITY-25M.md).

Quarantined, with the reason:
- a row whose image is in the cut-off part of a truncated shard (known from that shard's metadata.json):
  "<file_name>: shard dataset_shard_<N>.tar.zst is truncated after member <M>; its image is in the missing part";
- a row whose image is in no shard: "<file_name>: no image in any shard of 25M_accessible/" (with the truncated
  shards named when one of them may have held it);
- a row repeating an earlier row's file_name (or demo id); a row without id, file_name or caption;
- bytes that are no readable image, at read time.
`summary()` counts per shard: members, rows joined, rows lost to truncation; and the rows in no shard.

    options:
      subsets: [demo, full]       # default: every subset present under PATH
      recover_boxes: true         # false: keep the pixels as released, no ROI
      fill: linear                # how outlines are replaced: linear (fast) or biharmonic
      audit_captions: true        # write the released caption's checks into each record
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from medtrinity.errors import StageError, UserError
from medtrinity.records import Region
from medtrinity.sources.annotations import SourceProblem
from medtrinity.sources.base import Recipe, SourceItem, register_layout
from medtrinity.sources.layout_util import LayoutOptions, layout_options
from medtrinity.sources.packed import ParquetCell, TarIndex, TarMember, index_tar_zst

DEMO, FULL, ACCESSIBLE = "25M_demo", "25M_full", "25M_accessible"
DEMO_COLUMNS = ("image", "id", "caption")
FULL_COLUMNS = ("id", "file_name", "caption", "source")
SHARD_PATTERN = re.compile(r"dataset_shard_(\d+)\.tar\.zst$")

# The release's `source` names (case, "-" and "_" ignored) -> (modality, organ, disease): what the source
# dataset itself is. None leaves the field to the caption. Mixed collections (pmc_oa, slake, vqa-rad …) are
# left out: only the caption says what their images are.
SOURCES: dict[str, tuple[str | None, str | None, str | None]] = {
    "chexpert": ("X-Ray", "chest", None),
    "mimiccxr": ("X-Ray", "chest", None),
    "chestxray14": ("X-Ray", "chest", None),
    "nihchestxray": ("X-Ray", "chest", None),
    "rsnapneumonia": ("X-Ray", "chest", None),
    "siimacrpneumothorax": ("X-Ray", "chest", None),
    "brats": ("MRI", "brain", "glioma"),
    "brats2021": ("MRI", "brain", "glioma"),
    "ixi": ("MRI", "brain", None),
    "acdc": ("MRI", "heart", None),
    "deeplesion": ("CT", None, None),
    "lidcidri": ("CT", "lung", None),
    "kits": ("CT", "kidney", None),
    "kits19": ("CT", "kidney", None),
    "kits23": ("CT", "kidney", None),
    "lits": ("CT", "liver", None),
    "flare": ("CT", "abdomen", None),
    "nctcrche100k": ("Histopathology", "colon", None),
    "quilt1m": ("Histopathology", None, None),
    "tcga": ("Histopathology", None, None),
    "camelyon16": ("Histopathology", "lymph node", None),
    "camelyon17": ("Histopathology", "lymph node", None),
    "pcam": ("Histopathology", "lymph node", None),
    "isic": ("Dermoscopy", "skin", None),
    "isic2018": ("Dermoscopy", "skin", None),
    "isic2019": ("Dermoscopy", "skin", None),
    "busi": ("Ultrasound", "breast", None),
    "kvasirseg": ("Endoscopy", "colon", "polyp"),
    "cvcclinicdb": ("Endoscopy", "colon", "polyp"),
    "hyperkvasir": ("Endoscopy", None, None),
}
# Findings a caption may state (read only outside negations: "no pneumothorax" states none).
DISEASE_WORDS = (
    "pneumothorax",
    "pneumonia",
    "pleural effusion",
    "cardiomegaly",
    "atelectasis",
    "pulmonary nodule",
    "glioma",
    "glioblastoma",
    "meningioma",
    "polyp",
    "melanoma",
    "basal cell carcinoma",
    "adenocarcinoma",
    "carcinoma",
    "metastasis",
    "fracture",
    "hemorrhage",
    "haemorrhage",
    "tumor",
    "tumour",
    "cyst",
)


def source_key(name: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (name or "").lower())


def caption_modality(caption: str) -> str | None:
    from medtrinity.describe.vocabulary import modalities_named

    named = modalities_named(caption)
    return named[0] if named else None


def caption_organ(caption: str) -> str | None:
    """The first organ the caption's first sentence names ("The image is a chest X-ray …" -> chest)."""
    from medtrinity.describe.anatomy import ORGAN_WORDS, canonical_organ

    first = re.split(r"(?<=[.!?])\s", caption.strip(), maxsplit=1)[0]
    match = ORGAN_WORDS.search(first)
    return canonical_organ(match.group(0)) if match else None


def caption_disease(caption: str) -> str | None:
    from medtrinity.knowledge.negation import drop_negated

    stated = drop_negated(caption).lower()
    found = [(stated.find(w), w) for w in DISEASE_WORDS if re.search(rf"\b{re.escape(w)}s?\b", stated)]
    return min(found)[1] if found else None


def metadata_for(source: str | None, caption: str | None) -> tuple[str | None, str | None, str | None]:
    """(modality, organ, disease): the source table's, with the caption filling what it leaves open."""
    modality, organ, disease = SOURCES.get(source_key(source), (None, None, None))
    text = caption or ""
    return (modality or caption_modality(text), organ or caption_organ(text), disease or caption_disease(text))


# ---------------------------------------------------------------- what an item carries to the worker
@dataclass
class RecoveredBoxes:
    """The boxes recovered from the pixels when the item was read (the read stage fills `item.recovered`)."""

    def resolve(self, root: Path, item, shape: tuple[int, int]) -> list[Region]:
        return list(getattr(item, "recovered", None) or [])


@dataclass(repr=False, eq=False)
class ReleaseImage:
    """What the read stage needs of an image (the attributes of sources.imaging's ImageData)."""

    pixels: np.ndarray
    intensity: str
    spacing: list[float] | None = None
    orientation: str | None = None
    modality_hint: str | None = None
    body_part: str | None = None
    patient_left_on_image: str | None = None


@dataclass
class ReleaseItem(SourceItem):
    """An item whose pixels are bytes inside a Parquet row or a tar.zst member; it reads them itself."""

    packed: ParquetCell | TarMember | None = None
    recover_boxes: bool = True
    fill: str = "linear"
    audit_reference: bool = True  # the audit stage writes the released caption's checks
    source_id: str | None = None  # the row's `id` (origin.source_id)
    source_dataset: str | None = None  # the row's `source` (origin.source_dataset); the demo has none
    recovered: list[Region] = field(default_factory=list)

    def read_image(self) -> ReleaseImage:
        from medtrinity.roi.experts.green_box import recover_green_boxes, regions_of

        pixels, kind = decode_image(self.packed.read(self.root), self.file)
        note = f"8-bit {kind} as released"
        if self.recover_boxes:
            recovery = recover_green_boxes(pixels, self.fill)
            pixels, note = recovery.pixels, f"{note}; {recovery.note()}"
            self.recovered = regions_of(recovery.boxes)
        return ReleaseImage(pixels=pixels, intensity=note)


def decode_image(data: bytes, name: str) -> tuple[np.ndarray, str]:
    """uint8 gray or RGB pixels of JPEG/PNG bytes, and "gray"/"RGB"."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(__import__("io").BytesIO(data)) as image:
            image.load()
            if image.mode in ("L", "RGB"):
                pixels = np.asarray(image)
            elif image.mode in ("I;16", "I", "F"):
                values = np.asarray(image, np.float64)
                low, high = float(values.min()), float(values.max())
                pixels = (
                    np.zeros(values.shape, np.uint8)
                    if high <= low
                    else np.rint((values - low) / (high - low) * 255).astype(np.uint8)
                )
            else:  # palette, RGBA, CMYK, LA …: as RGB
                pixels = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise StageError(f"{name}: the released bytes are not a readable image") from None
    return np.ascontiguousarray(pixels), "gray" if pixels.ndim == 2 else "RGB"


# ---------------------------------------------------------------- the layout
class MedTrinity25MOptions(LayoutOptions):
    subsets: list[Literal["demo", "full"]] | None = None  # None: every subset present
    recover_boxes: bool = True
    fill: Literal["linear", "biharmonic"] = "linear"
    audit_captions: bool = True


@dataclass
class ShardCount:
    members: int = 0
    truncated_after: int | None = None  # members read completely, when the shard is cut short
    rows_joined: int = 0
    rows_lost: int = 0  # rows whose image lies in the cut-off part (known from metadata.json)


@register_layout("medtrinity-25m")
class MedTrinity25MLayout:
    Options = MedTrinity25MOptions

    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe, self.root = recipe, Path(root)
        opts = layout_options(self, recipe)
        self.recover_boxes, self.fill, self.audit = opts.recover_boxes, opts.fill, opts.audit_captions
        self.wanted = opts.subsets
        self._indexes: dict[str, TarIndex] | None = None
        self._summary: dict | None = None

    # ------------------------------------------------------------ folders
    def _folders(self) -> dict[str, Path]:
        """Where each subset is: under PATH, or PATH is one of them (the shards and 25M_full lie side by side)."""
        if self.root.name == DEMO:
            return {"demo": self.root}
        if self.root.name == FULL:
            return {"full": self.root, "accessible": self.root.parent / ACCESSIBLE}
        if self.root.name == ACCESSIBLE:
            return {"full": self.root.parent / FULL, "accessible": self.root}
        return {"demo": self.root / DEMO, "full": self.root / FULL, "accessible": self.root / ACCESSIBLE}

    def _rel(self, path: Path) -> str:
        """A path relative to PATH (the item root); '..' where 25M_accessible lies beside a 25M_full PATH."""
        import os

        return Path(os.path.relpath(path, self.root)).as_posix()

    def _shown(self, path: Path) -> str:
        """A path as the release names it (from the dataset folder: 25M_full/train-….parquet), for reasons."""
        dataset = self.root.parent if self.root.name in (DEMO, FULL, ACCESSIBLE) else self.root
        return path.relative_to(dataset).as_posix()

    def subsets(self) -> list[str]:
        folders = self._folders()
        present = [s for s in ("demo", "full") if s in folders and folders[s].is_dir()]
        return [s for s in present if self.wanted is None or s in self.wanted]

    def check(self) -> None:
        folders = self._folders()
        accessible = folders.get("accessible")
        if (
            not folders.get("full", Path("/nonexistent")).is_dir()
            and accessible is not None
            and accessible.is_dir()
            and not folders.get("demo", Path("/nonexistent")).is_dir()
        ):
            raise UserError(
                f"medtrinity-25m reads {ACCESSIBLE}/ with the rows of {FULL}/ beside it: {folders['full']} is missing"
            )
        subsets = self.subsets()
        if not subsets:
            wanted = f" (options.subsets: {', '.join(self.wanted)})" if self.wanted else ""
            raise UserError(
                f"medtrinity-25m expects {DEMO}/, {FULL}/ or {ACCESSIBLE}/ under {self.root}{wanted}: none is there"
            )
        for subset in subsets:
            folder = folders[subset]
            files = self._parquet_files(folder, subset)
            if not files:
                raise UserError(
                    f"{folder} holds no .parquet file — is this the {folder.name} folder of MedTrinity-25M?"
                )
            for path in files:
                self._check_columns(path, DEMO_COLUMNS if subset == "demo" else FULL_COLUMNS)
        if "full" in subsets and not (accessible is not None and accessible.is_dir()):
            raise UserError(
                f"{FULL}/ holds captions without images: medtrinity-25m joins its rows with the shards of "
                f"{ACCESSIBLE}/ (dataset_shard_<N>.tar.zst), which is missing beside it"
            )

    def _accessible(self) -> Path | None:
        folder = self._folders().get("accessible")
        return folder if folder is not None and folder.is_dir() else None

    @staticmethod
    def _parquet_files(folder: Path, subset: str) -> list[Path]:
        pattern = "**/*.parquet" if subset == "demo" else "**/train-*.parquet"
        return sorted(p for p in folder.glob(pattern) if p.is_file())

    @staticmethod
    def _check_columns(path: Path, columns: tuple[str, ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = pq.ParquetFile(path).schema_arrow.names
        except (OSError, ValueError, pa.ArrowException):  # a parser's error text is no message for a user
            raise UserError(f"{path} is not a readable Parquet file") from None
        missing = [c for c in columns if c not in names]
        if missing:
            raise UserError(
                f"{path} has no column {', '.join(repr(c) for c in missing)}: MedTrinity-25M's "
                f"{path.parent.name} has {', '.join(columns)}"
            )

    # ------------------------------------------------------------ listing
    def items(self) -> Iterator[SourceItem]:
        seen: dict[str, str] = {}  # file -> where it was first listed
        for subset in self.subsets():
            if subset == "demo":
                yield from self._demo_items(seen)
            else:
                yield from self._full_items(seen)

    def _item(
        self, file: str, caption: str | None, source: str | None, packed, problem: str | None, release_id: str | None
    ) -> ReleaseItem:
        r = self.recipe
        modality, organ, disease = metadata_for(source, caption)
        annotations: list = [SourceProblem(problem)] if problem else []
        if self.recover_boxes:
            annotations.append(RecoveredBoxes())
        return ReleaseItem(
            source=r.name,
            root=str(self.root),
            file=file,
            modality=modality or r.modality,
            organ=organ or r.organ,
            disease=disease or r.disease,
            labels=[disease] if disease else [],
            split=r.split,
            reference_text=caption or None,
            annotations=annotations,
            expert=r.expert,
            packed=packed,
            recover_boxes=self.recover_boxes,
            fill=self.fill,
            audit_reference=self.audit,
            source_id=release_id,
            source_dataset=source,
        )

    def _row_problem(
        self, where: str, file: str | None, caption: str | None, seen: dict[str, str], key: str, modality: str | None
    ) -> str | None:
        if not file:
            return f"{where}: no {key}"
        if file in seen:
            return f"{where}: {key} {file} repeats {seen[file]}"
        seen[file] = where
        if not caption or not caption.strip():
            return f"{where}: no caption"
        if modality is None:
            return f"{where}: neither the source nor the caption names the modality"
        return None

    def _demo_items(self, seen: dict[str, str]) -> Iterator[ReleaseItem]:
        import pyarrow.parquet as pq

        for path in self._parquet_files(self._folders()["demo"], "demo"):
            rel, shown = self._rel(path), self._shown(path)
            table = pq.read_table(path, columns=["id", "caption"])
            for row, (image_id, caption) in enumerate(
                zip(table.column("id").to_pylist(), table.column("caption").to_pylist())
            ):
                image_id = None if image_id is None else str(image_id)
                where = f"{shown} row {row}"
                modality = metadata_for(None, caption)[0] or self.recipe.modality
                problem = self._row_problem(where, image_id, caption, seen, "id", modality)
                file = image_id if image_id and seen.get(image_id) == where else f"{shown}#row{row}"
                yield self._item(file, caption, None, ParquetCell(rel, row, "image"), problem, image_id)

    def _indexes_of(self) -> dict[str, TarIndex]:
        """Every shard indexed once per layout (listing runs twice: the fingerprint, then the shards)."""
        if self._indexes is None:
            folder = self._accessible()
            shards = [p for p in folder.rglob("*.tar.zst") if SHARD_PATTERN.search(p.name)] if folder else []
            shards.sort(key=lambda p: (int(SHARD_PATTERN.search(p.name).group(1)), p.name))
            self._indexes = {self._rel(p): index_tar_zst(p) for p in shards}
        return self._indexes

    def _full_items(self, seen: dict[str, str]) -> Iterator[ReleaseItem]:
        import pyarrow.parquet as pq

        indexes = self._indexes_of()
        by_name: dict[str, TarMember] = {}
        lost: dict[str, tuple[str, int]] = {}  # file_name -> (shard, members read) for a truncated shard's tail
        counts = {
            shard: ShardCount(members=len(ix.members), truncated_after=len(ix.members) if ix.truncated else None)
            for shard, ix in indexes.items()
        }
        for shard, index in indexes.items():
            for name, offset, size in index.members:
                member = TarMember(shard, name, offset, size)
                for key in (name, Path(name).name):
                    by_name.setdefault(key, member)
            if index.truncated and index.metadata:
                for file_name in _metadata_file_names(index.metadata):
                    if file_name not in by_name:
                        lost.setdefault(file_name, (shard, len(index.members)))
        truncated = [Path(s).name for s, ix in indexes.items() if ix.truncated]
        order = {shard: i for i, shard in enumerate(indexes)}
        joined: list[tuple[tuple[int, int], ReleaseItem]] = []
        unmatched: list[ReleaseItem] = []
        no_shard = 0
        for path in self._parquet_files(self._folders()["full"], "full"):
            shown = self._shown(path)
            table = pq.read_table(path, columns=list(FULL_COLUMNS))
            ids, names, captions, sources = (table.column(c).to_pylist() for c in FULL_COLUMNS)
            for row, (release_id, file_name, caption, source) in enumerate(zip(ids, names, captions, sources)):
                file_name = None if file_name is None else str(file_name)
                release_id = None if release_id is None else str(release_id)
                where = f"{shown} row {row}"
                modality = metadata_for(source, caption)[0] or self.recipe.modality
                problem = self._row_problem(where, file_name, caption, seen, "file_name", modality)
                file = file_name if file_name and seen.get(file_name) == where else f"{shown}#row{row}"
                member = by_name.get(file_name or "")
                if member is not None and problem is None:
                    counts[member.shard].rows_joined += 1
                    item = self._item(file, caption, source, member, None, release_id)
                    joined.append(((order[member.shard], member.offset), item))
                    continue
                if problem is None and file_name in lost:
                    shard, after = lost[file_name]
                    counts[shard].rows_lost += 1
                    problem = (
                        f"{file_name}: shard {Path(shard).name} is truncated after member {after}; "
                        "its image is in the missing part"
                    )
                elif problem is None:
                    no_shard += 1
                    problem = f"{file_name}: no image in any shard of {ACCESSIBLE}/"
                    if truncated:
                        problem += f" (truncated, and may have held it: {', '.join(truncated)})"
                unmatched.append(self._item(file, caption, source, member, problem, release_id))
        joined.sort(key=lambda pair: pair[0])  # member order: each shard is streamed forward once
        self._summary = {
            "shards": {Path(shard).name: vars(count) for shard, count in counts.items()},
            "rows_in_no_shard": no_shard,
        }
        yield from (item for _, item in joined)
        yield from unmatched

    def summary(self) -> dict:
        """Per shard: members read, where a truncated shard stops, rows joined and rows lost to truncation; and
        the rows whose image is in no shard (computed when the rows are listed)."""
        if self._summary is None:
            for _ in self.items():
                pass
        return self._summary or {}


def _metadata_file_names(data: bytes) -> list[str]:
    """The file names a shard's metadata.json lists: a list of names, of {file_name: …} rows, or a mapping
    keyed by file name. Anything else lists none (the rows are then reported as in no shard)."""
    try:
        meta = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return []
    if isinstance(meta, dict):
        rows = meta.get("images") or meta.get("data") or meta.get("rows")
        if rows is None:
            return [str(k) for k in meta]
        meta = rows
    names = []
    for row in meta if isinstance(meta, list) else []:
        if isinstance(row, str):
            names.append(row)
        elif isinstance(row, dict):
            value = row.get("file_name") or row.get("filename") or row.get("image")
            if isinstance(value, str):
                names.append(value)
    return names
