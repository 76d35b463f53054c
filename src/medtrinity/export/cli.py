"""`medtrinity export FORMAT DIR --out OUT`: the export command.

`add_export_command(subparsers)` adds it to the main parser; `run_export(args)` runs it. Flags that only one
format reads are refused with another format, so a mistyped command never silently does something else.
"""

from __future__ import annotations

import argparse
import sys

from medtrinity.errors import UserError
from medtrinity.export.boxes import BOX_FORMATS
from medtrinity.export.run import FORMATS, LLAVA_KINDS, ExportOptions

# flag -> the formats that read it
_FORMAT_FLAGS = {
    "kind": ("llava",),
    "box_format": ("llava",),
    "shard_size": ("webdataset", "hf", "medtrinity-25m"),
    "include_expert": ("llava", "coco", "medtrinity-25m"),
}


def add_export_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a build as LLaVA JSON, WebDataset shards, COCO, a Hugging Face dataset or "
        "MedTrinity-25M's own columns",
        description="Export a build for trainers and libraries: llava (LLaVA / LLaVA-Med JSON), webdataset (tar "
        "shards), coco (instances JSON + images), hf (a folder datasets.load_dataset reads), "
        "medtrinity-25m (Parquet rows in the release's columns id, file_name, caption, source, image, "
        "plus bboxes). See docs/TRAINING.md and docs/MEDTRINITY-25M.md.",
    )
    p.add_argument("format", metavar="FORMAT", choices=FORMATS, help=f"one of {', '.join(FORMATS)}")
    p.add_argument("dir", metavar="DIR", help="a build's output folder")
    p.add_argument("--out", required=True, help="the export folder (new; an existing one needs --overwrite)")
    p.add_argument("--kind", choices=LLAVA_KINDS, help="llava: caption, qa, grounded or all (default all)")
    p.add_argument(
        "--box-format",
        dest="box_format",
        choices=BOX_FORMATS,
        help="llava: boxes in text as norm ([x0, y0, x1, y1] in 0-1, default), qwen (Qwen2-VL 0-1000 "
        "box tokens) or pixels",
    )
    p.add_argument(
        "--shard-size",
        dest="shard_size",
        type=int,
        help="webdataset: samples per tar shard; hf, medtrinity-25m: rows per Parquet file (default 1000)",
    )
    p.add_argument(
        "--include-expert",
        dest="include_expert",
        action="store_true",
        default=None,
        help="llava, coco, medtrinity-25m: also the ROIs experts proposed (default: the sources' own "
        "annotations, and the boxes recovered from a release's pixels for medtrinity-25m)",
    )
    p.add_argument(
        "--include-failed",
        dest="include_failed",
        action="store_true",
        help="also records whose description failed a check (kept by --on-contradiction keep)",
    )
    p.add_argument(
        "--include-test",
        dest="include_test",
        action="store_true",
        help="also records of a benchmark's test split (written to test files only)",
    )
    p.add_argument("--exclude", metavar="FILE", help="leave out the record ids in FILE (one per line, or JSON)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def run_export(args: argparse.Namespace) -> int:
    from medtrinity.export.run import export_build

    for flag, formats in _FORMAT_FLAGS.items():
        if getattr(args, flag) is not None and args.format not in formats:
            name = "--" + flag.replace("_", "-")
            listed = formats[0] if len(formats) == 1 else ", ".join(formats[:-1]) + " and " + formats[-1]
            raise UserError(f"{name} applies to {listed} exports, not {args.format}")
    given = {flag: getattr(args, flag) for flag in _FORMAT_FLAGS if getattr(args, flag) is not None}
    options = ExportOptions(
        include_failed=args.include_failed,
        include_test=args.include_test,
        exclude=args.exclude,
        overwrite=args.overwrite,
        **given,
    )
    summary = export_build(args.format, args.dir, args.out, options, show_progress=sys.stderr.isatty())
    print("\n".join(summary.lines()))
    return 0
