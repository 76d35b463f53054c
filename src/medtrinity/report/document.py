"""A small document model (headings, paragraphs, tables, images, code) written as Markdown or as one
self-contained HTML file (images embedded), so the card and report.html say the same thing."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str  # `code` spans are the only markup


@dataclass
class Table:
    headers: list[str]
    rows: list[list]
    numeric: tuple[int, ...] = ()  # columns aligned right


@dataclass
class Figure:
    path: Path  # the PNG file
    alt: str


@dataclass
class Code:
    text: str
    language: str = ""


Block = Heading | Paragraph | Table | Figure | Code


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block], relative_to: Path) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Table):
            align = ["---:" if i in block.numeric else "---" for i in range(len(block.headers))]
            lines = ["| " + " | ".join(_cell(h) for h in block.headers) + " |", "| " + " | ".join(align) + " |"]
            lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        elif isinstance(block, Figure):
            out.append(f"![{block.alt}]({block.path.relative_to(relative_to).as_posix()})")
        elif isinstance(block, Code):
            out.append(f"```{block.language}\n{block.text}\n```")
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


_NUMERIC = ' class="n"'
_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #1c1c1c; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 2px 10px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def to_html(blocks: list[Block], title: str) -> str:
    head = (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>"
    )
    out = [head]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            out.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block.headers)
            body = "".join(
                "<tr>"
                + "".join(
                    f"<td{_NUMERIC if i in block.numeric else ''}>{_inline(str(v))}</td>" for i, v in enumerate(row)
                )
                + "</tr>"
                for row in block.rows
            )
            out.append(f"<table><tr>{head}</tr>{body}</table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(block.path.read_bytes()).decode()
            out.append(f'<figure><img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}"></figure>')
        elif isinstance(block, Code):
            out.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
    out.append("</body></html>\n")
    return "\n".join(out)
