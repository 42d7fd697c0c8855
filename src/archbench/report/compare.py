"""Aggregate over seeds and compare architectures: best against best (the headline) and per grid point.

Every interval is a two-sided 95% t-interval, given only where n >= 3 seeds (with two, the t quantile is
12.7 and the "interval" says nothing). Differences between architectures are PAIRED by seed: a seed
fixes the batch order of both runs, so their difference cancels that shared noise; only seeds both
architectures completed count.

The verdict (:func:`verdict_arrays`, vectorised so the simulations in tests/test_report_error_rates.py
run the report's own code):

- **Best against best.** Each architecture's grid point is selected on mean validation loss (never
  test loss); the headline is the seed-paired test-loss difference between the selected points of
  every pair of architectures.
- **Pooled seed noise.** The variance of a paired difference is pooled, per pair of architectures,
  over every grid point both ran (sum of squared deviations / sum of n - 1). With 3 seeds one point's
  own variance has 2 degrees of freedom: a 0.05-nat difference at 0.01 nats of seed noise passes an
  uncorrected t-test in 85% of reports (noncentral t) and a Bonferroni test over just 3 pairs in 47%;
  pooled over the grid and Holm-corrected over the whole report it is found in 98.8%. This
  assumes the seed noise of a difference is alike across grid points (said in the summary).
- **Family-wise error.** Every comparison of the report (every pair at every grid point, and the
  best-against-best pairs) is one family, Holm-corrected at 5%; "decisive" means Holm-adjusted
  p < 0.05. Identical architectures on the paper grid (72 points x 3 architectures, 3 seeds) gave a
  decisive claim in 0 of 1,000 simulated reports (some single comparison significant in 4.8%); a true
  0.05-nat difference was found in 98.8% (test_report_error_rates.py).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

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
ALPHA = 0.05  # family-wise error rate of the word "decisive" (Holm)
CORRECTION = "Holm"


def mean_ci(values) -> dict:
    """n, mean, sample standard deviation and the 95% t-interval (NaN below 3 values)."""
    x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").dropna(), dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    if n >= MIN_SEEDS_FOR_CI:
        from scipy import stats  # here: the Snakefile parse imports the report questions, not scipy

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


# ----------------------------------------------------------------------------- the verdict (arrays)


def all_pairs(archs: list[str], baseline: str) -> list[tuple[str, str]]:
    """Every pair of architectures once: (baseline, other) first, then the rest in registry order."""
    first = pairs(archs, baseline) if archs else []
    base = first[0][0] if first else None
    rest = [(a, b) for i, a in enumerate(archs) for b in archs[i + 1 :] if base not in (a, b)]
    return first + rest


def holm(p) -> np.ndarray:
    """Holm-adjusted p-values along the last axis (NaN entries are not tests: they stay NaN)."""
    p = np.asarray(p, float)
    finite = np.isfinite(p)
    m = finite.sum(-1, keepdims=True)
    order = np.argsort(np.where(finite, p, np.inf), axis=-1, kind="stable")
    ranked = np.take_along_axis(np.where(finite, p, 1.0), order, -1)
    steps = np.maximum(m - np.arange(p.shape[-1]), 1)
    adjusted = np.minimum(np.maximum.accumulate(steps * ranked, axis=-1), 1.0)
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, -1)
    return np.where(finite, out, np.nan)


def _seed_stats(d: np.ndarray):
    """n, mean and sum of squared deviations over the last (seed) axis, NaN = a seed not shared."""
    n = np.isfinite(d).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(d, -1) / np.maximum(n, 1), np.nan)
        ss = np.nansum((d - mean[..., None]) ** 2, -1)
    return n, mean, ss


def t_test(mean, var, n, df) -> dict:
    """95% t-interval and two-sided p of a paired mean with (pooled) variance ``var`` on ``df`` degrees
    of freedom; NaN where n < 3 seeds or nothing to pool."""
    from scipy import stats

    mean, var, n, df = (np.asarray(v, float) for v in (mean, var, n, df))
    ok = (n >= MIN_SEEDS_FOR_CI) & (df >= 1) & np.isfinite(mean) & np.isfinite(var)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(var / n)
        dof = np.maximum(df, 1)
        half = stats.t.ppf(0.5 + LEVEL / 2, dof) * se
        t = np.abs(mean) / se
        p = np.where(se > 0, 2 * stats.t.sf(t, dof), np.where(mean == 0, 1.0, 0.0))
    nan = np.full(np.broadcast(mean, var, n, df).shape, np.nan)
    return {
        "low": np.where(ok, mean - half, nan),
        "high": np.where(ok, mean + half, nan),
        "p": np.where(ok, p, nan),
    }


def select_best(val: np.ndarray, test: np.ndarray) -> np.ndarray:
    """[..., A] index of each architecture's point with the lowest mean validation loss ([..., A, P, S]
    inputs); without any validation loss, its first point with a test loss."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        vmean = np.nanmean(val, -1)
    has_val = np.isfinite(vmean).any(-1, keepdims=True)
    fallback = np.where(np.isfinite(test).any(-1), 0.0, np.inf)  # first point that ran
    score = np.where(has_val, np.where(np.isfinite(vmean), vmean, np.inf), fallback)
    return np.argmin(score, -1)


def verdict_arrays(test, val, pair_index: list[tuple[int, int]], alpha: float = ALPHA) -> dict:
    """The verdict on losses ``test`` / ``val`` [..., A, P, S] (architecture, grid point, seed; NaN = no
    run), vectorised over any leading axes (simulated reports). ``pair_index``: (i, j) architecture
    indices, difference = i - j. Returns arrays: ``best`` [..., A]; per pair at the selected points
    ``head_{n,mean,low,high,p,adj,decisive}`` [..., Q]; per pair and point ``point_*`` [..., Q, P];
    ``pooled_var`` / ``pooled_df`` [..., Q]; per point ``winner`` / ``point_decisive`` [..., P]
    (the lowest mean test loss wins; decisive when every pair with the winner is); ``m`` the family size."""
    test, val = np.asarray(test, float), np.asarray(val, float)
    ia = [i for i, _ in pair_index]
    ib = [j for _, j in pair_index]
    d = test[..., ia, :, :] - test[..., ib, :, :]  # [..., Q, P, S]
    n, mean, ss = _seed_stats(d)
    pooled = n >= 2
    df = np.where(pooled, n - 1, 0).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(df > 0, np.where(pooled, ss, 0.0).sum(-1) / df, np.nan)
    point = t_test(mean, var[..., None], n, df[..., None])
    best = select_best(val, test)
    chosen = np.take_along_axis(test, best[..., None, None], axis=-2)[..., 0, :]  # [..., A, S]
    hn, hmean, _ = _seed_stats(chosen[..., ia, :] - chosen[..., ib, :])
    head = t_test(hmean, var, hn, df)
    shape = point["p"].shape
    family = np.concatenate([point["p"].reshape(*shape[:-2], -1), head["p"]], axis=-1)
    adjusted = holm(family)
    m = np.isfinite(family).sum(-1)
    point_adj = adjusted[..., : shape[-2] * shape[-1]].reshape(shape)
    head_adj = adjusted[..., shape[-2] * shape[-1] :]
    point_dec = point_adj < alpha
    # per point: the winner (lowest mean test loss) is decisive when every pair it is in is, its way
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(test, -1)  # [..., A, P]
    ran = np.isfinite(means)
    winner = np.argmin(np.where(ran, means, np.inf), -2)  # [..., P]
    n_arch = test.shape[-3]
    beats = np.ones(means.shape, bool)
    known = np.ones(means.shape, bool)
    for q, (i, j) in enumerate(pair_index):
        both = ran[..., i, :] & ran[..., j, :]
        tested = np.isfinite(point["p"][..., q, :])
        sign = point_dec[..., q, :]
        beats[..., i, :] &= ~both | (sign & (mean[..., q, :] < 0))
        beats[..., j, :] &= ~both | (sign & (mean[..., q, :] > 0))
        known[..., i, :] &= ~both | tested
        known[..., j, :] &= ~both | tested
    pick = winner[..., None, :]
    others = ran.sum(-2) >= 2
    point_decisive = np.take_along_axis(beats, pick, -2)[..., 0, :] & others
    point_known = np.take_along_axis(known, pick, -2)[..., 0, :] & others
    return {
        "best": best,
        "head_n": hn,
        "head_mean": hmean,
        "head_low": head["low"],
        "head_high": head["high"],
        "head_p": head["p"],
        "head_adj": head_adj,
        "head_decisive": head_adj < alpha,
        "point_n": n,
        "point_mean": mean,
        "point_std": np.sqrt(np.where(n > 1, ss, np.nan) / np.maximum(n - 1, 1)),  # own seeds, not pooled
        "point_low": point["low"],
        "point_high": point["high"],
        "point_p": point["p"],
        "point_adj": point_adj,
        "pooled_var": var,
        "pooled_df": df,
        "winner": winner,
        "point_decisive": point_decisive,
        "point_known": point_known,
        "n_archs": n_arch,
        "m": m,
    }


def cubes(grid: pd.DataFrame, archs: list[str], metric: str = "test_loss", select: str = "val_loss"):
    """(test, val, points, seeds): [A, P, S] arrays of ``metric`` / ``select`` over the completed runs,
    points in the table's (grid) order, NaN where a run is missing."""
    ok = _ok(grid)
    points = list(dict.fromkeys(grid["point"]))
    seeds = sorted(grid["seed"].unique())
    shape = (len(archs), len(points), len(seeds))
    out = []
    for column in (metric, select):
        cube = np.full(shape, np.nan)
        if column in ok:
            values = ok.groupby(["arch", "point", "seed"], sort=False)[column].mean()
            for (arch, point, seed), v in values.items():
                if arch in archs:
                    cube[archs.index(arch), points.index(point), seeds.index(seed)] = v
        out.append(cube)
    return out[0], out[1], points, seeds


def verdict_table(grid: pd.DataFrame, baseline: str, metric: str = "test_loss") -> dict:
    """The verdict of a grid_results table: {"archs", "points", "pairs", "arrays"
    (:func:`verdict_arrays`), "best" {arch: point}, "headline" [one dict per pair]}."""
    archs = archs_of(grid)
    test, val, points, seeds = cubes(grid, archs, metric)
    names = all_pairs(archs, baseline)
    v = verdict_arrays(test, val, [(archs.index(a), archs.index(b)) for a, b in names])
    best = {a: points[int(i)] for a, i in zip(archs, v["best"])}
    headline = []
    for q, (a, b) in enumerate(names):
        headline.append(
            {
                "a": a,
                "b": b,
                "point_a": best[a],
                "point_b": best[b],
                "n": int(v["head_n"][q]),
                "mean": float(v["head_mean"][q]),
                "low": float(v["head_low"][q]),
                "high": float(v["head_high"][q]),
                "p": float(v["head_p"][q]),
                "p_holm": float(v["head_adj"][q]),
                "decisive": bool(v["head_decisive"][q]),
                "pooled_df": int(v["pooled_df"][q]),
            }
        )
    return {
        "archs": archs,
        "points": points,
        "seeds": seeds,
        "pairs": names,
        "arrays": v,
        "best": best,
        "headline": headline,
        "m": int(v["m"]),
    }


def compare(grid: pd.DataFrame, axes: list[str], baseline: str, metric: str = "test_loss") -> pd.DataFrame:
    """One row per grid point, in grid order: each architecture's mean `metric`, the paired differences
    against the baseline with their intervals (seed noise pooled over the grid) and Holm-adjusted p, the
    winner (lowest mean), whether it wins decisively (Holm over the report's family), parameter and
    training-FLOPs-per-token ratios."""
    ok = _ok(grid)
    v = verdict_table(grid, baseline, metric)
    archs, arrays, names = v["archs"], v["arrays"], v["pairs"]
    rows = []
    for point, runs in grid.groupby("point", sort=False):
        k = v["points"].index(point)
        row = {"point": point, **runs.iloc[0][axes].to_dict()}
        done = ok[ok["point"] == point]
        means = {}
        for arch in archs:
            mine = done[done["arch"] == arch]
            summary = mean_ci(mine[metric]) if len(mine) else mean_ci([])
            row[f"{metric}_{arch}"] = means[arch] = summary["mean"]
            row[f"{metric}_std_{arch}"] = summary["std"]
            row[f"n_seeds_{arch}"] = summary["n"]
            for size in ("params_total", "params_non_embedding", "train_flops_per_token"):
                row[f"{size}_{arch}"] = mine[size].mean() if size in mine and len(mine) else math.nan
        for q, (a, b) in enumerate(names):
            if (a, b) not in pairs(archs, baseline):
                continue
            name = f"diff_{a}_minus_{b}"
            row.update(
                {
                    name: arrays["point_mean"][q, k],
                    f"{name}_std": arrays["point_std"][q, k],
                    f"{name}_ci_low": arrays["point_low"][q, k],
                    f"{name}_ci_high": arrays["point_high"][q, k],
                    f"{name}_n": int(arrays["point_n"][q, k]),
                    f"{name}_p_holm": arrays["point_adj"][q, k],
                }
            )
            row[f"param_ratio_{a}_{b}"] = row[f"params_total_{a}"] / row[f"params_total_{b}"]
            row[f"param_ratio_non_embedding_{a}_{b}"] = (
                row[f"params_non_embedding_{a}"] / row[f"params_non_embedding_{b}"]
            )
            row[f"flops_ratio_{a}_{b}"] = row[f"train_flops_per_token_{a}"] / row[f"train_flops_per_token_{b}"]
        ranked = sorted((m, a) for a, m in means.items() if not math.isnan(m))
        row["winner"] = ranked[0][1] if ranked else None
        row["margin"] = ranked[1][0] - ranked[0][0] if len(ranked) > 1 else math.nan
        # None: some pair with the winner has no interval (< 3 shared seeds)
        row["decisive"] = bool(arrays["point_decisive"][k]) if len(ranked) > 1 and arrays["point_known"][k] else None
        rows.append(row)
    return pd.DataFrame(rows)


def write_tables(runs: list[dict], grid_csv: str, comparison_csv: str, seeds_csv: str, baseline: str) -> pd.DataFrame:
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
