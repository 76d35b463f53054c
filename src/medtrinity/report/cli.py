"""`medtrinity report DIR [--out CARD_DIR]`."""

from __future__ import annotations


def add_report_command(sub) -> None:
    report = sub.add_parser(
        "report",
        help="write a dataset card (README.md, plots, report.html) with the build's measured facts",
        description="Write a dataset card for a build: README.md with Hugging Face front matter and datasheet "
        "sections, PNG plots, and a single-file report.html.",
    )
    report.add_argument("dir", metavar="DIR", help="a build folder (the --out of `medtrinity build` or `demo`)")
    report.add_argument(
        "--out",
        metavar="CARD_DIR",
        help="folder for README.md, report.html and plots/ (default: DIR itself, so the card sits "
        "beside data/ as a Hugging Face dataset repository expects)",
    )


def run_report(args) -> int:
    from pathlib import Path

    from medtrinity.report.card import write_card
    from medtrinity.viewer.build_folder import BuildFolder

    folder = BuildFolder.open(args.dir)
    out = Path(args.out) if args.out else folder.root
    written = write_card(folder, out)
    for path in written:
        print(path)
    return 0
