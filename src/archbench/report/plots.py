"""Report figures (matplotlib, Agg backend), each written as `<name>.png` and `<name>.svg`.

From the tables (results/report/*.csv): test loss vs parameters, the test-loss difference heat map,
training throughput, emissions. From the runs: validation curves (Lightning's CSVLogger file) and,
when the evaluation stage measured them, decode latency and state memory vs context length.
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from archbench.report.collect import latency_entries, parse_run_path, _read_json  # noqa: E402
from archbench.report.compare import ARCH_ORDER, PAIRS, archs_of, point_axes  # noqa: E402

COLORS = {"retnet": "tab:blue", "transformer": "tab:orange", "longnet": "tab:green"}
TABLE_PLOTS = ["loss_vs_params", "diff_heatmap", "throughput", "emissions"]
LATENCY_PLOTS = ["decode_latency", "state_memory"]


def color(arch: str) -> str:
    return COLORS.get(arch, "tab:gray")


def save(fig, out_dir: str, name: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, f"{name}.png"), dpi=110, bbox_inches="tight")  # long grid labels
    fig.savefig(os.path.join(out_dir, f"{name}.svg"), bbox_inches="tight")
    plt.close(fig)


def _note(ax, text: str) -> None:
    """A figure that says why it is empty, rather than a missing file (the report expects one)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_axis_off()


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


def plot_curves(metrics_paths: list[str], out_dir: str) -> list[str]:
    """One figure per grid point: validation loss (solid, markers) and training loss (faint) against
    the step, one line per architecture x seed. Returns the names written."""
    by_point: dict[str, list] = {}
    for path in metrics_paths:
        info = parse_run_path(path)
        curve = read_curve(os.path.dirname(path))
        if curve is not None:
            by_point.setdefault(info["point"], []).append((info["arch"], info["seed"], curve))
    os.makedirs(out_dir, exist_ok=True)
    for point, runs in by_point.items():
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        labelled = set()
        for arch, seed, curve in sorted(runs, key=lambda r: (ARCH_ORDER.index(r[0]) if r[0] in ARCH_ORDER else 9, r[1])):
            if "train_loss" in curve:
                train = curve.dropna(subset=["train_loss"])
                ax.plot(train["step"], train["train_loss"], color=color(arch), alpha=0.25, lw=0.8)
            if "val_loss" in curve:
                val = curve.dropna(subset=["val_loss"])
                ax.plot(val["step"], val["val_loss"], color=color(arch), marker="o", ms=3, lw=1.4,
                        label=None if arch in labelled else f"{arch} (validation)")
                labelled.add(arch)
        ax.set(xlabel="step", ylabel="loss (nats/token)", title=point.replace("/", "  "))
        ax.title.set_fontsize(8)
        ax.grid(alpha=0.3)
        if labelled:
            ax.legend(fontsize=8)
        save(fig, out_dir, slug(point))
    return [slug(p) for p in by_point]


def plot_latency(latency_paths: list[str], out_dir: str) -> None:
    """Per-token decode latency and state / KV-cache memory vs context length: one line per
    architecture x decoding mode x grid point (mean over seeds), at the smallest batch size measured.
    The original study's full-recompute decoding, where measured, is dashed."""
    rows = []
    for path in latency_paths:
        data = _read_json(path)
        if data is None:
            continue
        info = parse_run_path(path)
        entries = latency_entries(data)
        batch = min((e.get("batch_size", 1) for e in entries), default=1)
        rows += [{**e, "arch": info["arch"], "point": info["point"], "mode": e.get("mode") or "decode"}
                 for e in entries if e.get("batch_size", 1) == batch]
    frame = pd.DataFrame(rows)
    for name, column, label in (("decode_latency", "decode_ms_median", "decode time per token (ms, median)"),
                                ("state_memory", "state_bytes", "recurrent state / KV cache (bytes)")):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        values = pd.to_numeric(frame[column], errors="coerce") if column in frame else pd.Series(dtype=float)
        if values.dropna().empty:
            _note(ax, f"no {column} measurements in latency.json")
        else:
            _lines(ax, frame.assign(**{column: values}).dropna(subset=[column]), column)
            ax.set(xlabel="context length (tokens)", ylabel=label, xscale="log", yscale="log")
        save(fig, out_dir, name)


def _lines(ax, frame: pd.DataFrame, column: str) -> None:
    labelled = set()
    mean = frame.groupby(["arch", "mode", "point", "context"], sort=False)[column].mean().reset_index()
    for (arch, mode, _), line in mean.groupby(["arch", "mode", "point"], sort=False):
        line = line.sort_values("context")
        label = f"{arch} ({mode})"
        ax.plot(line["context"], line[column], color=color(arch), marker="o", ms=3, alpha=0.7,
                ls="--" if mode == "recompute" else "-", label=None if label in labelled else label)
        labelled.add(label)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


# --- from the tables -----------------------------------------------------------------------------

def plot_loss_vs_params(seeds: pd.DataFrame, out_dir: str) -> None:
    """Mean test loss against total parameters, one marker per architecture x grid point; bars are the
    95% interval over seeds where there are >= 3, else the standard deviation (none with one seed)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for arch in archs_of(seeds):
        mine = seeds[seeds["arch"] == arch]
        ci = (mine["test_loss_ci_high"] - mine["test_loss_mean"]).fillna(mine["test_loss_std"])
        ax.errorbar(mine["params_total_mean"], mine["test_loss_mean"], yerr=ci.fillna(0), fmt="o",
                    color=color(arch), label=arch, capsize=2, ms=4)
    ax.set(xscale="log", xlabel="parameters (total, log scale)", ylabel="test loss (nats/token)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save(fig, out_dir, "loss_vs_params")


def heatmap_layout(comparison: pd.DataFrame, axes: list[str]) -> tuple[list[str], list[str]]:
    """Split the varying grid keys between heat-map rows and columns (about half each)."""
    varying = [a for a in axes if comparison[a].nunique() > 1] or axes[:1]
    half = math.ceil(len(varying) / 2)
    return varying[:half], varying[half:]


def _labels(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    return [", ".join(f"{k}={v}" for k, v in zip(keys, row)) for row in frame[keys].itertuples(index=False)] \
        if keys else [""] * len(frame)


def plot_diff_heatmap(comparison: pd.DataFrame, out_dir: str) -> None:
    """Paired test-loss difference (a - b, mean over seeds) at every grid point, one panel per pair;
    blue = a has the lower loss. `*` marks a 95% interval that excludes 0."""
    axes = point_axes(comparison)
    pairs = [(a, b) for a, b in PAIRS if f"diff_{a}_minus_{b}" in comparison]
    rows, cols = heatmap_layout(comparison, axes)
    frame = comparison.assign(_row=_labels(comparison, rows), _col=_labels(comparison, cols))
    row_names, col_names = list(dict.fromkeys(frame["_row"])), list(dict.fromkeys(frame["_col"]))
    width = min(4 + 0.9 * len(col_names), 24)
    fig, panels = plt.subplots(max(len(pairs), 1), 1, figsize=(width, 1.2 + (0.35 * len(row_names) + 1) * max(len(pairs), 1)),
                               squeeze=False)
    if not pairs:
        _note(panels[0][0], "one architecture only: nothing to compare")
    for ax, (a, b) in zip(panels[:, 0], pairs):
        name = f"diff_{a}_minus_{b}"
        table = frame.pivot_table(index="_row", columns="_col", values=name, aggfunc="first", dropna=False)
        table = table.reindex(index=row_names, columns=col_names)
        limit = np.nanmax(np.abs(table.to_numpy())) if np.isfinite(table.to_numpy()).any() else 1.0
        image = ax.imshow(table.to_numpy(dtype=float), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        fig.colorbar(image, ax=ax, label="Δ test loss")
        ax.set_xticks(range(len(col_names)), col_names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(row_names)), row_names, fontsize=7)
        ax.set_title(f"{a} − {b} (negative: {a} better)", fontsize=9)
        if table.size <= 150:
            sig = frame.assign(_s=(frame[f"{name}_ci_high"] < 0) | (frame[f"{name}_ci_low"] > 0)).pivot_table(
                index="_row", columns="_col", values="_s", aggfunc="first").reindex(index=row_names, columns=col_names)
            for i, j in np.ndindex(table.shape):
                value = table.iat[i, j]
                if np.isfinite(value):
                    star = "*" if sig.iat[i, j] is True or sig.iat[i, j] == 1 else ""
                    ax.text(j, i, f"{value:+.3f}{star}", ha="center", va="center", fontsize=6,
                            color="white" if abs(value) > 0.6 * limit else "black")
    save(fig, out_dir, "diff_heatmap")


def plot_throughput(seeds: pd.DataFrame, out_dir: str) -> None:
    """Training throughput (tokens/s, mean over seeds) against total parameters."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if "tokens_per_s_mean" not in seeds or seeds["tokens_per_s_mean"].dropna().empty:
        _note(ax, "no throughput recorded")
    else:
        for arch in archs_of(seeds):
            mine = seeds[seeds["arch"] == arch]
            ax.errorbar(mine["params_total_mean"], mine["tokens_per_s_mean"], yerr=mine["tokens_per_s_std"].fillna(0),
                        fmt="o", color=color(arch), label=arch, capsize=2, ms=4)
        ax.set(xscale="log", xlabel="parameters (total, log scale)", ylabel="training tokens / s")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    save(fig, out_dir, "throughput")


def plot_emissions(grid: pd.DataFrame, out_dir: str) -> None:
    """CO2-equivalent emissions and energy of every training run (one dot each), per architecture."""
    runs = grid[grid["status"] == "ok"] if "status" in grid else grid
    fig, panels = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, column, label in ((panels[0], "emissions_kg", "emissions (kg CO₂eq)"),
                              (panels[1], "energy_kwh", "energy (kWh)")):
        values = pd.to_numeric(runs.get(column, pd.Series(dtype=float)), errors="coerce")
        if values.dropna().empty:
            _note(ax, f"no {column}: emissions tracking was off or failed")
            continue
        archs = archs_of(runs)
        rng = np.random.default_rng(0)  # fixed jitter: identical figures for identical tables
        for i, arch in enumerate(archs):
            mine = values[runs["arch"] == arch].dropna()
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(mine)), mine, color=color(arch), s=14)
        ax.set_xticks(range(len(archs)), [f"{a}\nΣ {values[runs['arch'] == a].sum():.3g}" for a in archs], fontsize=8)
        ax.set(ylabel=label)
        ax.grid(alpha=0.3, axis="y")
    save(fig, out_dir, "emissions")


def plot_all(grid_csv: str, seeds_csv: str, comparison_csv: str, metrics_paths: list[str], out_dir: str,
             curves_dir: str) -> None:
    """Every figure of the report except latency (which needs the evaluation stage)."""
    grid, seeds, comparison = pd.read_csv(grid_csv), pd.read_csv(seeds_csv), pd.read_csv(comparison_csv)
    plot_loss_vs_params(seeds, out_dir)
    plot_diff_heatmap(comparison, out_dir)
    plot_throughput(seeds, out_dir)
    plot_emissions(grid, out_dir)
    plot_curves(metrics_paths, curves_dir)
