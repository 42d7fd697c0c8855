"""Multi-query associative recall (``recall.json`` of each run trained on ``data.source: mqar``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from archbench.report.figures import empty, save, style, write_csv
from archbench.report.questions.runs import load

EVALUATION = "recall"


def answer(files, runs: pd.DataFrame, png: str, csv: str, **_settings) -> dict:
    rows = []
    for run, d in load(files, runs):
        for e in d["entries"]:
            rows.append(
                {"arch": run["arch"], "point": run["point"], "seed": run["seed"], "embed_dim": run["embed_dim"], **e}
            )
    table = pd.DataFrame(rows)
    if table.empty:
        write_csv(table, csv)
        empty(png, "no recall.json: set data.source: mqar (config/presets/mqar.yaml)")
        return {
            "sentence": "Associative recall was not measured (it needs data.source: mqar, see "
            "config/presets/mqar.yaml)."
        }
    per = (
        table.groupby(["arch", "embed_dim", "point", "pairs"], sort=False, dropna=False)
        .agg(accuracy=("accuracy", "mean"), chance=("chance", "first"), n_seeds=("seed", "nunique"))
        .reset_index()
    )
    write_csv(per, csv)
    # best point (learning rate) per arch x width, by mean accuracy over pair counts
    score = per.groupby(["arch", "embed_dim", "point"], dropna=False)["accuracy"].mean().reset_index()
    best = score.loc[score.groupby(["arch", "embed_dim"], dropna=False)["accuracy"].idxmax()]
    widths = sorted(w for w in best["embed_dim"].dropna().unique())
    styles = dict(zip(widths, ["-", "--", ":", "-."] * 4))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in best.itertuples():
        col, name = style(r.arch)
        line = per[(per["arch"] == r.arch) & (per["point"] == r.point)].sort_values("pairs")
        ax.plot(
            line["pairs"],
            line["accuracy"],
            "o" + styles.get(r.embed_dim, "-"),
            color=col,
            label=f"{name} d={r.embed_dim}",
        )
    ax.axhline(per["chance"].iloc[0], color="k", lw=0.8, ls=":", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("key-value pairs")
    ax.set_ylabel("recall accuracy (answer positions)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Multi-query associative recall")
    save(fig, png)
    top = int(per["pairs"].max())
    at_top = per[per["pairs"] == top]
    facts = {
        a: {"accuracy": float(g["accuracy"].max()), "embed_dim": g.loc[g["accuracy"].idxmax(), "embed_dim"]}
        for a, g in at_top.groupby("arch", sort=False)
    }
    parts = [f"{style(a)[1]} {f['accuracy']:.1%} (d={f['embed_dim']})" for a, f in facts.items()]
    sentence = (
        f"Associative recall at {top} key-value pairs (best width and learning rate, chance "
        f"{per['chance'].iloc[0]:.1%}): " + "; ".join(parts) + "."
    )
    return {"pairs": top, "archs": facts, "sentence": sentence}
