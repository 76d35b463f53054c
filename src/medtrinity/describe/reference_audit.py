"""Audit a source's own caption (`reference_text`) against the record, beside the description's checks.

A released caption (MedTrinity-25M's) is verified exactly as a description is (`describe.verify.verify`:
position, side, area, ROI count, modality, organ) against the recovered ROIs and the source's metadata. Its
checks are written into the record's `checks` named "reference:<check>" (e.g. "reference:position"), after
the description's own, and never quarantine the record: a contradiction in the release is what the audit
reports, not a fault of this build. Only items that ask for it (`audit_reference`, set by the layout) are
audited; other sources' reference texts (VQA questions, reports) are no captions of the image.
"""

from __future__ import annotations

from medtrinity.records import Check, Sample

PREFIX = "reference:"


def reference_checks(sample: Sample) -> list[Check]:
    """The checks of the sample's reference text, named "reference:<check>"; [] without a reference text."""
    from medtrinity.describe.verify import verify

    if not sample.reference_text:
        return []
    return [Check(PREFIX + c.name, c.ok, c.detail, c.status) for c in verify(sample, sample.reference_text)]


def contradicted(checks: list[Check] | list[dict]) -> bool:
    """Whether any reference check of a record (as Check objects or rows read back) failed."""
    return any(
        (c.name if isinstance(c, Check) else c["name"]).startswith(PREFIX)
        and (c.status if isinstance(c, Check) else c.get("status")) == "fail"
        for c in checks
    )


class ReferenceAuditStage:
    """After verify: appends the reference checks of the items that ask for an audit."""

    name = "audit"

    def __call__(self, sample: Sample) -> Sample:
        if getattr(sample.item, "audit_reference", False):
            sample.checks = [c for c in sample.checks if not c.name.startswith(PREFIX)] + reference_checks(sample)
        return sample
