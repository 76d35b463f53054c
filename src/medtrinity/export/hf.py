"""`export hf`: a folder that `datasets.load_dataset(OUT)` loads, ready for `push_to_hub` (the push is yours).

`data/<split>-00000.parquet`, … hold the records (every column of the build, `image` as the `Image` feature)
in files of `--shard-size` rows; the split names are Hugging Face's (train, validation, test). `README.md`
is the dataset card: YAML front matter declaring the config, its data files per split, the features (as
`datasets` writes them) and the licenses of the sources, then a short body.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from medtrinity.errors import UserError
from medtrinity.export.output import SplitFiles
from medtrinity.export.selection import split_of

HF_SPLITS = {"val": "validation"}  # split_of's names as Hugging Face calls them


def hf_split(split: str | None) -> str:
    name = split_of(split)
    return HF_SPLITS.get(name, name)


def _file_name(split: str, k: int) -> str:
    return f"{split}-{k:05d}.parquet"


def card(splits: dict[str, int], licenses: dict[str, str], sources: dict[str, int], name: str) -> str:
    """README.md: the YAML front matter `datasets` and the Hub read, and a body saying what the data is."""
    import datasets
    import yaml

    from medtrinity.records import SCHEMA

    features = datasets.Features.from_arrow_schema(SCHEMA)
    order = sorted(splits, key=lambda s: ((["train", "validation", "test"] + [s]).index(s), s))
    used = {source: licenses.get(source, "as stated by the publisher") for source in sorted(sources)}
    front = {
        "license": "other",
        "license_name": "per-source",
        "license_details": "; ".join(f"{source}: {text}" for source, text in used.items()),
        "pretty_name": name,
        "tags": ["medical", "medtrinity"],
        "task_categories": ["image-to-text", "visual-question-answering", "image-segmentation"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}-*.parquet"} for split in order],
            }
        ],
        "dataset_info": {
            "features": features._to_yaml_list(),
            "splits": [{"name": split, "num_examples": splits[split]} for split in order],
        },
    }
    rows = "\n".join(f"| {source} | {sources[source]} | {used[source]} |" for source in sorted(sources))
    body = (
        f"# {name}\n\nMultigranular {{image, ROIs, description}} records made by medtrinity (the MedTrinity-25M "
        "method). Each row holds the image, its regions of interest (`rois`: boxes [x0, y0, x1, y1] with x1/y1 "
        "exclusive and COCO RLE masks), the description, its five attributes, the claims it makes and the "
        'checks it passed.\n\n```python\nfrom datasets import load_dataset\nds = load_dataset("PATH_OR_REPO")\n'
        'ds["train"][0]["image"]  # a PIL image\n```\n\n## Sources and licenses\n\nEach source keeps its own '
        "license; respect every one of them before redistributing (`push_to_hub` publishes the images).\n\n"
        f"| source | records | license |\n|---|---|---|\n{rows}\n"
    )
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000) + "---\n\n" + body


class Writer:
    @staticmethod
    def check_available() -> None:
        try:
            import datasets  # noqa: F401
        except ImportError:
            raise UserError("export hf needs the `datasets` package: pip install 'medtrinity[export]'") from None

    def __init__(self, folder: Path, options, catalog, build) -> None:
        self.folder, self.size, self.build = folder, options.shard_size, build
        (folder / "data").mkdir()
        self.splits: dict[str, SplitFiles] = {}
        self.sources: Counter = Counter()

    def add(self, row: dict[str, Any]) -> None:
        split = hf_split(row["split"])
        if split not in self.splits:
            from medtrinity.records import SCHEMA

            self.splits[split] = SplitFiles(self.folder, split, self.size, SCHEMA, _file_name)
        self.splits[split].add(row)
        self.sources[row["source"]] += 1

    def close(self) -> tuple[dict[str, int], dict[str, Any]]:
        for files in self.splits.values():
            files.close()
        written = {split: files.count for split, files in self.splits.items()}
        text = card(written, self.build.licenses(), dict(self.sources), f"medtrinity-{self.build.folder.name}")
        (self.folder / "README.md").write_text(text, encoding="utf-8")
        return written, {"parquet_files": sum(f.files for f in self.splits.values())}
