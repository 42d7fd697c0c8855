"""Report figures (matplotlib, Agg backend), each written as `<name>.png` and `<name>.svg`.

From the tables (results/report/*.csv): test loss per architecture and grid point, the test-loss
difference heat map, training throughput, emissions. From the runs: validation curves (Lightning's CSVLogger file) and,
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
from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from archbench.evaluation.columns import latency_entries  # noqa: E402
from archbench.report import figures  # noqa: E402
from archbench.report.collect import _read_json  # noqa: E402
from archbench.report.compare import archs_of, pairs  # noqa: E402
from archbench.report.figures import color, display  # noqa: E402
from archbench.report.figures import note as _note  # noqa: E402

TABLE_PLOTS = ["loss_vs_params", "diff_heatmap", "throughput", "emissions"]
LATENCY_PLOTS = ["decode_latency", "state_memory"]
# Below this max/min ratio a log axis has no readable ticks: parameters go on a linear axis instead.
LOG_AXIS_MIN_RATIO = 10.0
# Below this relative spread the sizes are matched: the x axis names the architectures (with their
# size) instead of stretching a 0.02% matching jitter across the plot.
MATCHED_MAX_SPREAD = 0.01
# How grid keys are shortened in point labels.
SHORT = {"learning_rate": "lr"}


def params_axis(ax, params: pd.Series, label: str = "parameters (total)"):
    """Set up a legible x axis for parameter counts over a wide range and return the function mapping
    counts onto it: log scale over >= 10x, else linear with engineering ticks (1.2M)."""
    values = pd.to_numeric(params, errors="coerce").dropna()
    low, high = (float(values.min()), float(values.max())) if len(values) else (1.0, 1.0)
    if low > 0 and high / low >= LOG_AXIS_MIN_RATIO:
        ax.set(xscale="log", xlabel=f"{label}, log scale")
        return lambda x: x
    ax.set(xlabel=label)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    return lambda x: x


def matched(params: pd.Series) -> bool:
    """Whether the parameter counts are matched (spread < 1%): then architecture goes on the x axis."""
    values = pd.to_numeric(params, errors="coerce").dropna()
    return bool(len(values)) and values.min() > 0 and (values.max() - values.min()) / values.min() < MATCHED_MAX_SPREAD


def by_arch(ax, seeds: pd.DataFrame, column: str, err: pd.Series | None, axes: list[str]) -> None:
    """One marker per architecture x grid point of ``column``, each labelled with the grid values that
    vary (lr 0.003), bars only where there is a spread (``err``). At matched size the x axis is the
    architecture (tick: name and size), the points side by side; otherwise total parameters."""
    archs = archs_of(seeds)
    varying = [k for k in axes if k in seeds and seeds[k].nunique() > 1]
    same_size = matched(seeds["params_total_mean"])
    x_of = None if same_size else params_axis(ax, seeds["params_total_mean"])
    for i, arch in enumerate(archs):
        mine = seeds[seeds["arch"] == arch].reset_index(drop=True)
        n = len(mine)
        if same_size:
            x = pd.Series([i + (j - (n - 1) / 2) * min(0.5 / max(n - 1, 1), 0.18) for j in range(n)])
        else:
            x = pd.Series(x_of(mine["params_total_mean"])).reset_index(drop=True)
        y = mine[column]
        ax.plot(x, y, ls="none", color=color(arch), marker=figures.marker(arch), ms=7, label=display(arch))
        spread = err[seeds["arch"] == arch].reset_index(drop=True) if err is not None else None
        if spread is not None and (spread.fillna(0) > 0).any():
            ax.errorbar(x, y, yerr=spread.fillna(0), fmt="none", ecolor=color(arch), capsize=3, lw=1)
        if varying:
            for xi, yi, row in zip(x, y, mine.itertuples(index=False)):
                text = ", ".join(f"{SHORT.get(k, k.replace('_', ' '))} {getattr(row, k)}" for k in varying)
                ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=7, color="0.25")
    if same_size:
        sizes = seeds.groupby("arch", sort=False)["params_total_mean"].mean()
        ax.set_xticks(range(len(archs)), [f"{display(a)}\n{figures.fmt_n(sizes[a])} params" for a in archs])
        ax.set_xlim(-0.6, len(archs) - 0.4)
        ax.set_xlabel("architecture (matched size: total parameters within 1%)")


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
    """One figure per grid point: validation loss (markers, the architecture's dash pattern) and
    training loss (faint) against the step, one line per architecture x seed (the runs of
    grid_results.csv, by their `run_dir`), titled with the grid point in words. Returns the names
    written."""
    by_point: dict[str, list] = {}
    order = {a: i for i, a in enumerate(archs_of(grid))} if len(grid) else {}
    for run in grid.itertuples(index=False):
        curve = read_curve(run.run_dir)
        if curve is not None:
            by_point.setdefault(run.point, []).append((run.arch, run.seed, curve))
    os.makedirs(out_dir, exist_ok=True)
    for point, runs in by_point.items():
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        labelled, has_train = set(), False
        for arch, _seed, curve in sorted(runs, key=lambda r: (order.get(r[0], len(order)), r[1])):
            if "train_loss" in curve:
                train = curve.dropna(subset=["train_loss"])
                has_train |= len(train) > 0
                ax.plot(train["step"], train["train_loss"], color=color(arch), alpha=0.3, lw=0.8)
            if "val_loss" in curve:
                val = validation_points(curve)
                ax.plot(
                    val["step"],
                    val["val_loss"],
                    color=color(arch),
                    marker=figures.marker(arch),
                    ls=figures.linestyle(arch),
                    ms=figures.marker_size(arch) - 2,
                    lw=1.4,
                    label=None if arch in labelled else display(arch),
                )
                labelled.add(arch)
        ax.set(xlabel="training step", ylabel="loss (nats/token)")
        ax.set_title(f"Validation loss during training\n{figures.point_words(point)}", fontsize=9)
        ax.grid(alpha=0.3)
        if labelled:
            handles, names = ax.get_legend_handles_labels()
            if has_train:  # one key for every faint line: the colour says whose
                handles.append(plt.Line2D([], [], color="0.5", alpha=0.4, lw=0.8))
                names.append("training loss (faint)")
            ax.legend(handles, names, fontsize=8)
        save(fig, out_dir, slug(point))
    return [slug(p) for p in by_point]


def validation_points(curve: pd.DataFrame) -> pd.DataFrame:
    """A run's validation rows, one per evaluation: the final validation Lightning logs right after the
    last in-loop one (steps 199 and 200) is the same model, so only the later of two adjacent steps stays."""
    val = curve.dropna(subset=["val_loss"]).sort_values("step")
    later = val["step"].shift(-1)
    return val[~(later - val["step"] <= 1)]


def plot_latency(runs: list[dict], out_dir: str, seeds_csv: str | None = None) -> None:
    """Per-token decode latency and state / KV-cache memory (MiB) vs context length: one labelled series
    per architecture and decoding mode, at the architecture's best grid point (lowest mean validation
    loss in `seeds_csv`; without it, its first grid point), mean over seeds, at the smallest batch size
    measured. Each architecture has its own marker and dash pattern (Transformer and Llama coincide);
    the original study's full-recompute decoding, where measured, is drawn thin with open markers.
    `runs`: run records (archbench.report.collect.run_record) with a `latency` file."""
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
    where = "each at its grid point with the lowest validation loss" if best else "each at its first grid point"
    for name, column, label, title in (
        ("decode_latency", "decode_ms_median", "decode time per token (ms, median)", "Decode time per token"),
        ("state_memory", "state_bytes", "recurrent state / KV cache (MiB)", "Decoding state memory"),
    ):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        values = pd.to_numeric(frame[column], errors="coerce") if column in frame else pd.Series(dtype=float)
        if column == "state_bytes":
            values = figures.mib(values)
        if values.dropna().empty:
            _note(ax, f"no {column} measurements in latency.json")
        else:
            _lines(ax, frame.assign(**{column: values}).dropna(subset=[column]), column)
            ax.set(xlabel="context length (tokens)", ylabel=label, xscale="log", yscale="log")
            for axis in (ax.xaxis, ax.yaxis):  # plain numbers (0.06, 1024), not 6x10^-2
                axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                axis.set_minor_formatter(NullFormatter())
            ax.set_title(f"{title} vs context length\n({where})", fontsize=9)
        save(fig, out_dir, name)


def _lines(ax, frame: pd.DataFrame, column: str) -> None:
    mean = frame.groupby(["arch", "mode", "context"], sort=False)[column].mean().reset_index()
    order = {a: i for i, a in enumerate(archs_of(mean))}
    groups = sorted(mean.groupby(["arch", "mode"], sort=False), key=lambda g: order[g[0][0]])
    for (arch, mode), line in groups:
        line = line.sort_values("context")
        recompute = mode == "recompute"
        ax.plot(
            line["context"],
            line[column],
            **{**figures.line_kw(arch), "label": f"{display(arch)} ({figures.mode_name(mode)})"},
            lw=0.9 if recompute else 1.6,
            mfc="none" if recompute else color(arch),
            alpha=0.7 if recompute else 1.0,
        )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


# --- from the tables -----------------------------------------------------------------------------


def plot_loss_vs_params(seeds: pd.DataFrame, out_dir: str, axes: list[str] | None = None) -> None:
    """Mean test loss of every architecture x grid point, labelled with its grid values (lr 0.003);
    bars are the 95% interval over seeds where there are >= 3, else the standard deviation (none with
    one seed). x: the architecture at matched size, else total parameters."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ci = (seeds["test_loss_ci_high"] - seeds["test_loss_mean"]).fillna(seeds["test_loss_std"])
    by_arch(ax, seeds, "test_loss_mean", ci, list(axes or []))
    ax.set(ylabel="test loss (nats/token)")
    ax.set_title("Test loss of each architecture at every grid point", fontsize=10)
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


def plot_diff_heatmap(comparison: pd.DataFrame, out_dir: str, axes: list[str], archs: list[str], baseline: str) -> None:
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


def plot_throughput(seeds: pd.DataFrame, out_dir: str, axes: list[str] | None = None) -> None:
    """Training throughput (tokens/s, mean over seeds; bars: standard deviation) of every architecture
    x grid point, labelled with its grid values. x as in loss_vs_params."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if "tokens_per_s_mean" not in seeds or seeds["tokens_per_s_mean"].dropna().empty:
        _note(ax, "no throughput recorded")
    else:
        by_arch(ax, seeds, "tokens_per_s_mean", seeds.get("tokens_per_s_std"), list(axes or []))
        ax.set(ylabel="training throughput (tokens/s)")
        ax.set_title("Training throughput of each architecture at every grid point", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    save(fig, out_dir, "throughput")


def plot_emissions(grid: pd.DataFrame, out_dir: str) -> None:
    """CO2-equivalent emissions (g) and energy (Wh) of every training run (one dot each), per
    architecture, with each architecture's total under its name."""
    runs = grid[grid["status"] == "ok"] if "status" in grid else grid
    fig, panels = plt.subplots(1, 2, figsize=(max(8, 3.2 * len(archs_of(runs))), 3.8))
    for ax, column, label, scale in (
        (panels[0], "emissions_kg", "emissions per run (g CO₂eq)", 1e3),
        (panels[1], "energy_kwh", "energy per run (Wh)", 1e3),
    ):
        values = pd.to_numeric(runs.get(column, pd.Series(dtype=float)), errors="coerce") * scale
        if values.dropna().empty:
            _note(ax, f"no {column}: emissions tracking was off or failed")
            continue
        archs = archs_of(runs)
        rng = np.random.default_rng(0)  # fixed jitter: identical figures for identical tables
        for i, arch in enumerate(archs):
            mine = values[runs["arch"] == arch].dropna()
            ax.scatter(
                i + rng.uniform(-0.15, 0.15, len(mine)), mine, color=color(arch), marker=figures.marker(arch), s=16
            )
        unit = label.rsplit("(", 1)[1].rstrip(")")
        ax.set_xticks(
            range(len(archs)),
            [f"{display(a)}\n{values[runs['arch'] == a].sum():.3g} {unit} in all" for a in archs],
            fontsize=7,
        )
        ax.set(ylabel=label)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Carbon emissions and energy of the training runs (CodeCarbon)", fontsize=10)
    save(fig, out_dir, "emissions")


def plot_all(
    grid_csv: str,
    seeds_csv: str,
    comparison_csv: str,
    out_dir: str,
    curves_dir: str,
    axes: list[str],
    baseline: str,
) -> None:
    """Every figure of the report except latency (which needs the evaluation stage). `axes`: the grid's
    searched keys; `baseline`: the architecture the others are compared against."""
    grid, seeds, comparison = pd.read_csv(grid_csv), pd.read_csv(seeds_csv), pd.read_csv(comparison_csv)
    plot_loss_vs_params(seeds, out_dir, axes)
    plot_diff_heatmap(comparison, out_dir, axes, archs_of(grid), baseline)
    plot_throughput(seeds, out_dir, axes)
    plot_emissions(grid, out_dir)
    plot_curves(grid, curves_dir)
