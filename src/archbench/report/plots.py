"""Report figures (matplotlib, Agg backend), each written as `<name>.png` and `<name>.svg`.

From the tables (results/report/*.csv): test loss vs parameters, the test-loss difference heat map,
training throughput, emissions. From the runs: validation curves (Lightning's CSVLogger file) and,
when the evaluation stage measured them, decode latency and state memory vs context length.
"""

from __future__ import annotations

import math
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import EngFormatter, MaxNLocator

from archbench.report import figures
from archbench.report.collect import _read_json, latency_entries
from archbench.report.compare import archs_of, pairs
from archbench.report.figures import color, display
from archbench.report.figures import note as _note

TABLE_PLOTS = ["loss_vs_params", "diff_heatmap", "throughput", "emissions"]
LATENCY_PLOTS = ["decode_latency", "state_memory"]
# Below this max/min ratio a log axis has no readable ticks: parameters go on a linear axis instead.
LOG_AXIS_MIN_RATIO = 10.0
# Below this relative spread (matched sizes) the axis shows the offset from the smallest count, in %.
OFFSET_AXIS_MAX_SPREAD = 0.01


def params_axis(ax, params: pd.Series, label: str = "parameters (total)"):
    """Set up a legible x axis for parameter counts and return the function mapping counts onto it:
    log scale over a wide range, linear with engineering ticks (1.2M) over a narrow one, and, when
    the sizes are matched (spread < 1%), the offset from the smallest count in percent."""
    values = pd.to_numeric(params, errors="coerce").dropna()
    low, high = (float(values.min()), float(values.max())) if len(values) else (1.0, 1.0)
    if low > 0 and high / low >= LOG_AXIS_MIN_RATIO:
        ax.set(xscale="log", xlabel=f"{label}, log scale")
        return lambda x: x
    if low > 0 and (high - low) / low < OFFSET_AXIS_MAX_SPREAD:
        ax.set(xlabel=f"{label}: % above {low:,.0f}")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        if high == low:
            ax.set_xlim(-0.01, 0.01)
        return lambda x: (pd.to_numeric(x, errors="coerce") / low - 1) * 100
    ax.set(xlabel=label)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    return lambda x: x


def save(fig, out_dir: str, name: str) -> None:
    """`<out_dir>/<name>.png` and `.svg`."""
    figures.save(fig, os.path.join(out_dir, f"{name}.png"))


def slug(point: str) -> str:
    """A file name for a grid point: learning_rate~0.001/embed_dim~768 -> learning_rate-0.001_embed_dim-768."""
    return point.replace("~", "-").replace("/", "_")


# --- from the runs -----------------------------------------------------------------------------


def read_curve(run_dir: str) -> pd.DataFrame | None:
    """(step, val_loss, train_loss) rows of a run's CSVLogger file; None if the run has none."""
    path = os.path.join(run_dir, "logs", "csv", "metrics.csv")
    if not os.path.exists(path):
        return None
    frame = pd.read_csv(path)
    return frame if "step" in frame else None


def plot_curves(grid: pd.DataFrame, out_dir: str) -> list[str]:
    """One figure per grid point: validation loss (solid, markers) and training loss (faint) against
    the step, one line per architecture x seed (the runs of grid_results.csv, by their `run_dir`).
    Returns the names written."""
    by_point: dict[str, list] = {}
    order = {a: i for i, a in enumerate(archs_of(grid))} if len(grid) else {}
    for run in grid.itertuples(index=False):
        curve = read_curve(run.run_dir)
        if curve is not None:
            by_point.setdefault(run.point, []).append((run.arch, run.seed, curve))
    os.makedirs(out_dir, exist_ok=True)
    for point, runs in by_point.items():
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        labelled = set()
        for arch, _seed, curve in sorted(runs, key=lambda r: (order.get(r[0], len(order)), r[1])):
            if "train_loss" in curve:
                train = curve.dropna(subset=["train_loss"])
                ax.plot(train["step"], train["train_loss"], color=color(arch), alpha=0.25, lw=0.8)
            if "val_loss" in curve:
                val = curve.dropna(subset=["val_loss"])
                ax.plot(
                    val["step"],
                    val["val_loss"],
                    color=color(arch),
                    marker="o",
                    ms=3,
                    lw=1.4,
                    label=None if arch in labelled else f"{display(arch)} (validation)",
                )
                labelled.add(arch)
        ax.set(xlabel="step", ylabel="loss (nats/token)", title=point.replace("/", "  "))
        ax.title.set_fontsize(8)
        ax.grid(alpha=0.3)
        if labelled:
            ax.legend(fontsize=8)
        save(fig, out_dir, slug(point))
    return [slug(p) for p in by_point]


def plot_latency(runs: list[dict], out_dir: str, seeds_csv: str | None = None) -> None:
    """Per-token decode latency and state / KV-cache memory vs context length: one labelled series per
    architecture and decoding mode, at the architecture's best grid point (lowest mean validation loss in
    `seeds_csv`; without it, its first grid point), mean over seeds, at the smallest batch size measured.
    The original study's full-recompute decoding, where measured, is dashed. `runs`: run records
    (archbench.report.collect.run_record) with a `latency` file."""
    seeds = pd.read_csv(seeds_csv) if seeds_csv and os.path.exists(seeds_csv) else None
    best = figures.best_points(seeds, "val_loss_mean")
    rows = []
    for run in runs:
        data = _read_json(run["files"]["latency"])
        if data is None:
            continue
        entries = latency_entries(data)
        batch = min((e.get("batch_size", 1) for e in entries), default=1)
        rows += [
            {**e, "arch": e.get("arch") or run["arch"], "point": run["point"], "mode": e.get("mode") or "decode"}
            for e in entries
            if e.get("batch_size", 1) == batch
        ]
    frame = pd.DataFrame(rows)
    if len(frame):
        first = frame.drop_duplicates("arch").set_index("arch")["point"].to_dict()
        chosen = {a: best.get(a, first[a]) for a in first}
        frame = frame[[chosen[a] == p for a, p in zip(frame["arch"], frame["point"])]]
    for name, column, label in (
        ("decode_latency", "decode_ms_median", "decode time per token (ms, median)"),
        ("state_memory", "state_bytes", "recurrent state / KV cache (bytes)"),
    ):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        values = pd.to_numeric(frame[column], errors="coerce") if column in frame else pd.Series(dtype=float)
        if values.dropna().empty:
            _note(ax, f"no {column} measurements in latency.json")
        else:
            _lines(ax, frame.assign(**{column: values}).dropna(subset=[column]), column)
            ax.set(xlabel="context length (tokens)", ylabel=label, xscale="log", yscale="log")
            ax.set_title(
                "each architecture at its grid point with the lowest validation loss"
                if best
                else "each architecture at its first grid point",
                fontsize=8,
            )
        save(fig, out_dir, name)


def _lines(ax, frame: pd.DataFrame, column: str) -> None:
    mean = frame.groupby(["arch", "mode", "context"], sort=False)[column].mean().reset_index()
    order = {a: i for i, a in enumerate(archs_of(mean))}
    for (arch, mode), line in sorted(mean.groupby(["arch", "mode"], sort=False), key=lambda g: order[g[0][0]]):
        line = line.sort_values("context")
        ax.plot(
            line["context"],
            line[column],
            color=color(arch),
            marker="o",
            ms=3,
            ls="--" if mode == "recompute" else "-",
            label=f"{display(arch)} ({mode})",
        )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


# --- from the tables -----------------------------------------------------------------------------


def plot_loss_vs_params(seeds: pd.DataFrame, out_dir: str) -> None:
    """Mean test loss against total parameters, one marker per architecture x grid point; bars are the
    95% interval over seeds where there are >= 3, else the standard deviation (none with one seed)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x = params_axis(ax, seeds["params_total_mean"])
    for arch in archs_of(seeds):
        mine = seeds[seeds["arch"] == arch]
        ci = (mine["test_loss_ci_high"] - mine["test_loss_mean"]).fillna(mine["test_loss_std"])
        ax.errorbar(
            x(mine["params_total_mean"]),
            mine["test_loss_mean"],
            yerr=ci.fillna(0),
            fmt="o",
            color=color(arch),
            label=display(arch),
            capsize=2,
            ms=4,
        )
    ax.set(ylabel="test loss (nats/token)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save(fig, out_dir, "loss_vs_params")


def heatmap_layout(comparison: pd.DataFrame, axes: list[str]) -> tuple[list[str], list[str]]:
    """Split the varying grid keys between heat-map rows and columns (about half each)."""
    varying = [a for a in axes if comparison[a].nunique() > 1] or axes[:1]
    half = math.ceil(len(varying) / 2)
    return varying[:half], varying[half:]


def _labels(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    return (
        [", ".join(f"{k}={v}" for k, v in zip(keys, row)) for row in frame[keys].itertuples(index=False)]
        if keys
        else [""] * len(frame)
    )


def plot_diff_heatmap(
    comparison: pd.DataFrame, out_dir: str, axes: list[str], archs: list[str], baseline: str = "retnet"
) -> None:
    """Paired test-loss difference (baseline - other, mean over seeds) at every grid point, one panel per
    other architecture; blue = the baseline has the lower loss. `*` marks a 95% interval that excludes 0."""
    shown = [(a, b) for a, b in pairs(archs, baseline) if f"diff_{a}_minus_{b}" in comparison] if archs else []
    rows, cols = heatmap_layout(comparison, axes)
    frame = comparison.assign(_row=_labels(comparison, rows), _col=_labels(comparison, cols))
    row_names, col_names = list(dict.fromkeys(frame["_row"])), list(dict.fromkeys(frame["_col"]))
    width = min(4 + 0.9 * len(col_names), 24)
    fig, panels = plt.subplots(
        max(len(shown), 1), 1, figsize=(width, 1.2 + (0.35 * len(row_names) + 1) * max(len(shown), 1)), squeeze=False
    )
    if not shown:
        _note(panels[0][0], "one architecture only: nothing to compare")
    for ax, (a, b) in zip(panels[:, 0], shown):
        name = f"diff_{a}_minus_{b}"
        table = frame.pivot_table(index="_row", columns="_col", values=name, aggfunc="first", dropna=False)
        table = table.reindex(index=row_names, columns=col_names)
        limit = np.nanmax(np.abs(table.to_numpy())) if np.isfinite(table.to_numpy()).any() else 1.0
        image = ax.imshow(table.to_numpy(dtype=float), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        fig.colorbar(image, ax=ax, label="Δ test loss")
        ax.set_xticks(range(len(col_names)), col_names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(row_names)), row_names, fontsize=7)
        ax.set_title(f"{display(a)} − {display(b)} (negative: {display(a)} better)", fontsize=9)
        if table.size <= 150:
            sig = (
                frame.assign(_s=(frame[f"{name}_ci_high"] < 0) | (frame[f"{name}_ci_low"] > 0))
                .pivot_table(index="_row", columns="_col", values="_s", aggfunc="first")
                .reindex(index=row_names, columns=col_names)
            )
            for i, j in np.ndindex(table.shape):
                value = table.iat[i, j]
                if np.isfinite(value):
                    star = "*" if sig.iat[i, j] is True or sig.iat[i, j] == 1 else ""
                    ax.text(
                        j,
                        i,
                        f"{value:+.3f}{star}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if abs(value) > 0.6 * limit else "black",
                    )
    save(fig, out_dir, "diff_heatmap")


def plot_throughput(seeds: pd.DataFrame, out_dir: str) -> None:
    """Training throughput (tokens/s, mean over seeds) against total parameters."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if "tokens_per_s_mean" not in seeds or seeds["tokens_per_s_mean"].dropna().empty:
        _note(ax, "no throughput recorded")
    else:
        x = params_axis(ax, seeds["params_total_mean"])
        for arch in archs_of(seeds):
            mine = seeds[seeds["arch"] == arch]
            ax.errorbar(
                x(mine["params_total_mean"]),
                mine["tokens_per_s_mean"],
                yerr=mine["tokens_per_s_std"].fillna(0),
                fmt="o",
                color=color(arch),
                label=display(arch),
                capsize=2,
                ms=4,
            )
        ax.set(ylabel="training tokens / s")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    save(fig, out_dir, "throughput")


def plot_emissions(grid: pd.DataFrame, out_dir: str) -> None:
    """CO2-equivalent emissions and energy of every training run (one dot each), per architecture."""
    runs = grid[grid["status"] == "ok"] if "status" in grid else grid
    fig, panels = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, column, label in (
        (panels[0], "emissions_kg", "emissions (kg CO₂eq)"),
        (panels[1], "energy_kwh", "energy (kWh)"),
    ):
        values = pd.to_numeric(runs.get(column, pd.Series(dtype=float)), errors="coerce")
        if values.dropna().empty:
            _note(ax, f"no {column}: emissions tracking was off or failed")
            continue
        archs = archs_of(runs)
        rng = np.random.default_rng(0)  # fixed jitter: identical figures for identical tables
        for i, arch in enumerate(archs):
            mine = values[runs["arch"] == arch].dropna()
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(mine)), mine, color=color(arch), s=14)
        ax.set_xticks(
            range(len(archs)), [f"{display(a)}\nΣ {values[runs['arch'] == a].sum():.3g}" for a in archs], fontsize=8
        )
        ax.set(ylabel=label)
        ax.grid(alpha=0.3, axis="y")
    save(fig, out_dir, "emissions")


def plot_all(
    grid_csv: str,
    seeds_csv: str,
    comparison_csv: str,
    out_dir: str,
    curves_dir: str,
    axes: list[str],
    baseline: str = "retnet",
) -> None:
    """Every figure of the report except latency (which needs the evaluation stage). `axes`: the grid's
    searched keys; `baseline`: the architecture the others are compared against."""
    grid, seeds, comparison = pd.read_csv(grid_csv), pd.read_csv(seeds_csv), pd.read_csv(comparison_csv)
    plot_loss_vs_params(seeds, out_dir)
    plot_diff_heatmap(comparison, out_dir, axes, archs_of(grid), baseline)
    plot_throughput(seeds, out_dir)
    plot_emissions(grid, out_dir)
    plot_curves(grid, curves_dir)
