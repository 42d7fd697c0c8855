"""Decode throughput and state memory vs batch size (``throughput.json`` of each run).

Speed is a property of the architecture and shape, not of the learning rate: the pipeline times one run
per architecture x shape (``evaluation.registry.timed_points``). A measurement flagged "noisy" or "under
load" (``timing_flag``, see ``archbench.provenance``) stays in the table but not in the figure's line or
the sentence, which says how many were dropped. The statistic is the median per-token decode time with
its p10-p90 spread."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from archbench.provenance import NOISY_SPREAD, worst_flag
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
                    "decode_ms_p10": r.get("decode_ms_p10"),
                    "decode_ms_p90": r.get("decode_ms_p90"),
                    "timing_flag": r.get("timing_flag") or "",
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
            decode_ms_p10=("decode_ms_p10", "mean"),
            decode_ms_p90=("decode_ms_p90", "mean"),
            timing_flag=("timing_flag", worst_flag),
            state_bytes=("state_bytes", "mean"),
            peak_rss_bytes=("peak_rss_bytes", "mean"),
            peak_cuda_bytes=("peak_cuda_bytes", "mean"),
            skipped=("skipped", "first"),
        )
        .reset_index()
    )
    write_csv(per, csv)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    facts, parts, dropped = {}, [], []
    batches = sorted(per["batch_size"].unique())
    for arch in dict.fromkeys(per["arch"]):
        measured = list(dict.fromkeys(per.loc[per["arch"] == arch, "point"]))
        # the best point when it was timed, else the timed point (one per shape, any learning rate)
        point = best.get(arch) if best.get(arch) in measured else measured[0]
        timed = per[(per["arch"] == arch) & (per["point"] == point)].dropna(subset=["tokens_per_s"])
        flagged = timed[timed["timing_flag"] != ""]
        dropped += [f"{style(arch)[1]} batch {int(r.batch_size)} ({r.timing_flag})" for r in flagged.itertuples()]
        line = timed[timed["timing_flag"] == ""].sort_values("batch_size")
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
        own = (
            ""
            if (lo.batch_size, hi.batch_size) == (batches[0], batches[-1])
            else f" (batch {lo.batch_size}–{hi.batch_size})"
        )
        parts.append(
            f"{name} {lo.tokens_per_s:,.0f} → {hi.tokens_per_s:,.0f} tokens/s{own} "
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
    if parts:
        sentence = (
            f"Decode throughput from batch {batches[0]} to {batches[-1]} at context {context} "
            f"(median per-token time over every timed step): " + "; ".join(parts) + "."
        )
    else:
        sentence = f"No clean decode throughput measurement at context {context}: every one was flagged."
    if dropped:
        sentence += (
            f" Left out as noisy (p90/p10 > {NOISY_SPREAD}) or taken under load: {len(dropped)} measurement"
            f"{'s' if len(dropped) > 1 else ''} ({', '.join(dropped)})."
        )
    return {"context": context, "archs": facts, "dropped": dropped, "sentence": sentence}
