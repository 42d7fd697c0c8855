"""What every report figure and table shares: an architecture's colour, name, marker and line style
(from the registry's order), saving a figure as PNG + SVG for a paper, a figure that says why it is
empty, writing a CSV, and each architecture's selected grid point (lowest mean validation loss; test
loss is only reported).

Matplotlib is imported on first drawing (:func:`pyplot`), not on import: a report question's table,
selection and sentence use the names and formats here without it.
"""

from __future__ import annotations

import os
import re

import pandas as pd

from archbench.io import atomic_file
from archbench.models.registry import ARCHS

SELECTION = "selected on validation loss; test loss reported"
# Print resolution; the PNG records it (pHYs), so a journal's 200-300 dpi check reads it from the file.
DPI = 200
# SVG text stays <text> (editable, searchable, the journal's font) instead of glyph outlines.
SAVE_RC = {"svg.fonttype": "none"}
# Architectures whose lines coincide (Transformer and Llama share a KV cache) stay distinguishable in
# print and for colour-blind readers: each gets its own marker and dash pattern, by registry order.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)))
MODES = {"kv_cache": "KV cache", "recurrent": "recurrent state", "recompute": "full recompute", "decode": "decode"}


def color(arch: str) -> str:
    """The registry's colour of ``arch``; unregistered names get grey."""
    return ARCHS[arch].color if arch in ARCHS else "tab:gray"


def display(arch: str) -> str:
    """The registry's human-readable name of ``arch`` (the name itself when unregistered)."""
    return ARCHS[arch].display if arch in ARCHS else arch


def style(arch: str) -> tuple[str, str]:
    return color(arch), display(arch)


def _rank(arch: str) -> int:
    names = list(ARCHS)
    return names.index(arch) if arch in names else len(names) + sum(map(ord, arch))


def marker(arch: str) -> str:
    """The architecture's own marker (registry order), so coinciding series stay visible."""
    return MARKERS[_rank(arch) % len(MARKERS)]


def linestyle(arch: str):
    """The architecture's own dash pattern (registry order)."""
    return LINESTYLES[_rank(arch) % len(LINESTYLES)]


def marker_size(arch: str) -> float:
    """Smaller for later architectures (registry order): a point drawn over an equal one stays visible
    inside it (the Transformer's and Llama's KV caches coincide)."""
    return max(8.0 - 1.2 * _rank(arch), 3.5)


def line_kw(arch: str) -> dict:
    """Colour, marker (and size), dash pattern and legend name of an architecture's line (matplotlib keywords)."""
    return {
        "color": color(arch),
        "marker": marker(arch),
        "ms": marker_size(arch),
        "ls": linestyle(arch),
        "label": display(arch),
    }


def mode_name(mode: str) -> str:
    """A decoding mode in words: kv_cache -> KV cache."""
    return MODES.get(mode, str(mode).replace("_", " "))


def point_words(point: str) -> str:
    """A grid point in words: learning_rate~0.003_embed_dim~128 (or with /) -> learning rate 0.003,
    embed dim 128. Anything else comes back as is."""
    parts = re.findall(r"([A-Za-z]\w*?)~(.+?)(?=[_/][A-Za-z]\w*?~|$)", point)
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in parts) if parts else point


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display on cluster nodes; chosen before pyplot loads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, png: str, svg: bool = True) -> None:
    """Write ``fig`` to ``png`` (and the same name with ``.svg``), atomically, and close it."""
    import matplotlib

    os.makedirs(os.path.dirname(png) or ".", exist_ok=True)
    fig.tight_layout()
    with matplotlib.rc_context(SAVE_RC):
        with atomic_file(png) as tmp:
            fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")  # long grid labels
        if svg:
            with atomic_file(os.path.splitext(png)[0] + ".svg") as tmp:
                fig.savefig(tmp, bbox_inches="tight", format="svg")
    pyplot().close(fig)


def note(ax, text: str) -> None:
    """An axis that says why it is empty, rather than a missing file (the report expects one)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_axis_off()


def empty(png: str, text: str) -> None:
    """A whole figure that only says why it is empty."""
    fig, ax = pyplot().subplots(figsize=(6, 2.5))
    note(ax, text)
    save(fig, png)


def write_csv(frame: pd.DataFrame, path: str) -> None:
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, index=False)


def best_points(frame: pd.DataFrame | None, loss: str = "val_loss", by: tuple[str, ...] = ("arch",)) -> dict:
    """{group: its grid point with the lowest mean ``loss``} over the groups ``by`` (default: per
    architecture). ``frame``: one row per run (columns ``by``, ``point``, ``loss``) or already one row
    per point. Selection uses validation loss: the test split stays held out. Empty without data."""
    if frame is None or loss not in frame or frame[loss].dropna().empty:
        return {}
    keys = [*by, "point"]
    mean = frame.dropna(subset=[loss]).groupby(keys, sort=False, dropna=False)[loss].mean().reset_index()
    best = mean.loc[mean.groupby(list(by), sort=False, dropna=False)[loss].idxmin()]
    return {(r[0] if len(by) == 1 else tuple(r[:-1])): r[-1] for r in best[keys].itertuples(index=False)}


def mib(n):
    """Bytes -> MiB (every memory axis and table of the report uses MiB)."""
    return n / 2**20


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def fmt_n(n: float) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"
