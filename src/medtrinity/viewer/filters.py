"""The gallery's filters: read from the URL, written back to it, and turned into a DuckDB WHERE clause.

The URL holds every filter (`?modality=CT&roi_source=annotation&q=lesion`), so a view can be shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from medtrinity.errors import UserError


@dataclass(frozen=True)
class Facet:
    key: str  # URL parameter
    title: str
    column: str  # column of the `records` view (see catalog.py)
    listed: bool = False  # the column is a list: a record matches when the list holds the value
    only_when_set: bool = False  # shown only where some record has a value (not for a build of other sources)


FACETS: tuple[Facet, ...] = (
    Facet("source", "source", "source"),
    Facet("split", "split", "split"),
    Facet("modality", "modality", "modality"),
    Facet("organ", "organ", "organ"),
    Facet("disease", "disease", "disease"),
    Facet("describer", "describer", "describer"),
    Facet("roi_source", "ROI source", "roi_sources", listed=True),
    Facet("failed", "failed check", "failed_checks", listed=True),
    # a source that is itself a compiled dataset (MedTrinity-25M) names each image's dataset, and its caption is
    # audited against the record (describe/reference_audit.py)
    Facet("source_dataset", "dataset named by the source", "source_dataset", only_when_set=True),
    Facet("reference", "source's caption", "reference_caption", only_when_set=True),
)
FACET_BY_KEY = {f.key: f for f in FACETS}
NONE = "(none)"  # the value that selects records where a scalar facet is null
ANY_FAILED = "(any)"  # the `failed` value that selects records with at least one failed check
CONTRADICTED, NOT_CONTRADICTED = "contradicted", "not contradicted"  # the `reference` values of an audited caption


@dataclass(frozen=True)
class Filters:
    values: dict[str, str] = field(default_factory=dict)  # facet key -> selected value
    q: str = ""  # free text: every word must occur in the description

    @classmethod
    def from_params(cls, params: dict[str, list[str]]) -> Filters:
        values = {}
        for facet in FACETS:
            given = [v for v in params.get(facet.key, []) if v != ""]
            if given:
                values[facet.key] = given[-1]
        return cls(values, " ".join(params.get("q", [""])[-1].split()))

    def where(self, without: str | None = None, text_match: str | None = None) -> tuple[str, list]:
        """(SQL condition, parameters) for these filters; `without` leaves one facet out (for its counts).
        `text_match`: a condition that stands for the free-text search (the catalog's cached hits), else the
        search is a condition on a `description` column."""
        terms, args = ["TRUE"], []
        for key, value in self.values.items():
            if key == without:
                continue
            facet = FACET_BY_KEY[key]
            if facet.listed and key == "failed" and value == ANY_FAILED:
                terms.append(f"len({facet.column}) > 0")
            elif facet.listed:
                terms.append(f"list_contains({facet.column}, ?)")
                args.append(value)
            elif value == NONE:
                terms.append(f"{facet.column} IS NULL")
            else:
                terms.append(f"{facet.column} = ?")
                args.append(value)
        if text_match and self.q:
            terms.append(text_match)
        else:
            text, words = self.text_condition()
            terms += [text] if words else []
            args += words
        return " AND ".join(terms), args

    def text_condition(self) -> tuple[str, list[str]]:
        """(condition on `description`, words): every word of the search, in any case."""
        words = self.q.lower().split()
        # contains(): no LIKE wildcards to escape
        return " AND ".join(["contains(lower(description), ?)"] * len(words)) or "TRUE", words

    def params(self, **changes: str | None) -> dict[str, str]:
        """These filters as URL parameters, with `changes` applied (None removes a key)."""
        out = dict(self.values) | ({"q": self.q} if self.q else {})
        for key, value in changes.items():
            if value is None or value == "":
                out.pop(key, None)
            else:
                out[key] = value
        return out

    def query(self, **changes: str | None) -> str:
        """`?…` for a link (empty when no filter is set)."""
        params = self.params(**changes)
        return "?" + urlencode(params) if params else ""

    def is_empty(self) -> bool:
        return not self.values and not self.q


def page_size(params: dict[str, list[str]], default: int = 48, largest: int = 500) -> int:
    text = params.get("size", [str(default)])[-1]
    try:
        size = int(text)
    except ValueError:
        raise UserError(f"size must be a whole number, got {text!r}") from None
    if not 1 <= size <= largest:
        raise UserError(f"size must be between 1 and {largest}, got {size}")
    return size
