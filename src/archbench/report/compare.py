"""Aggregate over seeds and compare architectures per grid point.

Every interval is a two-sided 95% t-interval, mean ± t(0.975, n-1) · s / sqrt(n), given only where
n >= 3 seeds (with two, the t quantile is 12.7 and the "interval" says nothing). Differences between
architectures are PAIRED by seed: a seed fixes the batch order of both runs, so their difference
cancels that shared noise; only seeds both architectures completed count.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from archbench.models.registry import arch_names
from archbench.report.collect import collect, write_csv

METRICS = [
    "test_loss",
    "val_loss",
    "test_ppl",
    "val_ppl",
    "best_val_loss",
    "params_total",
    "params_non_embedding",
    "tokens_seen",
    "train_flops_per_token",
    "tokens_per_s",
    "train_time_s",
    "emissions_kg",
    "energy_kwh",
]
LEVEL = 0.95
MIN_SEEDS_FOR_CI = 3


def mean_ci(values) -> dict:
    """n, mean, sample standard deviation and the 95% t-interval (NaN below 3 values)."""
    x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").dropna(), dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    if n >= MIN_SEEDS_FOR_CI:
        half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * std / math.sqrt(n)
        low, high = mean - half, mean + half
    else:
        low = high = math.nan
    return {"n": n, "mean": mean, "std": std, "ci_low": low, "ci_high": high}


def archs_of(grid: pd.DataFrame) -> list[str]:
    """The architectures of a table, in registry order (unregistered names last)."""
    present = list(dict.fromkeys(grid["arch"]))
    order = arch_names()
    return [a for a in order if a in present] + [a for a in present if a not in order]


def pairs(archs: list[str], baseline: str) -> list[tuple[str, str]]:
    """(baseline, other) for every other architecture: the difference reported is baseline - other
    (negative = the baseline has the lower, better, loss). A baseline that did not run: the first arch."""
    base = baseline if baseline in archs else archs[0]
    return [(base, a) for a in archs if a != base]


def _ok(grid: pd.DataFrame) -> pd.DataFrame:
    return grid[grid["status"] == "ok"] if "status" in grid else grid


def metric_columns(grid: pd.DataFrame) -> list[str]:
    extra = [c for c in grid.columns if c.startswith(("harness/", "latency/"))]
    return [c for c in METRICS + extra if c in grid.columns]


def seed_summary(grid: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """One row per architecture x grid point (`axes`: the grid's searched keys): n_seeds and
    mean / std / ci_low / ci_high per metric."""
    rows = []
    for (arch, point), runs in _ok(grid).groupby(["arch", "point"], sort=False):
        row = {"arch": arch, "point": point, **runs.iloc[0][axes].to_dict(), "n_seeds": len(runs)}
        for metric in metric_columns(grid):
            summary = mean_ci(runs[metric])
            row.update({f"{metric}_{k}": v for k, v in summary.items() if k != "n"})
        rows.append(row)
    return pd.DataFrame(rows)


def paired_difference(grid: pd.DataFrame, point: str, a: str, b: str, metric: str = "test_loss") -> dict:
    """Mean / std / 95% interval of (a - b) over the seeds both ran at `point`."""
    runs = _ok(grid)
    runs = runs[runs["point"] == point]
    values = runs.pivot_table(index="seed", columns="arch", values=metric, aggfunc="first")
    if a not in values or b not in values:
        return mean_ci([])
    return mean_ci((values[a] - values[b]).dropna())


def compare(grid: pd.DataFrame, axes: list[str], baseline: str = "retnet", metric: str = "test_loss") -> pd.DataFrame:
    """One row per grid point: each architecture's mean `metric`, the paired differences against the
    baseline with their intervals, the winner (lowest mean), whether it wins decisively, and parameter ratios."""
    archs, ok = archs_of(grid), _ok(grid)
    rows = []
    for point, runs in grid.groupby("point", sort=False):
        row = {"point": point, **runs.iloc[0][axes].to_dict()}
        done = ok[ok["point"] == point]
        means = {}
        for arch in archs:
            mine = done[done["arch"] == arch]
            summary = mean_ci(mine[metric]) if len(mine) else mean_ci([])
            row[f"{metric}_{arch}"] = means[arch] = summary["mean"]
            row[f"{metric}_std_{arch}"] = summary["std"]
            row[f"n_seeds_{arch}"] = summary["n"]
            for size in ("params_total", "params_non_embedding"):
                row[f"{size}_{arch}"] = mine[size].mean() if size in mine and len(mine) else math.nan
        for a, b in pairs(archs, baseline):
            diff = paired_difference(grid, point, a, b, metric)
            name = f"diff_{a}_minus_{b}"
            row.update(
                {
                    name: diff["mean"],
                    f"{name}_std": diff["std"],
                    f"{name}_ci_low": diff["ci_low"],
                    f"{name}_ci_high": diff["ci_high"],
                    f"{name}_n": diff["n"],
                }
            )
            row[f"param_ratio_{a}_{b}"] = row[f"params_total_{a}"] / row[f"params_total_{b}"]
            row[f"param_ratio_non_embedding_{a}_{b}"] = (
                row[f"params_non_embedding_{a}"] / row[f"params_non_embedding_{b}"]
            )
        row.update(_winner(grid, point, means, metric))
        rows.append(row)
    return pd.DataFrame(rows)


def _winner(grid, point, means: dict, metric: str) -> dict:
    """Lowest mean wins. Decisive = every paired interval (winner - other) lies below 0; undecided
    (None) when some interval is unavailable (< 3 shared seeds)."""
    ranked = sorted((m, a) for a, m in means.items() if not math.isnan(m))
    if not ranked:
        return {"winner": None, "margin": math.nan, "decisive": None}
    winner = ranked[0][1]
    margin = ranked[1][0] - ranked[0][0] if len(ranked) > 1 else math.nan
    highs = [paired_difference(grid, point, winner, other, metric)["ci_high"] for _, other in ranked[1:]]
    if any(h >= 0 for h in highs):
        decisive = False
    elif any(math.isnan(h) for h in highs):
        decisive = None
    else:
        decisive = True
    return {"winner": winner, "margin": margin, "decisive": decisive if len(ranked) > 1 else None}


def write_tables(
    runs: list[dict], grid_csv: str, comparison_csv: str, seeds_csv: str, baseline: str = "retnet"
) -> pd.DataFrame:
    """grid_results.csv (one row per run), seed_summary.csv (per arch x point), comparison.csv (per point)
    from the run records of :func:`archbench.report.collect.run_record`."""
    axes = list(runs[0]["values"]) if runs else []
    grid = collect(runs)
    write_csv(grid, grid_csv)
    grid = pd.read_csv(grid_csv)  # the types a reader of the CSV sees (and the plots read)
    write_csv(seed_summary(grid, axes), seeds_csv)
    comparison = compare(grid, axes, baseline)
    write_csv(comparison, comparison_csv)
    return comparison
