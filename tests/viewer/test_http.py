"""The viewer over HTTP: status codes, JSON, filters with counts, keyset paging over 10 000 generated records."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import quote

import pytest
from viewer.http_client import fetch, fetch_json
from viewer.large_build import EXPERT, MODALITIES, expected

N = 10_000
FACTS = [expected(i) for i in range(N)]


def test_paging_visits_every_record_once_in_build_order(large_url):
    seen, after, pages = [], None, 0
    while True:
        status, page = fetch_json(f"{large_url}/api/records?size=500" + (f"&after={after}" if after else ""))
        assert status == 200 and page["matching"] == N
        seen += [r["id"] for r in page["records"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break
    assert pages == 20
    assert seen == [f["id"] for f in FACTS]


def test_previous_page_is_the_page_before(large_url):
    _, first = fetch_json(f"{large_url}/api/records?size=48")
    assert first["prev_before"] is None and first["records"][0]["id"] == "r00000"
    _, second = fetch_json(f"{large_url}/api/records?size=48&after={first['next_after']}")
    assert second["records"][0]["id"] == "r00048"
    _, back = fetch_json(f"{large_url}/api/records?size=48&before={second['prev_before']}")
    assert [r["id"] for r in back["records"]] == [r["id"] for r in first["records"]]
    assert back["prev_before"] is None  # it is the first page again
    # across a shard boundary (2000 rows per shard)
    _, late = fetch_json(f"{large_url}/api/records?size=10&after=part-00000:1994")
    assert [r["id"] for r in late["records"]] == [f"r{i:05d}" for i in range(1995, 2005)]


def test_modality_filter_and_its_paging(large_url):
    want = [f["id"] for f in FACTS if f["modality"] == "MRI"]
    got, after = [], None
    while True:
        _, page = fetch_json(f"{large_url}/api/records?modality=MRI&size=400" + (f"&after={after}" if after else ""))
        assert page["matching"] == len(want) == 2000
        assert {r["modality"] for r in page["records"]} <= {"MRI"}
        got += [r["id"] for r in page["records"]]
        after = page["next_after"]
        if not after:
            break
    assert got == want


@pytest.mark.parametrize(
    "query, keep",
    [
        ("organ=lung", lambda f: f["organ"] == "lung"),
        ("organ=(none)", lambda f: f["organ"] is None),
        ("split=test&modality=CT", lambda f: f["split"] == "test" and f["modality"] == "CT"),
        (f"roi_source={quote(EXPERT)}", lambda f: f["roi_source"] == EXPERT),
        ("failed=side", lambda f: "side" in f["failed"]),
        ("failed=(any)&organ=liver", lambda f: bool(f["failed"]) and f["organ"] == "liver"),
        ("q=marker3", lambda f: f["marker"] == "marker3"),
        ("q=MARKER3+ultrasound", lambda f: f["marker"] == "marker3" and f["modality"] == "Ultrasound"),
        ("q=nowhere", lambda f: False),
    ],
)
def test_filters_count_exactly(large_url, query, keep):
    _, page = fetch_json(f"{large_url}/api/records?size=5&{query}")
    want = [f["id"] for f in FACTS if keep(f)]
    assert page["matching"] == len(want)
    assert [r["id"] for r in page["records"]] == want[:5]


def test_facet_counts_leave_out_their_own_filter(large_url):
    _, facets = fetch_json(f"{large_url}/api/facets?modality=CT&organ=lung")
    # modality counts: under organ=lung only
    modality = {v["value"]: v["count"] for v in facets["modality"]["values"]}
    assert modality == Counter(f["modality"] for f in FACTS if f["organ"] == "lung")
    assert facets["modality"]["selected"] == "CT"
    # organ counts: under modality=CT only, nulls as "(none)"
    organ = {v["value"]: v["count"] for v in facets["organ"]["values"]}
    assert organ == Counter(f["organ"] or "(none)" for f in FACTS if f["modality"] == "CT")
    both = [f for f in FACTS if f["modality"] == "CT" and f["organ"] == "lung"]
    roi = {v["value"]: v["count"] for v in facets["roi_source"]["values"]}
    assert roi == Counter(f["roi_source"] for f in both if f["roi_source"])
    failed = {v["value"]: v["count"] for v in facets["failed"]["values"]}
    assert failed == {"(any)": sum(bool(f["failed"]) for f in both), "side": sum(bool(f["failed"]) for f in both)}


def test_gallery_page_holds_filters_in_its_links(large_url):
    status, kind, body = fetch(f"{large_url}/?modality=X-Ray&q=marker5&size=12")
    html = body.decode()
    assert status == 200 and kind.startswith("text/html")
    want = [f for f in FACTS if f["modality"] == "X-Ray" and f["marker"] == "marker5"]
    assert f'<span id="matching">{len(want)}</span>' in html
    cards = re.findall(r'class="card" href="/record/(r\d+)\?([^"]*)"', html)
    assert [c[0] for c in cards] == [f["id"] for f in want[:12]]
    assert all(query == "modality=X-Ray&amp;q=marker5" for _, query in cards)
    next_link = re.search(r'id="next-page" rel="next" href="/\?([^"]*)"', html).group(1)
    assert next_link == f"modality=X-Ray&amp;q=marker5&amp;after=part-00000%3A{int(want[11]['id'][1:])}&amp;size=12"
    assert all(m == "X-Ray" for m in re.findall(r'data-modality="([^"]+)"', html))


def test_record_page_and_its_neighbours_under_filters(large_url):
    status, _, body = fetch(f"{large_url}/record/r00014?modality={MODALITIES[4]}")
    html = body.decode()
    assert status == 200
    # r00014 is Endoscopy (14 % 5 == 4); its Endoscopy neighbours are r00009 and r00019
    assert 'href="/record/r00009?modality=Endoscopy"' in html and 'href="/record/r00019?modality=Endoscopy"' in html
    # the failed check (14 % 7 == 0) comes first, marked as failed
    checks = re.findall(r'<li class="check (\w[\w-]*)"><b>(\w+)</b>', html)
    assert checks == [("fail", "side"), ("pass", "modality")]


def test_record_json_and_images(large_url):
    status, record = fetch_json(f"{large_url}/api/record/r00042")
    assert status == 200 and record["id"] == "r00042" and record["modality"] == "X-Ray"
    assert record["image"]["url"] == "/image/r00042"
    status, kind, body = fetch(f"{large_url}/image/r00042")
    assert (status, kind) == (200, "image/png") and body[:8] == b"\x89PNG\r\n\x1a\n"
    for path in ("/overlay/r00042.png", "/overlay/r00042.png?hide=0&masks=0", "/thumb/r00042.png"):
        status, kind, body = fetch(large_url + path)
        assert (status, kind) == (200, "image/png") and body[:4] == b"\x89PNG", path


@pytest.mark.parametrize(
    "path, status",
    [
        ("/record/nope", 404),
        ("/api/record/nope", 404),
        ("/image/nope", 404),
        ("/nowhere", 404),
        ("/static/../app.py", 404),
        ("/api/records?after=garbage", 400),
        ("/api/records?size=0", 400),
        ("/api/records?size=ten", 400),
        ("/overlay/r00001.png?hide=x", 400),
    ],
)
def test_errors_have_their_status(large_url, path, status):
    got, _, body = fetch(large_url + path)
    assert got == status, body[:300]


def test_the_viewer_only_reads(large_url, large_build):
    before = {p: p.stat().st_mtime_ns for p in large_build.rglob("*")}
    assert fetch(f"{large_url}/api/records", method="POST")[0] == 405
    assert fetch(f"{large_url}/record/r00001", method="DELETE")[0] == 405
    assert {p: p.stat().st_mtime_ns for p in large_build.rglob("*")} == before
