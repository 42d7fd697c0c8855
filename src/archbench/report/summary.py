"""summary.md: the answer first (which architecture is best at its selected grid point, by how much, how
sure, at what compute), then how it was measured, the best-against-best table, the per-grid-point table
(secondary), provenance and the architecture questions.

Claims are sized to the evidence: below 3 seeds there is no interval; "decisive" means Holm-adjusted
p < 0.05 over every comparison the report makes (:mod:`archbench.report.compare`); the best grid point
per architecture is selected on validation loss and its test loss is reported. Architectures are named
by their registry display name everywhere. Timings flagged by their job (a ``timing_flag`` column:
"noisy", "under load") are left out of every speed number.
"""

from __future__ import annotations

import math
import os

import pandas as pd

from archbench.io import atomic_file
from archbench.report import questions
from archbench.report.collect import PROVENANCE_COLUMNS, UNKNOWN
from archbench.report.compare import ALPHA, CORRECTION, MIN_SEEDS_FOR_CI, archs_of, pairs, verdict_table
from archbench.report.figures import SELECTION, display, fmt_n
from archbench.report.kinds import pair_kind

NO_INTERVAL = f"no interval (needs ≥ {MIN_SEEDS_FOR_CI} seeds)"
DECISIVE = f"{CORRECTION}-adjusted p < {ALPHA:g} over every comparison of this report"
FOUNDING = ("retnet", "transformer")  # the project's founding question: always stated when both ran

MAX_ROWS = 30  # a paper grid has 72 points: the full table is comparison.csv


def _fmt(value, digits: int = 5) -> str:
    """Readable numbers: 1.51M rather than 1.508e+06, 5 significant digits otherwise (1.0002, not 1)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if abs(value) >= 1e4:
            return fmt_n(float(value))
        if isinstance(value, float):
            return f"{value:.{digits}g}"
    return str(value)


def ratio(x: float) -> str:
    """A ratio that shows its difference from 1: ×1.0002, ×0.98, ×4.0 ("–" when unknown)."""
    if x is None or not math.isfinite(x):
        return "–"
    if abs(x - 1) < 0.01:
        return f"×{x:.4f}"
    return f"×{x:.3g}" if x < 10 else f"×{x:.1f}"


def markdown_table(frame: pd.DataFrame, columns: dict[str, str]) -> str:
    """A GitHub-flavoured table of `columns` ({column: header}) of `frame`; architectures by display name."""
    cols = [c for c in columns if c in frame]
    shown = frame[cols].copy()
    for c in cols:
        shown[c] = shown[c].map(display) if c in ("arch", "winner") else shown[c].map(_fmt)
    return shown.rename(columns=columns).to_markdown(index=False, disable_numparse=True)


def _interval(h: dict) -> str:
    if math.isnan(h["low"]):
        return f"no interval: {h['n']} shared seed(s), needs ≥ {MIN_SEEDS_FOR_CI}" if h["n"] else "no seed both ran"
    sure = "decisive" if h["decisive"] else "not decisive"
    return (
        f"95% interval [{h['low']:+.4f}, {h['high']:+.4f}], {h['n']} seeds; {sure} ({CORRECTION} p = {h['p_holm']:.2g})"
    )


def _per_run(grid: pd.DataFrame, arch: str, point: str, column: str) -> float:
    ok = grid[(grid["arch"] == arch) & (grid["point"] == point)]
    ok = ok[ok["status"] == "ok"] if "status" in ok else ok
    return float(ok[column].mean()) if column in ok and ok[column].notna().any() else math.nan


def compute_ratios(grid: pd.DataFrame, h: dict) -> tuple[float, float]:
    """(parameters, training FLOPs per token) of a's selected point over b's."""
    out = []
    for column in ("params_total", "train_flops_per_token"):
        a, b = _per_run(grid, h["a"], h["point_a"], column), _per_run(grid, h["b"], h["point_b"], column)
        out.append(a / b if b else math.nan)
    return out[0], out[1]


def _oriented(h: dict, first: str) -> dict:
    """The headline pair h written as ``first`` − other."""
    if h["a"] == first:
        return h
    return {
        **h,
        "a": h["b"],
        "b": h["a"],
        "point_a": h["point_b"],
        "point_b": h["point_a"],
        "mean": -h["mean"],
        "low": -h["high"],
        "high": -h["low"],
    }


def lead(grid: pd.DataFrame, v: dict) -> str:
    """The first paragraph (≤ 3 sentences): the best architecture at its selected point, by how much over
    the runner-up and how sure, at what parameters and compute; RetNet vs Transformer when both ran."""
    archs = v["archs"]
    loss = {a: _per_run(grid, a, v["best"][a], "test_loss") for a in archs}
    ranked = sorted((x, a) for a, x in loss.items() if math.isfinite(x))
    if not ranked:
        return "No run completed: there is nothing to compare yet."
    best = ranked[0][1]
    if len(ranked) == 1:
        return f"Only {display(best)} completed a run ({loss[best]:.4f} nats/token test loss): nothing to compare."
    runner = ranked[1][1]
    heads = {frozenset((h["a"], h["b"])): h for h in v["headline"]}
    h = _oriented(heads[frozenset((best, runner))], best)
    params, flops = compute_ratios(grid, h)
    out = [
        f"**{display(best)} has the lowest test loss at the grid points selected on validation loss: "
        f"{loss[best]:.4f} nats/token, {-h['mean']:.4f} below {display(runner)}** ({_interval(h)}).",
        f"It has {ratio(params)} the parameters and {ratio(flops)} the training FLOPs per token of {display(runner)}.",
    ]
    if set(FOUNDING) <= set(archs) and {best, runner} != set(FOUNDING):
        f = _oriented(heads[frozenset(FOUNDING)], FOUNDING[0])
        p2, f2 = compute_ratios(grid, f)
        side = "lower" if f["mean"] < 0 else "higher"
        out.append(
            f"{display(FOUNDING[0])} vs {display(FOUNDING[1])}: {display(FOUNDING[0])}'s test loss is "
            f"{abs(f['mean']):.4f} nats/token {side} ({_interval(f)}; parameters {ratio(p2)}, "
            f"training FLOPs/token {ratio(f2)})."
        )
    return " ".join(out)


def point_label(grid: pd.DataFrame, point: str, axes: list[str]) -> str:
    """A grid point by the values of the axes that vary in this report (``key=value, ...``)."""
    varying = [a for a in axes if a in grid and grid[a].nunique(dropna=False) > 1]
    rows = grid[grid["point"] == point]
    if not varying or rows.empty:
        return "its only grid point" if not varying else point
    return ", ".join(f"{a}={_fmt(rows.iloc[0][a])}" for a in varying)


def headline_lines(grid: pd.DataFrame, v: dict, block: str | None = None, axes: list[str] = ()) -> list[str]:
    """One bullet per pair of architectures: the seed-paired test-loss difference between their
    validation-selected points, with interval, corrected verdict, parameter and FLOPs-per-token ratios."""
    lines = []
    for h in v["headline"]:
        params, flops = compute_ratios(grid, h)
        a, b = display(h["a"]), display(h["b"])
        diff = "no seed both ran" if math.isnan(h["mean"]) else f"{h['mean']:+.4f} nats/token ({_interval(h)})"
        lines.append(
            f"- {a} − {b}: {diff}; {a} at {point_label(grid, h['point_a'], list(axes))}, {b} at "
            f"{point_label(grid, h['point_b'], list(axes))}. Parameters {a}/{b} "
            f"{ratio(params)}, training FLOPs per token {ratio(flops)}. Compares: {pair_kind(h['a'], h['b'], block)}."
        )
    return lines


def point_lines(comparison: pd.DataFrame, archs: list[str]) -> list[str]:
    """Grid points won per architecture (decisive as in the headline; ``decisive`` None = no interval)."""
    total = int(comparison["winner"].notna().sum())
    decisive = comparison["decisive"].astype(str).str.lower() == "true"
    known = comparison["decisive"].notna() & (comparison["decisive"].astype(str) != "")
    lines = []
    for arch in archs:
        won = comparison["winner"] == arch
        lines.append(
            f"- {display(arch)} has the lowest mean test loss at {int(won.sum())} of {total} grid points"
            + (f" ({int((won & decisive).sum())} decisive)." if known.any() else f" ({NO_INTERVAL}).")
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


def clean_timing(grid: pd.DataFrame, column: str = "tokens_per_s") -> pd.DataFrame:
    """``grid`` with ``column`` blanked where the run's ``timing_flag`` says the timing is not clean
    ("noisy", "under load"): no speed number comes from a flagged measurement."""
    if "timing_flag" not in grid or column not in grid:
        return grid
    flagged = grid["timing_flag"].fillna("").astype(str).str.strip() != ""
    out = grid.copy()
    out.loc[flagged, column] = math.nan
    return out


def write_summary(
    grid_csv: str,
    seeds_csv: str,
    comparison_csv: str,
    plots: list[str],
    out_md: str,
    axes: list[str],
    baseline: str,
    questions_json: str | None = None,
) -> str:
    """`axes`: the grid's searched keys; `baseline`: the architecture the per-point columns compare against."""
    grid, seeds, comparison = pd.read_csv(grid_csv), pd.read_csv(seeds_csv), pd.read_csv(comparison_csv)
    grid = clean_timing(grid)
    archs = archs_of(grid)
    ok = grid["status"] == "ok"
    seeds_used = sorted(grid["seed"].unique())
    v = verdict_table(grid, baseline)
    df = sorted({h["pooled_df"] for h in v["headline"]})
    parts = [
        "# archbench: which architecture wins, where, and by how much?",
        "",
        lead(grid, v),
        "",
        f"{int(ok.sum())} of {len(grid)} runs complete ({', '.join(display(a) for a in archs)}; "
        f"{len(comparison)} grid point{'s' if len(comparison) != 1 else ''}; seeds {', '.join(map(str, seeds_used))}). "
        "Loss is test cross-entropy in nats/token (lower is better); each architecture is represented by its best "
        f"grid point. Every best grid point is {SELECTION}. Differences are paired by seed (a seed fixes the batch "
        "order of both runs). "
        + (
            f"Their 95% t-intervals need ≥ {MIN_SEEDS_FOR_CI} seeds and use the seed noise of the pair pooled over "
            f"every grid point both ran (degrees of freedom: {', '.join(map(str, df))}; assumes the noise is alike "
            f'across points). "Decisive" = {DECISIVE} ({v["m"]} comparisons: every pair at every grid point and the '
            "best-against-best pairs)."
            if v["m"]
            else f"No difference has an interval and none is called decisive: intervals need ≥ {MIN_SEEDS_FOR_CI} "
            "seeds per run (config/presets/three-seeds.yaml adds them)."
        ),
        "",
        "## Best against best",
        "",
        *headline_lines(grid, v, _block(grid), axes),
        "",
        *provenance(grid),
    ]
    missing = grid.loc[~ok, ["arch", "point", "seed"]]
    if len(missing):
        parts += [
            f"**Missing runs ({len(missing)}):** "
            + "; ".join(f"{display(r.arch)} {r.point} seed {r.seed}" for r in missing.head(10).itertuples())
            + "",
            "",
        ]
    best = best_per_arch(seeds, archs)
    speed = grid[ok].groupby(["arch", "point"])["tokens_per_s"].mean() if "tokens_per_s" in grid else None
    if speed is not None and len(best):
        best = best.assign(tokens_per_s_mean=[speed.get((r.arch, r.point), math.nan) for r in best.itertuples()])
    columns = {
        "arch": "architecture",
        **{a: a for a in axes},
        "n_seeds": "seeds",
        "val_loss_mean": "val loss",
        "test_loss_mean": "test loss",
        "test_loss_ci_low": "95% low",
        "test_loss_ci_high": "95% high",
        "params_total_mean": "params",
        "train_flops_per_token_mean": "train FLOPs/token",
        "tokens_per_s_mean": "training tokens/s",
        "emissions_kg_mean": "kg CO₂eq",
    }
    flagged = "timing_flag" in grid and (grid["timing_flag"].fillna("").astype(str).str.strip() != "").any()
    parts += [
        f"## Best grid point per architecture ({SELECTION})",
        "",
        markdown_table(best, columns),
        "",
        "Columns: grid values of the selected point; seeds completed; mean validation and test loss "
        "(nats/token) with the test loss's 95% t-interval over seeds; total parameters; training FLOPs per "
        "token (forward + backward, the architecture's formula); training tokens per second"
        + (" (timings flagged noisy or under load left out)" if flagged else "")
        + "; CodeCarbon's emissions estimate per run.",
        "",
    ]
    shown = comparison.head(MAX_ROWS)  # grid order (the config's), not sorted by a result
    columns = {
        **{a: a for a in axes},
        **{f"test_loss_{a}": f"{display(a)}" for a in archs},
        **{f"diff_{a}_minus_{b}": f"{display(a)} − {display(b)}" for a, b in pairs(archs, baseline)},
        **{f"param_ratio_{a}_{b}": f"params {display(a)}/{display(b)}" for a, b in pairs(archs, baseline)},
        **{f"flops_ratio_{a}_{b}": f"FLOPs/token {display(a)}/{display(b)}" for a, b in pairs(archs, baseline)},
        "winner": "lowest loss",
        "decisive": "decisive",
    }
    title = "## Per grid point (secondary)" + (
        f" (first {MAX_ROWS} of {len(comparison)} in grid order; all in comparison.csv)"
        if len(comparison) > MAX_ROWS
        else ""
    )
    parts += [
        title,
        "",
        *point_lines(comparison, archs),
        "",
        markdown_table(shown, columns),
        "",
        f"Columns: grid values; each architecture's mean test loss (nats/token); the seed-paired difference "
        f"against {display(archs[0] if baseline not in archs else baseline)} (negative: it is lower); parameter "
        "and training-FLOPs-per-token ratios; the architecture with the lowest mean; decisive = it beats every "
        f"other one there with {CORRECTION}-adjusted p < {ALPHA:g} (– : fewer than {MIN_SEEDS_FOR_CI} seeds).",
        "",
    ]
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
