"""`medtrinity view` in headless Chromium over a real build: filter by modality, open a record, find the
overlay drawn where the ROI is (and nowhere far from it), switch the ROI off, see the quarantine.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them); skipped, saying so, without them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
FAR = 15  # pixels: farther than this from the box and its label nothing is drawn


def far_margin(width: int, height: int) -> int:
    """Pixels around the box where its label may be: the label (about 1/35 of the image high) starts at the box's
    top-left corner and may run right of it and, on a flat box, below it."""
    return FAR + 2 * max(11, round(max(width, height) / 35))


# Compares the overlay the page shows with the stored image, pixel by pixel, in the browser's own decoding.
COMPARE_JS = """
const [overlaySrc, storedSrc, box, far, done] = arguments;
const load = (src) => new Promise((ok, fail) => { const i = new Image(); i.onload = () => ok(i); i.onerror = fail; i.src = src; });
Promise.all([load(overlaySrc), load(storedSrc)]).then(([overlay, stored]) => {
  const w = stored.naturalWidth, h = stored.naturalHeight;
  const canvas = document.createElement("canvas"); canvas.width = w; canvas.height = h;
  const g = canvas.getContext("2d", {willReadFrequently: true});
  g.drawImage(overlay, 0, 0); const a = g.getImageData(0, 0, w, h).data;
  g.clearRect(0, 0, w, h); g.drawImage(stored, 0, 0); const b = g.getImageData(0, 0, w, h).data;
  const [x0, y0, x1, y1] = box;
  let inside = 0, insideChanged = 0, farAway = 0, farChanged = 0, changed = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = 4 * (y * w + x);
    const differs = a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2];
    changed += differs;
    if (x >= x0 && x < x1 && y >= y0 && y < y1) { inside++; insideChanged += differs; }
    else if (y >= y1 + far || y < y0 - far || x < x0 - far) { farAway++; farChanged += differs; }
  }
  done({size: [overlay.naturalWidth, overlay.naturalHeight, w, h], inside, insideChanged, farAway, farChanged, changed});
}).catch((err) => done({error: String(err)}));
"""


def _browser():
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip(
            "headless Chromium is not installed (apt-get install chromium chromium-driver): "
            "the browser test of the viewer did not run"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]'): the browser test of the viewer did not run")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def _pick_record(build: Path) -> dict:
    """A record with one ROI that leaves room around it, from a modality with several records."""
    rows = [
        r
        for p in sorted((build / "data").glob("part-*.parquet"))
        for r in pq.read_table(p, columns=["id", "modality", "rois", "width", "height"]).to_pylist()
    ]
    per_modality = {m: sum(r["modality"] == m for r in rows) for m in {r["modality"] for r in rows}}
    for row in rows:
        if len(row["rois"]) != 1 or per_modality[row["modality"]] < 3:
            continue
        x0, y0, x1, y1 = row["rois"][0]["bbox"]
        margin = far_margin(row["width"], row["height"])
        if (x1 - x0) * (y1 - y0) >= 100 and (row["height"] - y1 > 2 * margin or y0 > 2 * margin or x0 > 2 * margin):
            return row | {"count": per_modality[row["modality"]], "margin": margin}
    raise AssertionError("the miniature build has no record with one ROI and room around it")


@pytest.fixture
def viewer_url(miniature_build):
    process = subprocess.Popen(
        [sys.executable, "-m", "medtrinity.cli", "view", str(miniature_build), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "listening on 127.0.0.1" in line, line + process.stderr.read()
        yield line.split(" at ", 1)[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_viewer_in_a_browser(miniature_build, viewer_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    record = _pick_record(miniature_build)
    box = record["rois"][0]["bbox"]
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(viewer_url)
        assert driver.find_element(By.ID, "matching").text == str(sum(1 for _ in _all_ids(miniature_build)))
        # the modality filter: only that modality is left, all of it
        driver.find_element(
            By.CSS_SELECTOR, f'section[data-facet="modality"] a[data-value="{record["modality"]}"]'
        ).click()
        wait.until(lambda d: "modality=" in d.current_url)
        cards = driver.find_elements(By.CSS_SELECTOR, "#cards .card")
        assert {c.get_attribute("data-modality") for c in cards} == {record["modality"]}
        assert len(cards) == record["count"] == int(driver.find_element(By.ID, "matching").text)
        # open the record
        driver.find_element(By.CSS_SELECTOR, f'#cards .card[data-id="{record["id"]}"]').click()
        wait.until(lambda d: d.find_element(By.ID, "overlay").get_property("complete"))
        assert driver.find_element(By.ID, "record-id").text == record["id"]
        overlay = driver.find_element(By.ID, "overlay")
        stored = driver.find_element(By.ID, "stored-image").get_attribute("href")
        drawn = driver.execute_async_script(COMPARE_JS, overlay.get_attribute("src"), stored, box, record["margin"])
        assert "error" not in drawn, drawn
        assert drawn["size"] == [record["width"], record["height"]] * 2  # full resolution
        assert drawn["insideChanged"] > 0.5 * drawn["inside"], drawn  # the mask fill and outline
        assert drawn["farAway"] > 0 and drawn["farChanged"] == 0, drawn
        # switch the ROI off: the overlay is the stored image again
        driver.find_element(By.ID, "roi-0").click()
        wait.until(lambda d: "hide=0" in d.find_element(By.ID, "overlay").get_attribute("src"))
        wait.until(lambda d: d.find_element(By.ID, "overlay").get_property("complete"))
        hidden = driver.execute_async_script(COMPARE_JS, overlay.get_attribute("src"), stored, box, record["margin"])
        assert hidden["changed"] == 0, hidden
        # the quarantine page lists the quarantined input
        driver.get(viewer_url + "quarantine")
        table = driver.find_element(By.ID, "quarantined").text
        quarantined = [
            r
            for p in sorted((miniature_build / "quarantine").glob("part-*.parquet"))
            for r in pq.read_table(p).to_pylist()
        ]
        assert quarantined
        for row in quarantined:
            assert row["file"] in table and row["stage"] in table
    finally:
        driver.quit()


def _all_ids(build: Path):
    for path in sorted((build / "data").glob("part-*.parquet")):
        yield from pq.read_table(path, columns=["id"]).column("id").to_pylist()
