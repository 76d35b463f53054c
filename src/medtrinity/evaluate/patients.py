"""Patients seen in two splits, where a recipe's file layout names the patient; reported by salted hash only.

The patient id lies in the publisher's path (`origin.file`): MIMIC-CXR-JPG `files/pNN/p<subject>/…`,
CheXpert `…/patient<N>/…`, BraTS 2021 `BraTS2021_<N>/…`, KiTS23 `case_<N>/…`. The id never leaves this
module: a report shows an HMAC-SHA256 of it under a salt drawn for that report and never written, so the
report groups a patient's records without saying who the patient is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PATIENT_IN_PATH: dict[str, re.Pattern[str]] = {
    "mimic-cxr-jpg": re.compile(r"(?:^|/)files/p\d{2}/p(\d+)/"),
    "chexpert": re.compile(r"(?:^|/)(patient\d+)/"),
    "brats2021": re.compile(r"(?:^|/)BraTS2021_(\d+)(?:/|_)"),
    "kits23": re.compile(r"(?:^|/)case_(\d+)/"),
}
HASH_CHARS = 16


class PatientKeys:
    """Salted hashes of patient ids for one report."""

    def __init__(self, salt: bytes | None = None) -> None:
        self._salt = salt or secrets.token_bytes(32)

    def key(self, source: str, file: str | None) -> str | None:
        """The hash of the patient behind `file` of `source`, or None where the recipe names no patient."""
        pattern = PATIENT_IN_PATH.get(source)
        found = pattern.search(file or "") if pattern else None
        if found is None:
            return None
        message = f"{source}\0{found.group(1)}".encode()
        return hmac.new(self._salt, message, hashlib.sha256).hexdigest()[:HASH_CHARS]
