"""The viewer over a build of the MedTrinity-25M miniature: the released captions' contradiction rate per source
dataset on the summary page and in its JSON, and the facets that find the contradicted captions — exact numbers."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from fixtures.build import build_source
from fixtures.medtrinity_25m import make_medtrinity_25m
from viewer.http_client import fetch, fetch_json, serving

SOURCE = "medtrinity-25m"
# demo_00002 states the wrong side, chexpert_p2 the wrong position, chexpert_p3 an MRI of the knee on CheXpert
CONTRADICTED = {"demo_00002", "chexpert_p2.jpg", "chexpert_p3.jpg"}
AUDIT = [
    {"source": SOURCE, "dataset": "(none)", "audited": 3, "contradicted": 1},
    {"source": SOURCE, "dataset": "brats", "audited": 1, "contradicted": 0},
    {"source": SOURCE, "dataset": "chexpert", "audited": 3, "contradicted": 2},
    {"source": SOURCE, "dataset": "deeplesion", "audited": 2, "contradicted": 0},
    {"source": SOURCE, "dataset": "NCT-CRC-HE-100K", "audited": 1, "contradicted": 0},
    {"source": SOURCE, "dataset": "pmc_oa", "audited": 1, "contradicted": 0},
]


@pytest.fixture(scope="module")
def release_build(tmp_path_factory):
    release = make_medtrinity_25m(tmp_path_factory.mktemp("release") / "MedTrinity-25M")
    out = tmp_path_factory.mktemp("build") / "out"
    _, rows, _ = build_source(f"{SOURCE}:{release}", out, on_contradiction="keep")
    return out, {r["origin"]["file"]: r["id"] for r in rows}


@pytest.fixture(scope="module")
def url(release_build):
    with serving(release_build[0]) as address:
        yield address


def test_summary_json_gives_the_rate_per_source_dataset(url):
    status, summary = fetch_json(f"{url}/api/quarantine")
    assert status == 200
    assert [
        {k: a[k] for k in ("source", "dataset", "audited", "contradicted")} for a in summary["caption_audit"]
    ] == AUDIT
    assert [round(a["rate"], 4) for a in summary["caption_audit"]] == [0.3333, 0.0, 0.6667, 0.0, 0.0, 0.0]


def test_summary_page_shows_the_rates_and_links_to_the_contradicted(url, release_build):
    _, ids = release_build
    status, kind, body = fetch(f"{url}/quarantine")
    page = body.decode()
    assert status == 200 and kind.startswith("text/html")
    table = page[page.index('<table class="numbers" id="caption-audit">') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 1 + len(AUDIT)
    assert (
        '<td>chexpert</td><td>3</td><td><a href="/?source=medtrinity-25m&amp;source_dataset=chexpert&amp;'
        'reference=contradicted">2</a></td><td>66.7%</td>' in table
    )
    assert "<td>(none)</td><td>3</td>" in table and "<td>33.3%</td>" in table
    # the link finds exactly the two contradicted CheXpert captions
    _, page_json = fetch_json(f"{url}/api/records?source=medtrinity-25m&source_dataset=chexpert&reference=contradicted")
    assert page_json["matching"] == 2
    assert {r["id"] for r in page_json["records"]} == {ids["chexpert_p2.jpg"], ids["chexpert_p3.jpg"]}


def test_facets_count_the_audited_captions(url, release_build):
    _, ids = release_build
    _, facets = fetch_json(f"{url}/api/facets")
    assert {v["value"]: v["count"] for v in facets["reference"]["values"]} == {"contradicted": 3, "not contradicted": 8}
    assert {v["value"]: v["count"] for v in facets["source_dataset"]["values"]} == {
        "(none)": 3,
        "chexpert": 3,
        "deeplesion": 2,
        "brats": 1,
        "NCT-CRC-HE-100K": 1,
        "pmc_oa": 1,
    }
    _, page = fetch_json(f"{url}/api/records?reference=contradicted")
    assert {r["id"] for r in page["records"]} == {ids[f] for f in CONTRADICTED}
    assert all(r["reference_caption"] == "contradicted" for r in page["records"])
    _, facets = fetch_json(f"{url}/api/facets?source_dataset=(none)")  # the demo rows name no dataset
    assert {v["value"]: v["count"] for v in facets["reference"]["values"]} == {"contradicted": 1, "not contradicted": 2}
    _, _, body = fetch(f"{url}/?reference=contradicted")
    assert body.decode().count("source's caption contradicted</span>") == 3


def test_record_page_says_what_contradicts_the_caption(url, release_build):
    _, ids = release_build
    status, _, body = fetch(f"{url}/record/{ids['chexpert_p2.jpg']}")
    page = body.decode()
    assert status == 200
    assert (
        '<p id="reference-audit" class="bad">Contradicted by the record: position (text says lower right but '
        "marked region is at top left (4.9%))</p>"
    ) in page
    assert "<tr><td>dataset named by the source</td><td>chexpert</td></tr>" in page
    assert "<tr><td>source&#39;s id</td><td>0-1</td></tr>" in page
    _, _, body = fetch(f"{url}/record/{ids['chexpert_p1.jpg']}")
    assert 'id="reference-audit"' not in body.decode()  # its caption agrees with the record


def test_a_build_without_audited_captions_shows_neither(large_url):
    _, facets = fetch_json(f"{large_url}/api/facets")
    assert facets["reference"]["values"] == [] and facets["source_dataset"]["values"] == []
    _, summary = fetch_json(f"{large_url}/api/quarantine")
    assert summary["caption_audit"] == []
    _, _, body = fetch(f"{large_url}/quarantine")
    assert b'id="caption-audit"' not in body and b'data-facet="reference"' not in fetch(f"{large_url}/")[2]
    assert json.loads(fetch(f"{large_url}/api/records?reference={quote('(none)')}&size=1")[2])["matching"] == 10_000
