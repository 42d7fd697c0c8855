"""summary.md: the verdict in words (who wins, where, by how much), the key tables, links to the plots."""

from __future__ import annotations

import math
import os

import pandas as pd

from archbench.io import atomic_file
from archbench.report import questions
from archbench.report.compare import archs_of, pairs
from archbench.report.kinds import pair_kind

MAX_ROWS = 30  # a paper grid has 72 points: the full table is comparison.csv


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown_table(frame: pd.DataFrame, columns: dict[str, str]) -> str:
    """A GitHub-flavoured table of `columns` ({column: header}) of `frame`."""
    cols = [c for c in columns if c in frame]
    shown = frame[cols].apply(lambda col: col.map(_fmt)).rename(columns=columns)
    return shown.to_markdown(index=False, disable_numparse=True)


def verdict(comparison: pd.DataFrame, archs: list[str], baseline: str, block: str | None = None) -> list[str]:
    """Bullet points: grid points won per architecture (decisively = every paired 95% interval
    excludes 0), then the mean paired difference per pair over the grid, naming what the pair varies
    (report/kinds.py; ``block``: the runs' model.block)."""
    lines = []
    total = comparison["winner"].notna().sum()
    decisive = comparison["decisive"].astype(str).str.lower() == "true"
    for arch in archs:
        won = comparison["winner"] == arch
        lines.append(
            f"- **{arch}** has the lowest mean test loss at {int(won.sum())} of {total} grid points "
            f"({int((won & decisive).sum())} decisively)."
        )
    for a, b in pairs(archs, baseline):
        name = f"diff_{a}_minus_{b}"
        if name not in comparison or comparison[name].dropna().empty:
            continue
        diff = comparison[name].dropna()
        below = ((comparison[f"{name}_ci_high"] < 0).sum(), (comparison[f"{name}_ci_low"] > 0).sum())
        ratio = comparison[f"param_ratio_{a}_{b}"].dropna()
        lines.append(
            f"- {a} − {b} test loss: mean {diff.mean():+.4f} nats/token over {len(diff)} grid points "
            f"(range {diff.min():+.4f} … {diff.max():+.4f}); interval below 0 at {below[0]}, above 0 at "
            f"{below[1]} points. Parameter ratio {a}/{b}: {_fmt(ratio.min(), 3)} … {_fmt(ratio.max(), 3)}. "
            f"Compares: {pair_kind(a, b, block)}."
        )
    return lines


def _block(grid: pd.DataFrame) -> str | None:
    """The runs' model.block (one value per report: a fixed model setting), None when absent."""
    values = grid["block"].dropna().unique() if "block" in grid else []
    return values[0] if len(values) == 1 else None


def best_per_arch(seeds: pd.DataFrame, archs: list[str]) -> pd.DataFrame:
    rows = [seeds[seeds["arch"] == a].nsmallest(1, "test_loss_mean") for a in archs]
    return pd.concat(rows) if rows else seeds.head(0)


def write_summary(
    grid_csv: str,
    seeds_csv: str,
    comparison_csv: str,
    plots: list[str],
    out_md: str,
    axes: list[str],
    baseline: str = "retnet",
    questions_json: str | None = None,
) -> str:
    """`axes`: the grid's searched keys; `baseline`: the architecture the others are compared against."""
    grid, seeds, comparison = pd.read_csv(grid_csv), pd.read_csv(seeds_csv), pd.read_csv(comparison_csv)
    archs = archs_of(grid)
    ok = grid["status"] == "ok"
    seeds_used = sorted(grid["seed"].unique())
    parts = [
        "# archbench: which architecture wins, where, and by how much?",
        "",
        f"{int(ok.sum())} of {len(grid)} runs complete ({', '.join(archs)}; {len(comparison)} grid points; "
        f"seeds {', '.join(map(str, seeds_used))}). Loss is the mean test cross-entropy in nats/token; "
        "differences are paired by seed, 95% t-intervals need ≥ 3 seeds.",
        "",
        "## Verdict",
        "",
        *verdict(comparison, archs, baseline, _block(grid)),
        "",
    ]
    missing = grid.loc[~ok, ["arch", "point", "seed"]]
    if len(missing):
        parts += [
            f"**Missing runs ({len(missing)}):** "
            + "; ".join(f"{r.arch} {r.point} seed {r.seed}" for r in missing.head(10).itertuples())
            + "",
            "",
        ]
    columns = {
        "arch": "arch",
        **{a: a for a in axes},
        "n_seeds": "seeds",
        "test_loss_mean": "test loss",
        "test_loss_ci_low": "95% low",
        "test_loss_ci_high": "95% high",
        "params_total_mean": "params",
        "tokens_per_s_mean": "tokens/s",
        "emissions_kg_mean": "kg CO₂eq",
    }
    parts += ["## Best grid point per architecture", "", markdown_table(best_per_arch(seeds, archs), columns), ""]
    shown = comparison.sort_values([f"test_loss_{archs[0]}"]).head(MAX_ROWS)
    columns = {
        **{a: a for a in axes},
        **{f"test_loss_{a}": f"{a} loss" for a in archs},
        **{f"diff_{a}_minus_{b}": f"{a}−{b}" for a, b in pairs(archs, baseline)},
        **{f"param_ratio_{a}_{b}": f"params {a}/{b}" for a, b in pairs(archs, baseline)},
        "winner": "winner",
        "decisive": "decisive",
    }
    title = "## Per grid point" + (
        f" (best {MAX_ROWS} of {len(comparison)} by {archs[0]} loss; all in comparison.csv)"
        if len(comparison) > MAX_ROWS
        else ""
    )
    parts += [title, "", markdown_table(shown, columns), ""]
    base = os.path.dirname(out_md)
    parts += questions.summary_section(questions_json, base)  # issue 15: one sentence per architecture question
    parts += (
        ["## Plots", ""]
        + [f"- [{os.path.splitext(os.path.basename(p))[0]}]({os.path.relpath(p, base)})" for p in plots]
        + [""]
    )
    text = "\n".join(parts)
    with atomic_file(out_md) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return text
