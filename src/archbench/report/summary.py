"""summary.md: the verdict in words (who wins, where, by how much, how sure), where the numbers came from,
the key tables, links to the plots.

Claims are sized to the evidence: below 3 seeds there is no interval (and the summary says so rather than
printing counts of zero); intervals at many grid points are not corrected for multiplicity (said once);
the best grid point per architecture is selected on validation loss and its test loss is reported.
"""

from __future__ import annotations

import math
import os

import pandas as pd

from archbench.io import atomic_file
from archbench.report import questions
from archbench.report.collect import PROVENANCE_COLUMNS, UNKNOWN
from archbench.report.compare import MIN_SEEDS_FOR_CI, archs_of, pairs
from archbench.report.figures import SELECTION
from archbench.report.kinds import pair_kind

NO_INTERVAL = f"no interval (needs ≥ {MIN_SEEDS_FOR_CI} seeds)"

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


def _has_interval(comparison: pd.DataFrame, name: str) -> pd.Series:
    low = f"{name}_ci_low"
    return comparison[low].notna() if low in comparison else pd.Series(False, index=comparison.index)


def verdict(comparison: pd.DataFrame, archs: list[str], baseline: str, block: str | None = None) -> list[str]:
    """Bullet points: grid points won per architecture (decisively = every paired 95% interval
    excludes 0; without ≥ 3 seeds: no interval), then the mean paired difference per pair over the grid,
    naming what the pair varies (report/kinds.py; ``block``: the runs' model.block), then a note that
    per-point intervals are not corrected for multiplicity when there are several."""
    lines = []
    total = comparison["winner"].notna().sum()
    decisive = comparison["decisive"].astype(str).str.lower() == "true"
    names = [f"diff_{a}_minus_{b}" for a, b in pairs(archs, baseline)]
    any_interval = any(_has_interval(comparison, n).any() for n in names)
    for arch in archs:
        won = comparison["winner"] == arch
        lines.append(
            f"- **{arch}** has the lowest mean test loss at {int(won.sum())} of {total} grid points "
            + (f"({int((won & decisive).sum())} decisively)." if any_interval else f"({NO_INTERVAL}).")
        )
    with_interval = 0
    for (a, b), name in zip(pairs(archs, baseline), names):
        if name not in comparison or comparison[name].dropna().empty:
            continue
        diff = comparison[name].dropna()
        has = _has_interval(comparison, name)
        with_interval += int(has.sum())
        below = ((comparison[f"{name}_ci_high"] < 0).sum(), (comparison[f"{name}_ci_low"] > 0).sum())
        ratio = comparison[f"param_ratio_{a}_{b}"].dropna()
        where = (
            f"interval below 0 at {below[0]}, above 0 at {below[1]} of {int(has.sum())} points with an interval"
            if has.any()
            else NO_INTERVAL
        )
        lines.append(
            f"- {a} − {b} test loss: mean {diff.mean():+.4f} nats/token over {len(diff)} grid points "
            f"(range {diff.min():+.4f} … {diff.max():+.4f}); {where}. Parameter ratio {a}/{b}: "
            f"{_fmt(ratio.min(), 3)} … {_fmt(ratio.max(), 3)}. Compares: {pair_kind(a, b, block)}."
        )
    if with_interval > 1:
        lines.append(
            f"- The {with_interval} per-point 95% intervals are not corrected for multiplicity: about 1 in 20 "
            "can exclude 0 by chance alone."
        )
    return lines


def provenance(grid: pd.DataFrame) -> list[str]:
    """Where the numbers came from, stated once, and ONE warning line when the runs differ in commit,
    package versions, hardware or data fingerprint ("unknown" for runs without a provenance block)."""
    ok = grid[grid["status"] == "ok"] if "status" in grid else grid
    values = {c: sorted({str(v) for v in ok[c].fillna(UNKNOWN)}) if c in ok else [UNKNOWN] for c in PROVENANCE_COLUMNS}
    one = {c: v[0] if len(v) == 1 else f"{len(v)} values" for c, v in values.items()}
    lines = [
        "## Provenance",
        "",
        f"Commit {one['commit']}, archbench {one['archbench']}; hardware {one['hardware']}; "
        f"data fingerprint {one['data_fingerprint']}; versions: {one['versions']}. "
        "Each run's settings hash, commit, hardware and training FLOPs per token are in grid_results.csv.",
        "",
    ]
    differ = {
        "commit": "commit",
        "versions": "package versions",
        "hardware": "hardware",
        "data_fingerprint": "data fingerprint",
    }
    mixed = [f"{label} ({', '.join(values[c])})" for c, label in differ.items() if len(values[c]) > 1]
    if mixed:
        lines += ["**Warning: the runs of this report differ in " + "; ".join(mixed) + ".**", ""]
    return lines


def _block(grid: pd.DataFrame) -> str | None:
    """The runs' model.block (one value per report: a fixed model setting), None when absent."""
    values = grid["block"].dropna().unique() if "block" in grid else []
    return values[0] if len(values) == 1 else None


def best_per_arch(seeds: pd.DataFrame, archs: list[str]) -> pd.DataFrame:
    """Each architecture's grid point with the lowest mean validation loss (never test loss: the test
    split stays held out); the first point where no validation loss was recorded."""
    rows = []
    for a in archs:
        mine = seeds[seeds["arch"] == a]
        has_val = "val_loss_mean" in mine and mine["val_loss_mean"].notna().any()
        rows.append(mine.nsmallest(1, "val_loss_mean") if has_val else mine.head(1))
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
        f"differences are paired by seed, 95% t-intervals need ≥ {MIN_SEEDS_FOR_CI} seeds. Every best grid "
        f"point is {SELECTION}.",
        "",
        "## Verdict",
        "",
        *verdict(comparison, archs, baseline, _block(grid)),
        "",
        *provenance(grid),
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
        "val_loss_mean": "val loss",
        "test_loss_mean": "test loss",
        "test_loss_ci_low": "95% low",
        "test_loss_ci_high": "95% high",
        "params_total_mean": "params",
        "train_flops_per_token_mean": "train FLOPs/token",
        "tokens_per_s_mean": "tokens/s",
        "emissions_kg_mean": "kg CO₂eq",
    }
    parts += [
        f"## Best grid point per architecture ({SELECTION})",
        "",
        markdown_table(best_per_arch(seeds, archs), columns),
        "",
    ]
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
    parts += questions.summary_section(questions_json, base)  # one sentence per architecture question
    parts += (
        ["## Plots", ""]
        + [f"- [{os.path.splitext(os.path.basename(p))[0]}]({os.path.relpath(p, base)})" for p in plots]
        + [""]
    )
    text = "\n".join(parts)
    with atomic_file(out_md) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return text
