"""The demo source: real medical images that installed packages ship (pydicom's test files, the
`pydicom-data` radiographs, scikit-image's fundus, IHC and microscopy images) — no download.

Metadata comes from what each file or its publisher states (DICOM Modality and descriptions such as
"marked lesion" or "Non-ossifying fibroma of distal tibia", scikit-image's documentation); ROIs come
from the file's own overlay where it has one, else from the expert chosen for the modality.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from medtrinity.errors import UserError
from medtrinity.sources.annotations import DicomOverlay
from medtrinity.sources.base import Recipe, SourceItem, register_layout


@dataclass(frozen=True)
class DemoImage:
    package: str  # the package that ships the file
    file: str  # path inside the package folder
    modality: str | None  # None: from the DICOM header
    organ: str | None
    disease: str | None = None
    labels: tuple[str, ...] = ()
    frame: int | None = None
    window: str | None = None
    overlay_label: str | None = None  # the file's own overlay marks this region


DEMO_IMAGES = (
    DemoImage("pydicom", "data/test_files/CT_small.dcm", None, "spine"),
    DemoImage("data_store", "data/693_UNCI.dcm", None, "head", window="brain"),
    DemoImage(
        "pydicom",
        "data/test_files/examples_overlay.dcm",
        None,
        "liver",
        "liver lesion",
        ("marked lesion",),
        overlay_label="liver lesion",
    ),
    DemoImage(
        "data_store",
        "data/MR-SIEMENS-DICOM-WithOverlays.dcm",
        None,
        "liver",
        "liver lesion",
        ("marked lesion",),
        overlay_label="liver lesion",
    ),
    DemoImage("data_store", "data/MR2_UNCI.dcm", None, "shoulder"),
    DemoImage("data_store", "data/emri_small.dcm", None, "brain", frame=2),
    DemoImage("data_store", "data/emri_small.dcm", None, "brain", frame=5),
    DemoImage("data_store", "data/emri_small.dcm", None, "brain", frame=8),
    DemoImage("pydicom", "data/test_files/MR_small.dcm", None, None),
    DemoImage("data_store", "data/US1_UNCI.dcm", None, "lymph node"),
    DemoImage("data_store", "data/gdcm-US-ALOKA-16.dcm", None, "pelvis"),
    DemoImage("data_store", "data/color-pl.dcm", None, "heart"),
    DemoImage("pydicom", "data/test_files/examples_ybr_color.dcm", None, "heart", frame=0),
    DemoImage("pydicom", "data/test_files/examples_ybr_color.dcm", None, "heart", frame=15),
    DemoImage("pydicom", "data/test_files/examples_ybr_color.dcm", None, "heart", frame=29),
    DemoImage("data_store", "data/RG1_UNCI.dcm", None, "chest"),
    DemoImage("data_store", "data/RG3_UNCI.dcm", None, "tibia", "non-ossifying fibroma"),
    DemoImage("data_store", "data/JPEG2000_UNC.dcm", None, "skeleton", labels=("whole-body bone scan",)),
    DemoImage("skimage", "data/retina.jpg", "Fundus", "retina", labels=("normal",)),
    DemoImage("skimage", "data/ihc.png", "Histopathology", "colon", labels=("colonic glands", "IHC (DAB) stain")),
    DemoImage("skimage", "data/cell.png", "Microscopy", None, labels=("cell",)),
)


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise UserError(f"the demo needs the '{package}' package; reinstall medtrinity (`make demo` does it)")
    return Path(spec.origin).parent


@register_layout("demo")
class DemoLayout:
    def __init__(self, recipe: Recipe, root: Path) -> None:
        self.recipe = recipe

    def check(self) -> None:
        for image in DEMO_IMAGES:
            if not (package_dir(image.package) / image.file).is_file():
                raise UserError(f"demo image {image.package}/{image.file} is missing; reinstall {image.package}")

    def items(self) -> Iterator[SourceItem]:
        for image in DEMO_IMAGES:
            # The root is the folder holding the package, so origin.file reads "pydicom/data/…".
            root = package_dir(image.package).parent
            overlay = [DicomOverlay(image.overlay_label)] if image.overlay_label else []
            yield SourceItem(
                source=self.recipe.name,
                root=str(root),
                file=f"{image.package}/{image.file}",
                modality=image.modality,
                organ=image.organ,
                disease=image.disease,
                labels=list(image.labels),
                frame=image.frame,
                window=image.window,
                annotations=overlay,
                expert="auto",
            )
