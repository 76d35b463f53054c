"""One reader interface for 2D images (PNG, JPEG, TIFF, …) and single DICOM files.

`read_image` returns an `ImageData`: the stored image as 8-bit pixels plus the geometry and the exact
intensity rule applied, so a user can trace every pixel back to the file. Formats are recognised by
content (`sniff_format`); volume formats (NIfTI, DICOM series) plug in beside these readers and reuse
the same intensity helpers (`window_to_uint8`, `percentile_to_uint8`, `WINDOW_PRESETS`).

Patient identifiers never leave this module: `ImageData` only has the fields below.

Patient side (`patient_left_on_image`): "right" when the image's right side shows the patient's left,
"left" for the reverse, None when it cannot be derived. Rules, in this order:
1. ImageOrientationPatient (cross-sections): DICOM's patient axes are LPS, +x pointing to the patient's
   left. The row direction cosine is the direction of increasing column index, i.e. towards the
   image's right. If it points mainly along x (|x| > 0.7, within ~45 degrees), x > 0 gives "right"
   (standard axial/coronal slices) and x < 0 gives "left". Otherwise (sagittal, strongly oblique) None.
2. PatientOrientation (projection images): its first value is the patient direction of the rows
   (towards the image's right): "L…" gives "right", "R…" gives "left"; other directions give None.
3. ViewPosition PA or AP without PatientOrientation: the radiological display convention (patient
   facing the viewer) puts the patient's left on the image's right, so "right".
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medtrinity.errors import StageError, UserError

if TYPE_CHECKING:
    from PIL import Image as PILImage
    from pydicom.dataset import Dataset

# Pillow's hard decompression-bomb limit (2 x its default MAX_IMAGE_PIXELS); applied to every format.
MAX_IMAGE_PIXELS = 178_956_970

PERCENTILE_LOW, PERCENTILE_HIGH = 0.5, 99.5
PERCENTILE_RULE = "percentile 0.5-99.5 to 8-bit"

# CT windows in Hounsfield units: (label, level, width).
WINDOW_PRESETS: dict[str, tuple[str, float, float]] = {
    "soft-tissue": ("soft tissue", 40, 400),
    "lung": ("lung", -600, 1500),
    "bone": ("bone", 400, 1800),
    "brain": ("brain", 40, 80),
    "mediastinum": ("mediastinum", 50, 350),
}
# Default CT window by BodyPartExamined; everything else (chest included) gets soft tissue, because a
# lung window hides the mediastinum and most findings the ROI stage looks for. Ask for "lung" explicitly.
_CT_WINDOW_BY_BODY_PART = {"HEAD": "brain", "BRAIN": "brain", "SKULL": "brain"}
_CUSTOM_WINDOW = re.compile(r"^L(-?\d+(?:\.\d+)?)/W(\d+(?:\.\d+)?)$")

# DICOM Modality (0008,0060) -> records.MODALITIES; absent or None: the file does not say.
DICOM_MODALITY_MAP: dict[str, str | None] = {
    "CT": "CT", "MR": "MRI", "CR": "X-Ray", "DX": "X-Ray", "RG": "X-Ray", "DR": "X-Ray", "XA": "X-Ray",
    "RF": "X-Ray", "PX": "X-Ray", "IO": "X-Ray", "MG": "X-Ray", "US": "Ultrasound", "PT": "PET",
    "NM": "Nuclear Medicine", "ES": "Endoscopy", "OPT": "OCT", "SM": "Histopathology", "GM": "Microscopy",
    "OT": None, "SC": None,
}

# BodyPartExamined (0018,0015) defined terms -> organ words. The tag is free text in practice (sites put
# names and notes there), so only these terms are copied; anything else becomes None.
BODY_PART_ORGANS: dict[str, str] = {
    "ABDOMEN": "abdomen", "ABDOMENPELVIS": "abdomen and pelvis", "ABDPELV": "abdomen and pelvis",
    "CHEST": "chest", "THORAX": "chest", "CHESTABDOMEN": "chest and abdomen", "CHESTABDPELVIS": "chest, abdomen and pelvis",
    "HEAD": "head", "HEADNECK": "head and neck", "BRAIN": "brain", "SKULL": "skull", "NECK": "neck",
    "PELVIS": "pelvis", "SPINE": "spine", "CSPINE": "cervical spine", "TSPINE": "thoracic spine",
    "LSPINE": "lumbar spine", "SSPINE": "sacral spine", "EXTREMITY": "extremity", "ARM": "arm", "HAND": "hand",
    "WRIST": "wrist", "ELBOW": "elbow", "FOREARM": "forearm", "HUMERUS": "humerus", "LEG": "leg", "FOOT": "foot",
    "ANKLE": "ankle", "KNEE": "knee", "FEMUR": "femur", "SHOULDER": "shoulder", "CLAVICLE": "clavicle",
    "HIP": "hip", "BREAST": "breast", "HEART": "heart", "LUNG": "lung", "LIVER": "liver", "KIDNEY": "kidney",
    "PANCREAS": "pancreas", "SPLEEN": "spleen", "PROSTATE": "prostate", "BLADDER": "bladder", "COLON": "colon",
    "STOMACH": "stomach", "ESOPHAGUS": "esophagus", "THYROID": "thyroid", "JAW": "jaw", "EYE": "eye",
    "WHOLEBODY": "whole body", "WHOLE BODY": "whole body",
}
# ViewPosition (0018,5101) defined terms (projection radiography and mammography); others become None.
VIEW_POSITIONS = frozenset({
    "AP", "PA", "LL", "RL", "LLD", "RLD", "LLO", "RLO", "LATERAL", "LAT", "CC", "MLO", "ML", "LM", "LMO",
    "XCCL", "XCCM", "FB", "SIO", "ISO",
})
_PATIENT_DIRECTION = re.compile(r"^[APLRHF]{1,3}$")  # PatientOrientation values: patient direction letters
_YBR_PHOTOMETRICS = ("YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_PARTIAL_422", "YBR_ICT", "YBR_RCT")
# Loggers that print header values or decoder tracebacks while pydicom reads or decodes.
_DICOM_LOGGERS = ("pydicom", "pydicom.pixels.decoders.base", "pydicom.pixels.utils", "pydicom.pixels.encoders.base",
                  "pylibjpeg", "openjpeg")

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_DICOM_SUFFIXES = (".dcm", ".dicom")


@dataclass(repr=False, eq=False)  # eq would compare pixel arrays ambiguously
class ImageData:
    """A 2D image as stored, made 8-bit, with the rule that made it so and the geometry the file gives."""

    pixels: np.ndarray  # uint8, HxW (gray) or HxWx3 (RGB)
    intensity: str  # the normalisation/windowing rule applied
    spacing: list[float] | None = None  # row, column spacing in mm
    orientation: str | None = None  # compact ImageOrientationPatient, or the view ("PA")
    modality_hint: str | None = None  # a records.MODALITIES value the file states
    body_part: str | None = None  # lower-case BodyPartExamined
    n_frames: int = 1
    patient_left_on_image: str | None = None  # "left"/"right": the image side showing the patient's left

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def __repr__(self) -> str:
        return (
            f"ImageData(shape={self.pixels.shape}, intensity={self.intensity!r}, spacing={self.spacing}, "
            f"orientation={self.orientation!r}, modality_hint={self.modality_hint!r}, "
            f"body_part={self.body_part!r}, n_frames={self.n_frames}, "
            f"patient_left_on_image={self.patient_left_on_image!r})"
        )


# ---------------------------------------------------------------- dispatch
def sniff_format(path: str | Path) -> str:
    """"dicom", "tiff" or "raster" (anything Pillow may read), from the file's first bytes and suffix."""
    with open(path, "rb") as f:
        head = f.read(132)
    if head[128:132] == b"DICM" or Path(path).suffix.lower() in _DICOM_SUFFIXES:
        return "dicom"
    if head[:4] in _TIFF_MAGIC:
        return "tiff"
    return "raster"


def read_image(
    path: str | Path,
    frame: int | None = None,
    window: str | None = None,
    slice_index: int | None = None,
    axis: str | None = None,
) -> ImageData:
    """Read one 2D image, one DICOM frame or one NIfTI slice as 8-bit pixels. `window` names a CT preset
    (see WINDOW_PRESETS) or a custom window "L<level>/W<width>" in HU; it applies to CT DICOM and to NIfTI
    volumes in HU. `slice_index`/`axis` select the slice of a NIfTI volume (sources/volume.py); for other
    files they only describe where the file sits (a DICOM series slice is its own file) and are ignored."""
    path = Path(path)
    _check_readable_file(path)
    from medtrinity.sources.volume import is_nifti, read_volume_slice

    if is_nifti(path):
        if frame is not None:
            raise StageError("a NIfTI volume has slices, not frames: give a slice index")
        return read_volume_slice(path, slice_index=slice_index, axis=axis, window=window)
    fmt = sniff_format(path)
    if fmt == "dicom":
        return _read_dicom_image(path, frame, window)
    if window is not None:
        raise StageError(f"window {window!r} applies to CT DICOM only; this file is not DICOM")
    if fmt == "tiff":
        return _read_tiff_image(path, frame)
    return _read_raster_image(path, frame)


def read_mask(
    path: str | Path, expected_shape: tuple[int, int], threshold: int = 127, value: int | None = None,
    name: str | None = None,
) -> np.ndarray:
    """A bool HxW mask from a mask image: stored value > threshold, or == value for label maps.

    Values are the stored ones (no normalisation); RGB masks use the max channel, palette masks their
    indices. Masks stored as 0/1 need threshold=0. `name` (the mask's path relative to the source root)
    names the mask in reasons; the file name is used without it, never the absolute path.
    """
    path = Path(path)
    name = name or path.name
    try:
        _check_readable_file(path)
        values = _read_tiff_mask_values(path) if sniff_format(path) == "tiff" else _read_raster_mask_values(path)
    except StageError as e:
        raise StageError(f"mask {name}: {e}") from e
    height, width = expected_shape
    if values.shape != (height, width):
        raise StageError(
            f"mask {name} is {values.shape[1]}x{values.shape[0]} but its image is {width}x{height}"
        )
    return values == value if value is not None else values > threshold


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of uint8 HxW or HxWx3 pixels (compression level 3: fast, still lossless)."""
    import io

    from PIL import Image

    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"encode_png needs uint8 HxW or HxWx3 pixels, got {pixels.dtype} {pixels.shape}")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def decode_image_bytes(data: bytes) -> np.ndarray:
    """uint8 HxW (gray) or HxWx3 (RGB) pixels of encoded image bytes (PNG, JPEG, …)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode not in ("L", "RGB"):
                img = img.convert("RGB")
            return np.asarray(img).copy()
    except UnidentifiedImageError as e:
        raise StageError("image bytes are not a recognised image format") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise StageError(f"truncated or corrupt image bytes: {e}") from e


# ---------------------------------------------------------------- intensity rules (shared with volume readers)
def window_to_uint8(values: np.ndarray, level: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Linear window [level - width/2, level + width/2] -> 0..255 (clipped, rounded);
    function "SIGMOID" uses DICOM's sigmoid VOI function instead."""
    x = values.astype(np.float64)
    if function.upper() == "SIGMOID":
        scaled = 1.0 / (1.0 + np.exp(-4.0 * (x - level) / width))
    else:
        scaled = (x - (level - width / 2.0)) / width
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def range_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """[low, high] -> 0..255 linearly (clipped, rounded); a constant image (high <= low) becomes 0."""
    x = values.astype(np.float64)
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.clip((x - low) / (high - low), 0.0, 1.0)
    return np.rint(np.nan_to_num(scaled, nan=0.0) * 255.0).astype(np.uint8)


def percentile_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0:
        return 0.0, 0.0
    low, high = np.percentile(finite, [PERCENTILE_LOW, PERCENTILE_HIGH])
    return float(low), float(high)


def percentile_to_uint8(values: np.ndarray) -> np.ndarray:
    """The 0.5th..99.5th percentile of all values (channels together) -> 0..255."""
    return range_to_uint8(values, *percentile_range(values))


def resolve_window(window: str) -> tuple[str, float, float]:
    """(label, level, width) of a preset name or a custom "L<level>/W<width>"; UserError if neither."""
    if window in WINDOW_PRESETS:
        return WINDOW_PRESETS[window]
    custom = _CUSTOM_WINDOW.match(window)
    if custom:
        return "custom", float(custom.group(1)), float(custom.group(2))
    raise UserError(f"unknown window {window!r}: use one of {', '.join(WINDOW_PRESETS)} or L<level>/W<width>")


def _to_uint8(values: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    """8-bit values as they are; bool as 0/255; anything else by percentile (one range for all channels)."""
    if values.dtype == np.uint8:
        return values, f"8-bit {what} as stored"
    if values.dtype == bool:
        return values.astype(np.uint8) * 255, f"1-bit {what} as 0/255"
    depth = f"{values.dtype.itemsize * 8}-bit" + (" float" if values.dtype.kind == "f" else "")
    return percentile_to_uint8(values), f"{depth} {what} {PERCENTILE_RULE}"


def _composite_on_black(values: np.ndarray, alpha: np.ndarray, alpha_max: float) -> np.ndarray:
    """Premultiply by alpha (transparent -> black), keeping the dtype."""
    weight = alpha.astype(np.float64) / alpha_max
    if values.ndim == 3:
        weight = weight[..., None]
    out = values.astype(np.float64) * weight
    return np.rint(out).astype(values.dtype) if values.dtype.kind in "iub" else out.astype(values.dtype)


def _with_alpha(values: np.ndarray, alpha: np.ndarray, alpha_max: float, what: str) -> tuple[np.ndarray, str]:
    """Drop an opaque alpha, otherwise composite on black; then make 8-bit."""
    if alpha.min() >= alpha_max:
        pixels, rule = _to_uint8(values, what)
        return pixels, f"{rule} (opaque alpha dropped)"
    pixels, rule = _to_uint8(_composite_on_black(values, alpha, alpha_max), what)
    return pixels, f"alpha composited on black; {rule}"


# ---------------------------------------------------------------- file checks
def _check_readable_file(path: Path) -> None:
    if not path.is_file():
        raise StageError(f"file {path.name} not found")
    if path.stat().st_size == 0:
        raise StageError("empty file (0 bytes)")


def _check_pixel_count(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise StageError(
            f"image of {width * height} pixels ({width}x{height}) exceeds the limit of {MAX_IMAGE_PIXELS} "
            "pixels (decompression bomb guard): refused"
        )


def _check_frame(frame: int, n_frames: int) -> None:
    if not 0 <= frame < n_frames:
        raise StageError(f"frame {frame} out of range: the file has {n_frames} frame(s)")


# ---------------------------------------------------------------- Pillow (PNG, JPEG, BMP, GIF, TIFF fallback)
def _open_raster(path: Path, frame: int | None) -> PILImage.Image:
    """The decoded Pillow image (frame `frame`), with format errors and bombs turned into StageError."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # MAX_IMAGE_PIXELS, checked before decoding, is the one limit: Pillow's warning below it is noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except UnidentifiedImageError as e:
            raise StageError("not a readable image (unrecognised format)") from e
        except Image.DecompressionBombError as e:
            raise StageError(f"refused as a decompression bomb: {e}") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise StageError(f"truncated or corrupt image: {e}") from e
        try:
            _load_frame(img, frame)
        except BaseException:
            img.close()
            raise
    return img


def _load_frame(img: PILImage.Image, frame: int | None) -> None:
    from PIL import Image

    _check_pixel_count(*img.size)
    n_frames = int(getattr(img, "n_frames", 1))
    if frame is not None:
        _check_frame(frame, n_frames)
    try:
        if frame:
            img.seek(frame)
        img.load()
    except Image.DecompressionBombError as e:
        raise StageError(f"refused as a decompression bomb: {e}") from e
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, zlib.error, struct.error …
        raise StageError(f"truncated or corrupt {img.format or 'image'}: {e}") from e


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from the PNG header (IHDR), which Pillow hides for 16-bit RGB."""
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24] if len(head) == 26 and head[12:16] == b"IHDR" else None


def _raster_pixels(img: PILImage.Image, path: Path) -> tuple[np.ndarray, str]:
    mode = img.mode
    if mode == "1":
        return np.asarray(img.convert("L")).copy(), "1-bit gray as 0/255"
    if mode == "L":
        return np.asarray(img).copy(), "8-bit gray as stored"
    if mode == "RGB":
        if img.format == "PNG" and _png_bit_depth(path) == 16:
            return np.asarray(img).copy(), "16-bit RGB PNG reduced to 8-bit by Pillow (high byte)"
        return np.asarray(img).copy(), "8-bit RGB as stored"
    if mode in ("P", "PA"):
        rgba = np.asarray(img.convert("RGBA"))
        pixels, rule = _with_alpha(rgba[..., :3], rgba[..., 3], 255, "RGB")
        return pixels, f"palette converted to RGB; {rule}"
    if mode in ("LA", "La"):
        la = np.asarray(img.convert("LA"))
        return _with_alpha(la[..., 0], la[..., 1], 255, "gray")
    if mode in ("RGBA", "RGBa"):
        rgba = np.asarray(img.convert("RGBA"))
        return _with_alpha(rgba[..., :3], rgba[..., 3], 255, "RGB")
    if mode == "RGBX":
        return np.asarray(img.convert("RGB")).copy(), "8-bit RGB as stored"
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(img.convert("RGB")).copy(), f"{mode} converted to RGB"
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(img)
        if values.dtype.byteorder == ">":
            values = values.astype(values.dtype.newbyteorder("="))
        return _to_uint8(values, "gray")
    raise StageError(f"unsupported image mode {mode} ({img.format})")


def _raster_mask_values(img: PILImage.Image) -> np.ndarray:
    mode = img.mode
    if mode == "1":
        return np.asarray(img.convert("L"))
    if mode in ("L", "P", "I", "F") or mode.startswith("I;16"):
        return np.asarray(img)  # palette masks: the indices are the labels
    if mode in ("LA", "La", "PA"):
        return np.asarray(img)[..., 0]
    if mode in ("RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(img.convert("RGB")).max(axis=2)
    raise StageError(f"unsupported mask mode {mode} ({img.format})")


def _read_raster_image(path: Path, frame: int | None) -> ImageData:
    with _open_raster(path, frame) as img:
        pixels, rule = _raster_pixels(img, path)
        return ImageData(pixels=pixels, intensity=rule, n_frames=int(getattr(img, "n_frames", 1)))


def _read_raster_mask_values(path: Path) -> np.ndarray:
    with _open_raster(path, None) as img:
        return _raster_mask_values(img)


# ---------------------------------------------------------------- TIFF (tifffile; Pillow where a codec is missing)
@dataclass
class _TiffPage:
    values: np.ndarray  # HxW or HxWxS (samples last)
    photometric: int
    extrasamples: tuple[int, ...]
    colormap: np.ndarray | None
    n_frames: int


def _tiff_page(path: Path, frame: int | None) -> _TiffPage | None:
    """The page's values and tags, or None where Pillow should decode the page instead:
    tifffile lacks the codec (it needs imagecodecs for LZW, JPEG, …) or the photometric is not handled here."""
    import tifffile
    from tifffile import PHOTOMETRIC

    handled = (PHOTOMETRIC.MINISBLACK, PHOTOMETRIC.MINISWHITE, PHOTOMETRIC.RGB, PHOTOMETRIC.PALETTE,
               PHOTOMETRIC.SEPARATED)
    try:
        with tifffile.TiffFile(path) as tif:
            n_frames = len(tif.pages)
            index = 0 if frame is None else frame
            _check_frame(index, n_frames)
            page = tif.pages[index]
            _check_pixel_count(int(page.imagewidth), int(page.imagelength))
            if page.photometric not in handled:
                return None  # YCbCr, CIELab, …
            try:
                values = page.asarray()
            except ValueError as e:
                if "imagecodecs" in str(e):
                    return None
                raise
            axes = page.axes
            tags = (int(page.photometric), tuple(int(e) for e in page.extrasamples or ()), page.colormap)
    except StageError:
        raise
    except Exception as e:  # tifffile raises TiffFileError, ValueError, OSError, struct.error …
        raise StageError(f"truncated or corrupt TIFF: {e}") from e
    if "S" in axes:
        values = np.moveaxis(values, axes.index("S"), -1)
    if values.ndim not in (2, 3):
        raise StageError(f"unsupported TIFF page layout {axes} {values.shape}")
    return _TiffPage(values, *tags, n_frames=n_frames)


def _tiff_pixels(page: _TiffPage) -> tuple[np.ndarray, str]:
    from tifffile import PHOTOMETRIC

    values, photometric = page.values, page.photometric
    if photometric == PHOTOMETRIC.PALETTE and values.ndim == 2:
        rgb = np.moveaxis(page.colormap[:, values], 0, -1)
        pixels = (rgb >> 8).astype(np.uint8) if rgb.dtype == np.uint16 else rgb.astype(np.uint8)
        return pixels, "palette converted to RGB"
    if photometric == PHOTOMETRIC.SEPARATED and values.ndim == 3 and values.shape[2] >= 4:
        from PIL import Image

        cmyk = _to_uint8(values[..., :4], "CMYK")[0]
        return np.asarray(Image.fromarray(cmyk, "CMYK").convert("RGB")).copy(), "CMYK converted to RGB"
    if values.ndim == 2:
        pixels, rule = _to_uint8(values, "gray")
    else:
        pixels, rule = _tiff_samples(values, page)
    if photometric == PHOTOMETRIC.MINISWHITE:
        return 255 - pixels, f"{rule}; MINISWHITE inverted"
    return pixels, rule


def _tiff_samples(values: np.ndarray, page: _TiffPage) -> tuple[np.ndarray, str]:
    """HxWxS: RGB(+extras) or multi-channel. Extra sample 1/2 (associated/unassociated alpha) is alpha."""
    from tifffile import PHOTOMETRIC

    n = values.shape[2]
    colour = 3 if page.photometric == PHOTOMETRIC.RGB or n >= 3 else 1
    extras = page.extrasamples
    has_alpha = n > colour and bool(extras) and extras[0] in (1, 2)
    base = values[..., :colour] if colour == 3 else values[..., 0]
    what = "RGB" if colour == 3 else "gray"
    if has_alpha:
        alpha_max = float(np.iinfo(values.dtype).max) if values.dtype.kind in "iu" else 1.0
        pixels, rule = _with_alpha(base, values[..., colour], alpha_max, what)
    else:
        pixels, rule = _to_uint8(base, what)
    if n - colour - int(has_alpha):
        used = "samples 0-2" if colour == 3 else "sample 0"
        rule = f"{rule}; {used} of {n} used"
    return pixels, rule


def _read_tiff_image(path: Path, frame: int | None) -> ImageData:
    page = _tiff_page(path, frame)
    if page is None:
        image = _read_raster_image(path, frame)
        image.intensity = f"{image.intensity} (decoded by Pillow)"
        return image
    pixels, rule = _tiff_pixels(page)
    return ImageData(pixels=pixels, intensity=rule, n_frames=page.n_frames)


def _read_tiff_mask_values(path: Path) -> np.ndarray:
    page = _tiff_page(path, None)
    if page is None:
        return _read_raster_mask_values(path)
    values = page.values
    return values if values.ndim == 2 else values[..., : min(3, values.shape[2])].max(axis=2)


# ---------------------------------------------------------------- DICOM
def dicom_frame_count(path: str | Path) -> int:
    """NumberOfFrames of a DICOM file (1 when absent)."""
    path = Path(path)
    _check_readable_file(path)
    with dicom_reading():
        return _n_frames(_read_dicom_dataset(path, stop_before_pixels=True))


def read_dicom_overlay(path: str | Path, group: int = 0x6000, frame: int = 0) -> np.ndarray | None:
    """The overlay plane of `group` (0x6000..0x601E) as a bool mask the size of the image, placed at
    its OverlayOrigin; None if the file has no overlay in that group or none for that frame."""
    path = Path(path)
    _check_readable_file(path)
    with dicom_reading():
        return _read_overlay(path, group, frame)


def _read_overlay(path: Path, group: int, frame: int) -> np.ndarray | None:
    ds = _read_dicom_dataset(path, stop_before_pixels=True)  # overlays (60xx) come before pixel data
    _check_frame(frame, _n_frames(ds))
    if (group, 0x0010) not in ds:
        return None
    if (group, 0x3000) not in ds:
        raise StageError(f"overlay {group:04X} is kept in the pixel data's unused bits (retired form): not supported")
    planes = ds.overlay_array(group).astype(bool)
    first = int(ds[(group, 0x0051)].value) - 1 if (group, 0x0051) in ds else 0
    if planes.ndim == 3:
        if not 0 <= frame - first < planes.shape[0]:
            return None
        planes = planes[frame - first]
    origin = ds.get((group, 0x0050))
    row0, col0 = (int(origin.value[0]) - 1, int(origin.value[1]) - 1) if origin is not None else (0, 0)
    return _place(planes, _count(ds, "Rows") or 0, _count(ds, "Columns") or 0, row0, col0)


def _place(plane: np.ndarray, rows: int, cols: int, row0: int, col0: int) -> np.ndarray:
    """`plane` put at (row0, col0) of a rows x cols canvas, clipped to it."""
    canvas = np.zeros((rows, cols), dtype=bool)
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + plane.shape[0], rows), min(col0 + plane.shape[1], cols)
    if r1 > r0 and c1 > c0:
        canvas[r0:r1, c0:c1] = plane[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0]
    return canvas


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """pydicom reading without value validation, warnings or log records, restored afterwards.

    Validation warnings quote the invalid header value and decoders log tracebacks quoting the data; header
    values may be patient identifiers, and stderr is a CLI output. Values are converted lazily on access, so
    every use of a dataset must happen inside this context, not only dcmread."""
    from pydicom import config

    loggers = [logging.getLogger(name) for name in _DICOM_LOGGERS]
    was_disabled = [logger.disabled for logger in loggers]
    mode = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    for logger in loggers:
        logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        config.settings.reading_validation_mode = mode
        for logger, disabled in zip(loggers, was_disabled):
            logger.disabled = disabled


@contextmanager
def dicom_reading() -> Iterator[None]:
    """`quiet_pydicom`, and any failure other than StageError/UserError becomes a StageError that names
    only the exception type: pydicom's messages on corrupt files quote header values."""
    try:
        with quiet_pydicom():
            yield
    except (StageError, UserError):
        raise
    except Exception as e:  # corrupt headers raise ValueError, TypeError, AttributeError, NotImplementedError …
        raise StageError(f"corrupt DICOM file: could not be parsed ({exception_name(e)})") from e


def exception_name(error: BaseException) -> str:
    """The exception's type as a reader can place it ("ValueError", "struct.error"), never its message."""
    kind = type(error)
    return kind.__name__ if kind.__module__ == "builtins" or kind.__name__[0].isupper() else f"{kind.__module__}.{kind.__name__}"


def _read_dicom_dataset(path: Path, stop_before_pixels: bool = False) -> Dataset:
    """The dataset, with pixel data (if read) deferred: its bytes load only when decoded."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        # force: files without the 128-byte preamble (ACR-NEMA style) are still DICOM.
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=stop_before_pixels, defer_size="64 KB")
    except InvalidDicomError as e:
        raise StageError("not a readable DICOM file") from e
    except Exception as e:  # truncated headers raise EOFError, struct.error, ValueError …
        raise StageError(f"truncated or corrupt DICOM file ({exception_name(e)})") from e
    # Forced reading parses anything; without the 'DICM' prefix, ask for elements every image file has.
    if ds.preamble is None and not any(k in ds for k in ("SOPClassUID", "Modality", "Rows")):
        raise StageError("not a DICOM file (no 'DICM' prefix and no DICOM image elements)")
    return ds


def _is_truncated(ds: Dataset, path: Path) -> bool:
    """Whether the file ends inside an element: pydicom stops silently at the end of a cut file, so the
    last element read is shorter than its stated length, or a partial element header follows it."""
    from pydicom.dataelem import RawDataElement

    if not ds._dict:
        return False
    last = ds._dict[max(ds._dict)]
    if not isinstance(last, RawDataElement) or last.length == 0xFFFFFFFF:
        return False
    end = last.value_tell + last.length
    return end > path.stat().st_size or 0 < path.stat().st_size - end < 8


def _header(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """A top-level header value; a value pydicom cannot parse is a StageError naming the tag, not its value."""
    try:
        return ds.get(keyword, default)
    except Exception as e:
        raise StageError(f"corrupt DICOM header (could not parse {keyword})") from e


def _header_text(ds: Dataset, keyword: str) -> str:
    """A code string as upper-case text ("" when absent or not text)."""
    value = _header(ds, keyword)
    return value.strip().upper() if isinstance(value, str) else ""


def _number(value: Any, keyword: str) -> float:
    """The first value of a (possibly multi-valued) number tag as a finite float."""
    try:
        number = _first(value)
    except (TypeError, ValueError, IndexError) as e:
        raise StageError(f"corrupt DICOM header: {keyword} is not a number") from e
    if not math.isfinite(number):
        raise StageError(f"corrupt DICOM header: {keyword} is not a number")
    return number


def _count(ds: Dataset, keyword: str) -> int | None:
    """A positive count tag (Rows, Columns, NumberOfFrames); None when absent."""
    value = _header(ds, keyword)
    if value in (None, ""):
        return None
    try:
        count = int(value)
    except (TypeError, ValueError) as e:
        raise StageError(f"corrupt DICOM header: {keyword} is not a number") from e
    if count < 1:
        raise StageError(f"corrupt DICOM header: {keyword} is {count}")
    return count


def uid_name(value: Any, unknown: str) -> str:
    """The registered name of a DICOM UID, else `unknown`. Never the value itself: pydicom's UID.name
    returns the raw value for unregistered UIDs, and a corrupt length makes that value swallow the
    elements after it (patient name, ID, birth date …)."""
    from pydicom.uid import UID_dictionary

    return UID_dictionary[value][0] if isinstance(value, str) and value in UID_dictionary else unknown


def _n_frames(ds: Dataset) -> int:
    return _count(ds, "NumberOfFrames") or 1


def _transfer_syntax(ds: Dataset):
    """The file's transfer syntax; for files without file meta, the encoding the header was read in."""
    from pydicom.uid import (
        UID,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        UID_dictionary,
    )

    meta = ds.file_meta
    if "TransferSyntaxUID" in meta:
        syntax = _header(meta, "TransferSyntaxUID")
        if not (isinstance(syntax, str) and syntax in UID_dictionary and UID_dictionary[syntax][1] == "Transfer Syntax"):
            raise StageError("corrupt DICOM header: TransferSyntaxUID is not a known transfer syntax")
        return UID(syntax)
    implicit, little = ds.original_encoding
    syntax = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    meta.TransferSyntaxUID = syntax  # on our in-memory copy only, so the decoder knows the layout
    return syntax


def _check_decoder(syntax) -> None:
    from pydicom.pixels import get_decoder

    if not syntax.is_compressed:
        return
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as e:
        raise StageError(f"{uid_name(syntax, 'unknown transfer syntax')}: pydicom has no decoder for this transfer syntax") from e
    if not decoder.is_available:
        options = [_install_hint(dep) for dep in decoder.missing_dependencies]
        raise StageError(f"{uid_name(syntax, 'unknown transfer syntax')}: no decoder installed; install one of {', '.join(options)} to decode")


def _install_hint(missing: str) -> str:
    """'pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-openjpeg>=2.0' -> 'pylibjpeg + pylibjpeg-openjpeg'."""
    wanted = missing.split("requires", 1)[-1]
    names = [re.split(r"[<>=!~]", part.strip())[0] for part in wanted.split(" and ")]
    return " + ".join(name for name in names if name and name != "numpy")


def _frame_value(ds: Dataset, frame: int, keyword: str) -> Any:
    """A value at the top level, else in the frame's per-frame functional groups, else the shared ones
    (enhanced multi-frame CT/MR keep rescale, window, spacing and orientation there). A value pydicom
    cannot parse is a StageError naming the tag."""
    try:
        return _find_frame_value(ds, frame, keyword)
    except StageError:
        raise
    except Exception as e:
        raise StageError(f"corrupt DICOM header (could not parse {keyword})") from e


def _find_frame_value(ds: Dataset, frame: int, keyword: str) -> Any:
    if keyword in ds:
        return ds[keyword].value
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        for element in group:
            if element.VR == "SQ" and element.value and keyword in element.value[0]:
                return element.value[0][keyword].value
    return None


def _first(value: Any) -> float:
    """First value of a possibly multi-valued DS (WindowCenter "450\\200" -> 450.0)."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        value = value[0]
    return float(value)


def _num(value: float) -> str:
    return f"{value:g}"


def _read_dicom_image(path: Path, frame: int | None, window: str | None) -> ImageData:
    with dicom_reading():
        return _read_dicom_frame(path, frame, window)


def _read_dicom_frame(path: Path, frame: int | None, window: str | None) -> ImageData:
    header = _read_dicom_dataset(path, stop_before_pixels=True)
    syntax = _transfer_syntax(header)
    _check_decoder(syntax)
    n_frames = _n_frames(header)
    index = 0 if frame is None else frame
    _check_frame(index, n_frames)
    rows, columns = _count(header, "Rows"), _count(header, "Columns")
    if rows is not None and columns is not None:
        _check_pixel_count(columns, rows)
    preset = resolve_window(window) if window is not None else None
    modality = _header_text(header, "Modality")
    if preset is not None and modality != "CT":
        stated = modality if modality in DICOM_MODALITY_MAP else "unknown"  # a defined term, never free text
        raise StageError(f"window {window!r} applies to CT (HU) but this file's modality is {stated}")

    ds = _read_dicom_dataset(path)
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        if _is_truncated(ds, path):
            raise StageError("truncated DICOM file (it ends inside an element)")
        sop = _header(ds, "SOPClassUID") or _header(ds.file_meta, "MediaStorageSOPClassUID")
        kind = f" ({uid_name(sop, 'unknown SOP class')})" if sop else ""
        raise StageError(f"DICOM file has no pixel data{kind}")
    _transfer_syntax(ds)
    pixels, rule = _dicom_pixels(ds, index, preset, modality, syntax)
    return ImageData(
        pixels=pixels,
        intensity=rule,
        spacing=_dicom_spacing(ds, index),
        orientation=_dicom_orientation(ds, index),
        modality_hint=DICOM_MODALITY_MAP.get(modality),
        body_part=BODY_PART_ORGANS.get(_header_text(ds, "BodyPartExamined")),
        n_frames=n_frames,
        patient_left_on_image=_patient_left_on_image(ds, index),
    )


def _decode_frame(ds: Dataset, index: int, syntax) -> np.ndarray:
    """The frame's stored values. Decoder messages are not passed on: they quote the data, memory addresses
    and plugin chatter over several lines."""
    from pydicom.pixels import pixel_array

    try:
        return pixel_array(ds, index=index)  # YBR_FULL(_422) come back as RGB
    except Exception as e:
        name = uid_name(syntax, "unknown transfer syntax")
        if syntax.is_compressed:
            raise StageError(f"could not decode {name} pixel data") from e
        raise StageError(f"truncated or corrupt DICOM pixel data ({name})") from e


def _dicom_pixels(ds: Dataset, index: int, preset: tuple[str, float, float] | None, modality: str, syntax):
    from pydicom.pixels import apply_color_lut

    values = _decode_frame(ds, index, syntax)
    photometric = _header_text(ds, "PhotometricInterpretation") or "MONOCHROME2"
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(values, ds)
        pixels = (rgb >> 8).astype(np.uint8) if rgb.dtype == np.uint16 else rgb.astype(np.uint8)
        return pixels, "PALETTE COLOR converted to RGB"
    if values.ndim == 3:  # samples per pixel 3: RGB, or YBR already converted by the decoder
        pixels, rule = _to_uint8(values, "RGB")
        if photometric in _YBR_PHOTOMETRICS:
            return pixels, f"{photometric} converted to RGB; {rule}"
        return pixels, rule
    pixels, rule = _dicom_gray(ds, index, values, preset, modality)
    if photometric == "MONOCHROME1":
        return 255 - pixels, f"{rule}; MONOCHROME1 inverted"
    return pixels, rule


def _modality_lut(ds: Dataset, index: int, values: np.ndarray) -> np.ndarray:
    """Stored values -> output units (HU for CT) via pydicom's Modality LUT, with rescale taken from the
    functional groups when an enhanced multi-frame file keeps it there."""
    from pydicom.dataset import Dataset
    from pydicom.pixels import apply_modality_lut

    if "ModalityLUTSequence" in ds:
        return apply_modality_lut(values, ds)
    slope, intercept = _frame_value(ds, index, "RescaleSlope"), _frame_value(ds, index, "RescaleIntercept")
    if slope is None and intercept is None:
        return values
    rescale = Dataset()
    rescale.RescaleSlope = 1.0 if slope is None else _number(slope, "RescaleSlope")
    rescale.RescaleIntercept = 0.0 if intercept is None else _number(intercept, "RescaleIntercept")
    return apply_modality_lut(values, rescale)


def _dicom_gray(ds: Dataset, index: int, values: np.ndarray, preset, modality: str) -> tuple[np.ndarray, str]:
    from pydicom.pixels import apply_voi

    values = _modality_lut(ds, index, values)
    if modality == "CT":
        if preset is None:
            body_part = _header_text(ds, "BodyPartExamined")
            preset = WINDOW_PRESETS[_CT_WINDOW_BY_BODY_PART.get(body_part, "soft-tissue")]
        label, level, width = preset
        return window_to_uint8(values, level, width), f"CT window {label} (L{_num(level)} W{_num(width)}) HU"
    center, width = _frame_value(ds, index, "WindowCenter"), _frame_value(ds, index, "WindowWidth")
    if center is not None and width is not None and _number(width, "WindowWidth") > 0:
        level, span = _number(center, "WindowCenter"), _number(width, "WindowWidth")
        function = str(_frame_value(ds, index, "VOILUTFunction") or "LINEAR").upper()
        rule = f"DICOM window L{_num(level)}/W{_num(span)}" + (" sigmoid" if function == "SIGMOID" else "")
        low, high = percentile_range(values)
        if level + span / 2 >= low and level - span / 2 <= high:
            return window_to_uint8(values, level, span, function), rule
        # A window that misses the data entirely would give a blank image.
        return percentile_to_uint8(values), f"{PERCENTILE_RULE} ({rule} misses the data range)"
    if "VOILUTSequence" in ds:
        mapped = apply_voi(values, ds, index=0)
        lut = np.asarray(ds.VOILUTSequence[0].LUTData)
        return range_to_uint8(mapped, float(lut.min()), float(lut.max())), "DICOM VOI LUT (first) min-max to 8-bit"
    return percentile_to_uint8(values), PERCENTILE_RULE


def _dicom_spacing(ds: Dataset, index: int) -> list[float] | None:
    """PixelSpacing (row, column mm), else ImagerPixelSpacing (at the detector, for projection images)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = _frame_value(ds, index, keyword)
        if value is not None and isinstance(value, Sequence) and len(value) == 2:
            spacing = [_number(v, keyword) for v in value]
            if all(v > 0 for v in spacing):
                return spacing
    return None


def _image_orientation(ds: Dataset, index: int) -> list[float] | None:
    """ImageOrientationPatient as six finite numbers, or None."""
    iop = _frame_value(ds, index, "ImageOrientationPatient")
    if iop is None or not isinstance(iop, Sequence) or len(iop) != 6:
        return None
    return [_number(v, "ImageOrientationPatient") for v in iop]


def _view_position(ds: Dataset) -> str | None:
    """ViewPosition when it is a defined term (free text there may name the patient)."""
    view = _header_text(ds, "ViewPosition")
    return view if view in VIEW_POSITIONS else None


def _patient_orientation(ds: Dataset) -> tuple[str, str] | None:
    """PatientOrientation (rows, columns) when both are patient direction letters (A P L R H F)."""
    value = _header(ds, "PatientOrientation")
    if isinstance(value, str):
        value = value.split("\\")
    if not isinstance(value, Sequence) or len(value) != 2:
        return None
    parts = [str(v).strip().upper() for v in value]
    return (parts[0], parts[1]) if all(_PATIENT_DIRECTION.match(p) for p in parts) else None


def _dicom_orientation(ds: Dataset, index: int) -> str | None:
    iop = _image_orientation(ds, index)
    if iop is not None:
        return ",".join(_num(round(v, 4) + 0.0) for v in iop)  # + 0.0 turns -0.0 into 0
    view = _view_position(ds)
    rows_cols = _patient_orientation(ds)
    parts = [view] if view else []
    if rows_cols is not None:
        parts.append(f"rows {rows_cols[0]}, columns {rows_cols[1]}")
    return "; ".join(parts) or None


def _patient_left_on_image(ds: Dataset, index: int) -> str | None:
    """See the module docstring for the rules."""
    iop = _image_orientation(ds, index)
    if iop is not None:
        row_x = iop[0]
        if abs(row_x) > 0.7:
            return "right" if row_x > 0 else "left"
        return None
    rows_cols = _patient_orientation(ds)
    if rows_cols is not None:
        return {"L": "right", "R": "left"}.get(rows_cols[0][0])
    if _view_position(ds) in ("PA", "AP"):
        return "right"
    return None
