"""summary.md and the report's tables as self-contained HTML pages, for Snakemake's HTML report.

`snakemake --report` shows an HTML output inline (in an iframe) but offers Markdown and CSV files
only as downloads, so the summary and the tables are also written as HTML: markdown rendered with
markdown-it-py (CommonMark + tables, raw HTML off), figures the summary links to embedded as data URIs
(the report is one file; relative links would lead nowhere), CSVs as HTML tables.
"""

from __future__ import annotations

import base64
import html
import os
import re

import pandas as pd
from markdown_it import MarkdownIt

from archbench.io import atomic_file

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; line-height: 1.5; margin: 1.5em auto;
       max-width: 72em; padding: 0 1em; color: #1f2328; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
th { background: #f6f8fa; } td:first-child, th:first-child { text-align: left; }
code { background: #f6f8fa; padding: 0 0.2em; } figure { margin: 1em 0; } img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #57606a; }
"""
# Figures embedded per link at most (a large grid's loss curves would make a page of many MB).
MAX_FIGURES = 12
# A relative link in the rendered summary (its figure list: PNG files and the loss-curve folder).
_LINK = re.compile(r'<a href="([^":#]+)">([^<]*)</a>')


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def markdown_html(text: str, base: str = ".") -> str:
    """Markdown -> HTML body; links to PNG files (relative to ``base``) become embedded figures, a link
    to a folder of PNGs (the loss curves) one figure per file; other links stay as they are."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)

    def embed(match: re.Match) -> str:
        path = os.path.join(base, html.unescape(match.group(1)))
        if os.path.isdir(path):
            files = [(os.path.join(path, n), f"{match.group(2)}: {n[:-4]}") for n in sorted(os.listdir(path))]
        else:
            files = [(path, match.group(2))]
        files = [(f, name) for f, name in files if f.endswith(".png") and os.path.isfile(f)]
        if not files:
            return match.group(0)
        more = len(files) - MAX_FIGURES
        shown = "".join(_figure(f, name) for f, name in files[:MAX_FIGURES])
        return shown + (f"<p>({more} more in <code>{match.group(1)}</code>)</p>" if more > 0 else "")

    return _LINK.sub(embed, body)


def _figure(png: str, name: str) -> str:
    with open(png, "rb") as f:
        data = base64.b64encode(f.read()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{name}"><figcaption>{name}</figcaption></figure>'


def write_markdown_page(md: str, out: str, title: str = "archbench summary") -> None:
    """``md`` (e.g. summary.md) -> the self-contained HTML page ``out``."""
    with open(md, encoding="utf-8") as f:
        body = markdown_html(f.read(), os.path.dirname(md) or ".")
    with atomic_file(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(page(title, body))


def write_tables_page(tables: dict[str, str], out: str, title: str = "archbench tables") -> None:
    """``{heading: csv path}`` -> one HTML page with a section per table (missing or empty files say so)."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for heading, csv in tables.items():
        parts.append(f"<h2>{html.escape(heading)}</h2><p><code>{html.escape(os.path.basename(csv))}</code></p>")
        try:
            frame = pd.read_csv(csv)
        except (FileNotFoundError, pd.errors.EmptyDataError):
            parts.append("<p>(no rows)</p>")
            continue
        parts.append(frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.6g}", border=0))
    with atomic_file(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(page(title, "\n".join(parts)))
