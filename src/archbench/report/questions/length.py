"""Length extrapolation: loss at k x the training length (``length.json`` of each run).

The headline compares the loss on the positions *beyond* the training length at k x (the buckets that
start at or after ``seq_len``, weighted by their scored positions) with the loss on the last half of
the training length at 1x (``tail_loss``): a mean over the whole context would dilute a degradation
with the positions the model was trained on. Each architecture is shown at its grid point with the
lowest validation loss."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from archbench.report.figures import best_points, empty, save, style, write_csv
from archbench.report.questions.runs import load

EVALUATION = "length"


def beyond_loss(entry: dict, seq_len: int) -> float | None:
    """Mean loss over the positions >= seq_len of one entry (n-weighted buckets); None if it has none."""
    buckets = [b for b in entry.get("buckets", []) if b["start"] >= seq_len and b.get("n")]
    if not buckets:
        return None
    return float(sum(b["loss"] * b["n"] for b in buckets) / sum(b["n"] for b in buckets))


def answer(files, runs: pd.DataFrame, png: str, csv: str, headline_multiplier: int = 4, **_settings) -> dict:
    data = load(files, runs)
    best = best_points(runs)  # on validation loss
    rows = []
    for run, d in data:
        for e in d["entries"]:
            rows.append(
                {
                    "arch": run["arch"],
                    "point": run["point"],
                    "seed": run["seed"],
                    "multiplier": e["multiplier"],
                    "context": e["context"],
                    "mean_loss": e.get("mean_loss"),
                    "tail_loss": e.get("tail_loss"),
                    "beyond_loss": beyond_loss(e, d["seq_len"]),
                    "skipped": e.get("skipped"),
                }
            )
    table = pd.DataFrame(
        rows,
        columns=["arch", "point", "seed", "multiplier", "context", "mean_loss", "tail_loss", "beyond_loss", "skipped"],
    )
    if table.empty:
        write_csv(table, csv)
        empty(png, "no length.json: enable length.enabled")
        return {"sentence": "Length extrapolation was not measured (length.enabled is false)."}
    per = (
        table.groupby(["arch", "point", "multiplier", "context"], sort=False, dropna=False)
        .agg(
            mean_loss=("mean_loss", "mean"),
            tail_loss=("tail_loss", "mean"),
            beyond_loss=("beyond_loss", "mean"),
            n_seeds=("seed", "nunique"),
            skipped=("skipped", "first"),
        )
        .reset_index()
    )
    base = per[per["multiplier"] == per["multiplier"].min()].set_index(["arch", "point"])["mean_loss"]
    per["ratio_to_1x"] = [r.mean_loss / base.get((r.arch, r.point), np.nan) for r in per.itertuples()]
    write_csv(per, csv)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    facts, parts = {}, []
    for arch in dict.fromkeys(table["arch"]):
        point = best.get(arch) or table.loc[table["arch"] == arch, "point"].iloc[0]
        mine = [d for run, d in data if run["arch"] == arch and run["point"] == point]
        ok = [e for e in mine[0]["entries"] if "mean_loss" in e]
        if not ok:
            continue
        longest = max(e["multiplier"] for e in ok)
        col, name = style(arch)
        # mean over seeds of the per-bucket loss at the longest context the model can read
        buckets = [[b for e in d["entries"] if e.get("multiplier") == longest for b in e["buckets"]] for d in mine]
        x = [math.sqrt((b["start"] + 1) * b["end"]) for b in buckets[0]]
        y = np.exp(np.mean([[b["loss"] for b in bs] for bs in buckets], axis=0))
        ax.plot(x, y, "o-", color=col, label=f"{name} ({longest}x)")
        rows_a = per[(per["arch"] == arch) & (per["point"] == point)].set_index("multiplier")
        f = {
            "point": point,
            "seq_len": mine[0]["seq_len"],
            "loss": {int(k): (None if pd.isna(v) else float(v)) for k, v in rows_a["mean_loss"].items()},
            "tail_loss": {int(k): (None if pd.isna(v) else float(v)) for k, v in rows_a["tail_loss"].items()},
            "beyond_loss": {int(k): (None if pd.isna(v) else float(v)) for k, v in rows_a["beyond_loss"].items()},
            "skipped": {int(k): v for k, v in rows_a["skipped"].items() if isinstance(v, str)},
        }
        facts[arch] = f
        k = headline_multiplier if headline_multiplier in f["loss"] else longest
        one, far = f["tail_loss"].get(int(per["multiplier"].min())), f["beyond_loss"].get(k)
        if far is not None and one is not None:
            parts.append(f"{name} {far:.3f} vs {one:.3f} nats ({far - one:+.3f}) at {k}x")
        elif k in f["skipped"]:
            parts.append(f"{name} cannot read {k}x (learned positions end at its training length)")
    for s in {f["seq_len"] for f in facts.values()}:
        ax.axvline(s, color="k", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("position in the context (token index, geometric buckets)")
    ax.set_ylabel("perplexity")
    ax.set_title("Length extrapolation (dashed: training length)")
    ax.legend()
    save(fig, png)
    sentence = (
        (
            "Length extrapolation (test loss on the positions beyond the training length at k x vs the last "
            "half of the training length at 1x; grid point selected on validation loss): " + "; ".join(parts) + "."
        )
        if parts
        else "Length extrapolation: no architecture read past 1x."
    )
    return {"archs": facts, "sentence": sentence}
