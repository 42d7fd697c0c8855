"""Decode throughput and state memory vs batch size (``throughput.json`` of each run)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from archbench.report.figures import best_points, empty, fmt_bytes, line_kw, save, style, write_csv
from archbench.report.questions.runs import load

EVALUATION = "throughput"


def answer(files, runs: pd.DataFrame, png: str, csv: str, **_settings) -> dict:
    best = best_points(runs)  # on validation loss
    rows = []
    for run, d in load(files, runs):
        for r in d["rows"]:
            rows.append(
                {
                    "arch": run["arch"],
                    "point": run["point"],
                    "seed": run["seed"],
                    "context": d["context"],
                    "batch_size": r["batch_size"],
                    "mode": r["mode"],
                    "tokens_per_s": r.get("tokens_per_s"),
                    "decode_ms": r.get("decode_ms_median"),
                    "state_bytes": r.get("state_bytes"),
                    "peak_rss_bytes": r.get("peak_rss_bytes"),
                    "peak_cuda_bytes": r.get("peak_cuda_bytes"),
                    "skipped": r.get("skipped"),
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        write_csv(table, csv)
        empty(png, "no throughput.json: set latency.batch_sweep")
        return {"sentence": "Decode throughput vs batch was not measured (latency.batch_sweep is empty)."}
    per = (
        table.groupby(["arch", "point", "context", "mode", "batch_size"], sort=False)
        .agg(
            tokens_per_s=("tokens_per_s", "mean"),
            decode_ms=("decode_ms", "mean"),
            state_bytes=("state_bytes", "mean"),
            peak_rss_bytes=("peak_rss_bytes", "mean"),
            peak_cuda_bytes=("peak_cuda_bytes", "mean"),
            skipped=("skipped", "first"),
        )
        .reset_index()
    )
    write_csv(per, csv)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    facts, parts = {}, []
    for arch in dict.fromkeys(per["arch"]):
        point = best.get(arch) or per.loc[per["arch"] == arch, "point"].iloc[0]
        line = (
            per[(per["arch"] == arch) & (per["point"] == point)]
            .dropna(subset=["tokens_per_s"])
            .sort_values("batch_size")
        )
        if line.empty:
            continue
        col, name = style(arch)
        kw = line_kw(arch)  # own marker and dashes: Transformer and Llama coincide
        ax1.plot(line["batch_size"], line["tokens_per_s"], **kw)
        ax2.plot(line["batch_size"], line["state_bytes"] / 2**20, **kw)
        lo, hi = line.iloc[0], line.iloc[-1]
        facts[arch] = {
            "point": point,
            "batch": [int(lo.batch_size), int(hi.batch_size)],
            "tokens_per_s": [float(lo.tokens_per_s), float(hi.tokens_per_s)],
            "state_bytes": [float(lo.state_bytes), float(hi.state_bytes)],
        }
        parts.append(
            f"{name} {lo.tokens_per_s:,.0f} → {hi.tokens_per_s:,.0f} tokens/s "
            f"(×{hi.tokens_per_s / lo.tokens_per_s:.1f}), state {fmt_bytes(lo.state_bytes)} → "
            f"{fmt_bytes(hi.state_bytes)}"
        )
    context = int(per["context"].iloc[0])
    for ax, label in ((ax1, "decode tokens/s"), (ax2, "state / KV cache (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
        ax.legend()
    ax1.set_yscale("log")
    ax2.set_yscale("log")
    fig.suptitle(f"Decoding at context {context} vs batch size (cf. RetNet paper Fig. 6)")
    save(fig, png)
    batches = sorted(per["batch_size"].unique())
    sentence = (
        f"Decode throughput from batch {batches[0]} to {batches[-1]} at context {context}: " + "; ".join(parts) + "."
    )
    return {"context": context, "archs": facts, "sentence": sentence}
