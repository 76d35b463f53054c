"""The card's plots (matplotlib, PNG), each drawn from the measured counts of `BuildStats`."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

from medtrinity.report.stats import AREA_EDGES, BuildStats

MOST_SHOWN = 25  # bars per categorical plot; the rest are summed into one "other" bar
WORD_BIN = 10  # description length histogram: words per bin


def _top(counter: Counter) -> list[tuple[str, int]]:
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    if len(ranked) > MOST_SHOWN:
        rest = ranked[MOST_SHOWN - 1 :]
        ranked = ranked[: MOST_SHOWN - 1] + [(f"other ({len(rest)})", sum(n for _, n in rest))]
    return ranked


def _figure(rows: int = 0):
    import matplotlib

    matplotlib.use("Agg")  # no display; set before pyplot is imported
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, max(2.6, 0.28 * rows + 1.2)), dpi=100)
    return plt, fig, ax


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def _barh(counter: Counter, title: str, xlabel: str, path: Path, row_height: int = 1) -> Path:
    ranked = _top(counter)
    plt, fig, ax = _figure(len(ranked) * row_height)
    labels = [str(k) for k, _ in ranked][::-1]
    values = [n for _, n in ranked][::-1]
    bars = ax.barh(labels, values, color="#3b6ea5")
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.margins(x=0.12)
    return _save(plt, fig, path)


def plot_modalities(stats: BuildStats, path: Path) -> Path:
    return _barh(stats.by_modality, "Records per modality", "records", path)


def plot_organs(stats: BuildStats, path: Path) -> Path:
    return _barh(stats.by_organ, "Records per organ", "records", path)


def plot_roi_area(stats: BuildStats, path: Path) -> Path:
    plt, fig, ax = _figure()
    labels = [f"{AREA_EDGES[i]:g}–{AREA_EDGES[i + 1]:g}" for i in range(len(AREA_EDGES) - 1)]
    bars = ax.bar(labels, [stats.roi_area_bins.get(i, 0) for i in range(len(labels))], color="#3b6ea5")
    ax.bar_label(bars, fontsize=8)
    ax.set_title("ROI area distribution")
    ax.set_xlabel("ROI area, % of the image")
    ax.set_ylabel("ROIs")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    return _save(plt, fig, path)


def plot_rois_per_image(stats: BuildStats, path: Path) -> Path:
    plt, fig, ax = _figure()
    counts = sorted(stats.rois_per_image)
    bars = ax.bar([str(c) for c in counts], [stats.rois_per_image[c] for c in counts], color="#3b6ea5")
    ax.bar_label(bars, fontsize=8)
    ax.set_title("ROIs per image")
    ax.set_xlabel("ROIs in the record")
    ax.set_ylabel("records")
    return _save(plt, fig, path)


def plot_description_length(stats: BuildStats, path: Path) -> Path:
    binned: Counter = Counter()
    for words, n in stats.description_words.items():
        binned[words // WORD_BIN * WORD_BIN] += n
    plt, fig, ax = _figure()
    starts = sorted(binned)
    ax.bar(starts, [binned[s] for s in starts], width=WORD_BIN, align="edge", color="#3b6ea5", edgecolor="white")
    ax.set_title("Description length")
    ax.set_xlabel(f"words (bins of {WORD_BIN})")
    ax.set_ylabel("records")
    return _save(plt, fig, path)


def plot_check_pass_rate(stats: BuildStats, path: Path) -> Path:
    names = sorted(stats.checks)
    plt, fig, ax = _figure(len(names) + 2)
    left = [0.0] * len(names)
    for status, colour in (("pass", "#2e7d32"), ("not-verifiable", "#c77c00"), ("fail", "#b00020")):
        shares = [100 * stats.checks[n][status] / max(1, sum(stats.checks[n].values())) for n in names]
        ax.barh(names, shares, left=left, color=colour, label=status)
        left = [a + b for a, b in zip(left, shares)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the records the check ran on")
    ax.set_title("Check results per check")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8, frameon=False)
    return _save(plt, fig, path)


def plot_quarantine_reasons(stats: BuildStats, path: Path) -> Path:
    counter = Counter()
    for kind in stats.quarantine_reasons:
        text = f"{kind.stage}: {kind.reason}"
        text = text if len(text) <= 120 else text[:119] + "…"
        counter["\n".join(textwrap.wrap(text, 48))] += kind.count
    return _barh(counter, "Quarantine reasons", "inputs", path, row_height=3)


# file name -> (title, how to draw it); the quarantine plot only when something was quarantined
PLOTS = {
    "modality.png": ("Records per modality", plot_modalities),
    "organ.png": ("Records per organ", plot_organs),
    "roi_area.png": ("ROI area distribution", plot_roi_area),
    "rois_per_image.png": ("ROIs per image", plot_rois_per_image),
    "description_length.png": ("Description length", plot_description_length),
    "check_pass_rate.png": ("Check pass rate per check", plot_check_pass_rate),
    "quarantine_reasons.png": ("Quarantine reasons", plot_quarantine_reasons),
}


def draw_plots(stats: BuildStats, folder: Path) -> dict[str, Path]:
    """Every plot that has something to show, as PNG files in `folder`: {file name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for name, (_, draw) in PLOTS.items():
        if name == "quarantine_reasons.png" and not stats.quarantined:
            continue
        if name == "check_pass_rate.png" and not stats.checks:
            continue
        if not stats.records and name != "quarantine_reasons.png":
            continue
        drawn[name] = draw(stats, folder / name)
    return drawn
