"""Reading DICOM headers without leaking them: quiet pydicom, header values as checked numbers and defined
terms, and failures that name a tag or an exception type, never a value.

Header values may be patient identifiers, and pydicom's warnings, log records and exception messages
quote them; everything here keeps them inside.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medtrinity.errors import StageError, UserError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# Loggers that print header values or decoder tracebacks while pydicom reads or decodes.
_DICOM_LOGGERS = (
    "pydicom",
    "pydicom.pixels.decoders.base",
    "pydicom.pixels.utils",
    "pydicom.pixels.encoders.base",
    "pylibjpeg",
    "openjpeg",
)


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
    return (
        kind.__name__
        if kind.__module__ == "builtins" or kind.__name__[0].isupper()
        else f"{kind.__module__}.{kind.__name__}"
    )


def read_dataset(path: Path, stop_before_pixels: bool = False) -> Dataset:
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


def is_truncated(ds: Dataset, path: Path) -> bool:
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


def header(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """A top-level header value; a value pydicom cannot parse is a StageError naming the tag, not its value."""
    try:
        return ds.get(keyword, default)
    except Exception as e:
        raise StageError(f"corrupt DICOM header (could not parse {keyword})") from e


def header_text(ds: Dataset, keyword: str) -> str:
    """A code string as upper-case text ("" when absent or not text)."""
    value = header(ds, keyword)
    return value.strip().upper() if isinstance(value, str) else ""


def number(value: Any, keyword: str) -> float:
    """The first value of a (possibly multi-valued) number tag as a finite float."""
    try:
        result = first_value(value)
    except (TypeError, ValueError, IndexError) as e:
        raise StageError(f"corrupt DICOM header: {keyword} is not a number") from e
    if not math.isfinite(result):
        raise StageError(f"corrupt DICOM header: {keyword} is not a number")
    return result


def first_value(value: Any) -> float:
    """First value of a possibly multi-valued DS (WindowCenter "450\\200" -> 450.0)."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        value = value[0]
    return float(value)


def count(ds: Dataset, keyword: str) -> int | None:
    """A positive count tag (Rows, Columns, NumberOfFrames); None when absent."""
    value = header(ds, keyword)
    if value in (None, ""):
        return None
    try:
        result = int(value)
    except (TypeError, ValueError) as e:
        raise StageError(f"corrupt DICOM header: {keyword} is not a number") from e
    if result < 1:
        raise StageError(f"corrupt DICOM header: {keyword} is {result}")
    return result


def n_frames(ds: Dataset) -> int:
    return count(ds, "NumberOfFrames") or 1


def uid_name(value: Any, unknown: str) -> str:
    """The registered name of a DICOM UID, else `unknown`. Never the value itself: pydicom's UID.name
    returns the raw value for unregistered UIDs, and a corrupt length makes that value swallow the
    elements after it (patient name, ID, birth date …)."""
    from pydicom.uid import UID_dictionary

    return UID_dictionary[value][0] if isinstance(value, str) and value in UID_dictionary else unknown


def transfer_syntax(ds: Dataset):
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
        syntax = header(meta, "TransferSyntaxUID")
        if not (
            isinstance(syntax, str) and syntax in UID_dictionary and UID_dictionary[syntax][1] == "Transfer Syntax"
        ):
            raise StageError("corrupt DICOM header: TransferSyntaxUID is not a known transfer syntax")
        return UID(syntax)
    implicit, little = ds.original_encoding
    syntax = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    meta.TransferSyntaxUID = syntax  # on our in-memory copy only, so the decoder knows the layout
    return syntax


def check_decoder(syntax) -> None:
    from pydicom.pixels import get_decoder

    if not syntax.is_compressed:
        return
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as e:
        raise StageError(
            f"{uid_name(syntax, 'unknown transfer syntax')}: pydicom has no decoder for this transfer syntax"
        ) from e
    if not decoder.is_available:
        options = [_install_hint(dep) for dep in decoder.missing_dependencies]
        raise StageError(
            f"{uid_name(syntax, 'unknown transfer syntax')}: no decoder installed; install one of {', '.join(options)} to decode"
        )


def _install_hint(missing: str) -> str:
    """'pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-openjpeg>=2.0' -> 'pylibjpeg + pylibjpeg-openjpeg'."""
    wanted = missing.split("requires", 1)[-1]
    names = [re.split(r"[<>=!~]", part.strip())[0] for part in wanted.split(" and ")]
    return " + ".join(name for name in names if name and name != "numpy")


def frame_value(ds: Dataset, frame: int, keyword: str) -> Any:
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
