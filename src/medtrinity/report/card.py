"""The dataset card: README.md with Hugging Face YAML front matter and the datasheet sections of Gebru et
al. (as the MedTrinity-25M appendix uses them), each filled with what was measured in the build; the same
content as one self-contained report.html; the plots as PNG files in plots/.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from medtrinity.report.document import (
    Block,
    Code,
    Figure,
    Heading,
    Paragraph,
    Table,
    to_html,
    to_markdown,
)
from medtrinity.report.licenses import source_licenses
from medtrinity.report.plots import PLOTS, draw_plots
from medtrinity.report.stats import AREA_EDGES, NONE, BuildStats, collect
from medtrinity.viewer.build_folder import BuildFolder

TABLE_ROWS = 30  # rows of a value table before the rest are summed into one row
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)


def size_category(records: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if records < limit:
            return name
    return "100M<n<1B"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def counted(counter: Counter, name: str, whole: int) -> Table:
    """A value table, most frequent first; values past TABLE_ROWS are summed into one row."""
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    rows = [[value, n, percent(n, whole)] for value, n in ranked[:TABLE_ROWS]]
    rest = ranked[TABLE_ROWS:]
    if rest:
        n = sum(count for _, count in rest)
        rows.append([f"{len(rest)} other values", n, percent(n, whole)])
    return Table([name, "records", "share"], rows, numeric=(1, 2))


def front_matter(stats: BuildStats, licenses, name: str) -> dict:
    hub_ids = sorted({entry.hub_id for entry in licenses}) or ["other"]
    tasks = ["image-to-text"]
    if stats.rois:
        tasks.append("object-detection")
    if stats.rois_with_mask:
        tasks.append("image-segmentation")
    meta: dict = {
        "pretty_name": name,
        "language": ["en"],
        "license": hub_ids[0] if len(hub_ids) == 1 else hub_ids,
    }
    if "other" in hub_ids:
        meta["license_name"] = "per-source terms"
        meta["license_details"] = "Each source keeps its publisher's terms; see the Distribution section."
    meta |= {
        "task_categories": tasks,
        "size_categories": [size_category(stats.records)],
        "tags": ["medical", "medtrinity", "multigranular"] + sorted(m.lower() for m in stats.by_modality if m != NONE),
        # The shards mix the sources' own splits (the `split` column); the Hub sees one split.
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/part-*.parquet"}]}],
        "dataset_info": {"splits": [{"name": "train", "num_examples": stats.records}]},
    }
    return meta


def _versions(manifest: dict) -> list[list]:
    return [[name, version] for name, version in sorted((manifest.get("versions") or {}).items())]


def card_blocks(folder: BuildFolder, stats: BuildStats, plots: dict[str, Path], licenses) -> list[Block]:
    manifest = folder.manifest() or {}
    config = manifest.get("config") or {}
    kb = manifest.get("knowledge_base") or {}
    sources = manifest.get("sources") or {}
    totals = manifest.get("totals") or {}
    records, rois = stats.records, stats.rois
    blocks: list[Block] = [Heading(1, folder.root.name)]
    blocks.append(
        Paragraph(
            f"{records} image records with {rois} regions of interest and a structured description each, from "
            f"{len(stats.by_source)} source(s), built with medtrinity {manifest.get('medtrinity', '(unknown version)')}"
            + (f" on {manifest['created']}" if manifest.get("created") else "")
            + ". Every number on this card was measured in the build's files by `medtrinity report`."
        )
    )

    def figure(name: str) -> None:
        if name in plots:
            blocks.append(Figure(plots[name], PLOTS[name][0]))

    # ------------------------------------------------------------ motivation
    blocks += [
        Heading(2, "Motivation"),
        Paragraph(
            "Multigranular training data for medical vision-language models, following the MedTrinity-25M method: "
            "each image comes with its regions of interest (boxes and masks) and a description that names the "
            "modality, the structures, each region's position and size, its texture, and how it relates to the "
            "whole image, with retrieved medical knowledge. The records were built from the sources below; "
            "the purpose each publisher gave its data is stated in its own license terms."
        ),
    ]

    # ------------------------------------------------------------ composition
    blocks += [
        Heading(2, "Composition"),
        Paragraph(
            f"{records} records in {stats.data_shards} Parquet shard(s) under `data/` "
            f"({stats.data_bytes / 1e6:.1f} MB). Image sizes: width "
            + (
                f"{stats.width_range[0]}–{stats.width_range[1]}, height {stats.height_range[0]}–{stats.height_range[1]}"
                if stats.width_range
                else "–"
            )
            + " pixels."
        ),
    ]
    blocks += [
        Heading(3, "Records per source and split"),
        Table(
            ["source", "split", "records"],
            [[source, split, n] for (source, split), n in sorted(stats.by_source_split.items())],
            numeric=(2,),
        ),
    ]
    blocks += [Heading(3, "Modality"), counted(stats.by_modality, "modality", records)]
    figure("modality.png")
    blocks += [Heading(3, "Organ"), counted(stats.by_organ, "organ", records)]
    figure("organ.png")
    blocks += [Heading(3, "Disease"), counted(stats.by_disease, "disease", records)]
    blocks += [
        Heading(3, "Regions of interest"),
        Paragraph(
            f"{rois} ROIs, {stats.rois_with_mask} of them with a mask ({percent(stats.rois_with_mask, rois)}); the "
            f"others are boxes. {stats.rois_per_image.get(0, 0)} record(s) have no ROI."
        ),
    ]
    blocks.append(
        Table(
            ["ROI source", "ROIs", "share of ROIs", "records with one"],
            [
                [source, n, percent(n, rois), stats.records_by_roi_source[source]]
                for source, n in sorted(stats.rois_by_source.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            numeric=(1, 2, 3),
        )
    )
    blocks.append(
        Table(
            ["ROI label kind", "ROIs"],
            [[kind, n] for kind, n in sorted(stats.rois_by_kind.items(), key=lambda kv: (-kv[1], kv[0]))],
            numeric=(1,),
        )
    )
    blocks.append(
        Table(
            ["ROIs in a record", "records"],
            [[count, stats.rois_per_image[count]] for count in sorted(stats.rois_per_image)],
            numeric=(1,),
        )
    )
    figure("rois_per_image.png")
    blocks.append(
        Table(
            ["ROI area, % of the image", "ROIs"],
            [
                [f"{AREA_EDGES[i]:g}–{AREA_EDGES[i + 1]:g}", stats.roi_area_bins.get(i, 0)]
                for i in range(len(AREA_EDGES) - 1)
            ],
            numeric=(1,),
        )
    )
    figure("roi_area.png")
    words = stats.description_words
    blocks += [
        Heading(3, "Descriptions"),
        Paragraph(
            (f"Description length: {min(words)}–{max(words)} words, median {stats.words_median()}. " if words else "")
            + f"{stats.records_with_knowledge} record(s) cite retrieved passages; "
            f"{stats.records_with_reference_text} record(s) also carry the source's own text (`reference_text`)."
        ),
    ]
    figure("description_length.png")

    # ------------------------------------------------------------ collection process
    blocks += [
        Heading(2, "Collection process"),
        Paragraph(
            "Each source was read as its publisher distributes it, by a named recipe or a recipe file; every input "
            "either became a record or went to `quarantine/` with the stage and the reason "
            "(seen = written + quarantined)."
            + (
                f" The build ran on the {config.get('engine')} engine with {config.get('workers')} worker(s) in "
                f"{manifest.get('elapsed_seconds')} s."
                if config
                else ""
            )
        ),
    ]
    if sources:
        rows = [[name, c["seen"], c["written"], c["quarantined"]] for name, c in sources.items()]
        if totals:
            rows.append(["total", totals.get("seen"), totals.get("written"), totals.get("quarantined")])
        blocks.append(Table(["source", "seen", "written", "quarantined"], rows, numeric=(1, 2, 3)))
    blocks.append(Table(["source", "dataset"], [[entry.source, entry.title] for entry in licenses]))

    # ------------------------------------------------------------ preprocessing and labelling
    blocks += [
        Heading(2, "Preprocessing, cleaning and labelling"),
        Paragraph(
            "Images are stored as the describer saw them (PNG/JPEG bytes); the ROIs are coordinates and COCO RLE "
            "masks, never drawn into the image. The intensity rule applied to each image is in "
            "`origin.intensity`:"
        ),
    ]
    blocks.append(counted(stats.intensity_rules, "intensity rule", records))
    annotated, recovered = stats.rois_by_source.get("annotation", 0), recovered_rois(stats)
    blocks.append(
        Paragraph(
            f"ROIs from the sources' own annotations: {annotated} ({percent(annotated, rois)}); "
            + (
                f"recovered from the boxes drawn into a source's released images: {recovered} "
                f"({percent(recovered, rois)}); "
                if recovered
                else ""
            )
            + f"proposed by expert models: {rois - annotated - recovered} ({percent(rois - annotated - recovered, rois)}) "
            "(each named with its version in the ROI's `source`)."
        )
    )
    kb_line = (
        f"Knowledge base: {kb.get('name')} version {kb.get('version')} ({kb.get('passages')} passages, "
        f"digest {kb.get('digest')})."
        if kb
        else "No knowledge base is named in the manifest."
    )
    blocks += [
        Table(["describer", "records"], [[d, n] for d, n in sorted(stats.describers.items())], numeric=(1,)),
        Paragraph(kb_line),
    ]
    blocks += [
        Heading(3, "Verification checks"),
        Paragraph(
            f"Every description was checked against its record; {stats.records_with_failed_check} record(s) carry at "
            "least one failed check"
            + (
                f" (kept: --on-contradiction {config['on_contradiction']})"
                if config.get("on_contradiction") == "keep"
                else ""
            )
            + "."
        ),
    ]
    blocks.append(
        Table(
            ["check", "records", "pass", "not verifiable", "fail", "pass rate"],
            [
                [name, sum(c.values()), c["pass"], c["not-verifiable"], c["fail"], percent(c["pass"], sum(c.values()))]
                for name, c in sorted(stats.checks.items())
            ],
            numeric=(1, 2, 3, 4, 5),
        )
    )
    figure("check_pass_rate.png")
    blocks += reference_audit_blocks(stats)
    blocks.append(Heading(3, "Quarantine"))
    if stats.quarantined:
        blocks.append(Paragraph(f"{stats.quarantined} input(s) were quarantined."))
        blocks.append(
            Table(["stage", "inputs"], [[s, n] for s, n in sorted(stats.quarantine_by_stage.items())], numeric=(1,))
        )
        blocks.append(
            Table(
                ["inputs", "stage", "reason"],
                [[k.count, k.stage, k.reason] for k in stats.quarantine_reasons],
                numeric=(0,),
            )
        )
        figure("quarantine_reasons.png")
    else:
        blocks.append(Paragraph("Nothing was quarantined."))

    # ------------------------------------------------------------ uses
    blocks += [
        Heading(2, "Uses"),
        Paragraph(
            "Training and evaluating vision-language models on grounded medical descriptions: image–text "
            "alignment, region grounding (boxes and masks), report-style generation and visual question answering. "
            "The descriptions are generated, not written by clinicians: they are not for diagnosis or any clinical "
            f"decision. {percent(stats.rois - stats.rois_by_source.get('annotation', 0), rois)} of the ROIs come from "
            "expert models"
            + (" or from boxes drawn into released images" if recovered_rois(stats) else "")
            + " rather than from a source's annotation; filter on `rois[].source` where that matters."
        ),
    ]
    blocks.append(
        Code(
            "from datasets import load_dataset\n"
            'ds = load_dataset("parquet", data_files="data/part-*.parquet", split="train")\n'
            'ds[0]["image"], ds[0]["rois"], ds[0]["description"]',
            "python",
        )
    )

    # ------------------------------------------------------------ distribution
    blocks += [
        Heading(2, "Distribution"),
        Paragraph(
            "Each source keeps its publisher's license; a redistribution must honour every one of them. "
            "The license terms as the recipes state them:"
        ),
    ]
    blocks.append(Table(["source", "license", "Hub id"], [[e.source, e.license, e.hub_id] for e in licenses]))

    # ------------------------------------------------------------ maintenance
    blocks += [
        Heading(2, "Maintenance"),
        Paragraph(
            "The build is reproducible: the same sources and settings give the same record ids and records "
            "(`manifest.json` holds the settings as applied; `medtrinity build --resume` continues an interrupted run). "
            "Software versions of this build:"
        ),
    ]
    blocks.append(Table(["package", "version"], _versions(manifest)))
    return blocks


def recovered_rois(stats: BuildStats) -> int:
    """ROIs found in a source's pixels (boxes its publisher drew into the released images)."""
    return sum(n for source, n in stats.rois_by_source.items() if source.startswith("recovered:"))


def reference_audit_blocks(stats: BuildStats) -> list[Block]:
    """The audit of the sources' own captions: how often each source's caption contradicts its record."""
    audited, contradicted = stats.references_audited, stats.references_contradicted
    if not audited:
        return []
    total, against = sum(audited.values()), sum(contradicted.values())
    blocks: list[Block] = [
        Heading(3, "Audit of the sources' captions"),
        Paragraph(
            f"{total} record(s) carry their source's own caption (`reference_text`, e.g. MedTrinity-25M's released "
            "caption), verified against the record as the descriptions are: stated position, side, area, ROI count, "
            "modality and organ (checks named `reference:<check>`). "
            f"{against} of them ({percent(against, total)}) are contradicted by at least one check. The caption is "
            "kept as the source gave it; a contradiction is the source's, not this build's, and leaves no record out."
        ),
    ]
    blocks.append(
        Table(
            ["source", "dataset named by the source", "captions audited", "contradicted", "contradiction rate"],
            [
                [source, dataset, n, contradicted[source, dataset], percent(contradicted[source, dataset], n)]
                for (source, dataset), n in sorted(audited.items(), key=lambda kv: (kv[0][0], kv[0][1].lower()))
            ]
            + [["total", "", total, against, percent(against, total)]],
            numeric=(2, 3, 4),
        )
    )
    blocks.append(
        Table(
            ["caption check", "records", "pass", "not verifiable", "fail", "fail rate"],
            [
                [name, sum(c.values()), c["pass"], c["not-verifiable"], c["fail"], percent(c["fail"], sum(c.values()))]
                for name, c in sorted(stats.reference_checks.items())
            ],
            numeric=(1, 2, 3, 4, 5),
        )
    )
    return blocks


def write_card(folder: BuildFolder, out: Path) -> list[Path]:
    """Write README.md, report.html and plots/*.png into `out`; returns the files written."""
    import yaml

    from medtrinity.errors import UserError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {out}: {err.strerror}") from None
    stats = collect(folder)
    licenses = source_licenses(folder.manifest(), sorted(stats.by_source))
    plots = draw_plots(stats, out / "plots")
    blocks = card_blocks(folder, stats, plots, licenses)
    meta = yaml.safe_dump(front_matter(stats, licenses, folder.root.name), sort_keys=False, allow_unicode=True)
    readme = out / "README.md"
    _write(readme, f"---\n{meta}---\n\n" + to_markdown(blocks, out))
    report = out / "report.html"
    _write(report, to_html(blocks, f"{folder.root.name} — dataset card"))
    return [readme, report, *plots.values()]


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
