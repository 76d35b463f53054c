"""Exports of a build into what trainers and libraries read: LLaVA JSON, WebDataset shards, COCO, a Hugging
Face dataset folder, MedTrinity-25M's own columns — and the QA pairs the LLaVA export and the evaluation make
from verified fields.

`build_reader.py` reads a build shard by shard; `selection.py` decides which records are exported (and says
why the others are not); `output.py` writes the export into a temporary folder renamed at the end;
`run.py` drives one export; one file per format (`llava.py`, `webdataset.py`, `coco.py`, `hf.py`,
`medtrinity_25m.py`).
"""
