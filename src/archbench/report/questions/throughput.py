"""Decode throughput and state memory vs batch size (``throughput.json`` of each run).

Speed is a property of the architecture and shape, not of the learning rate: the pipeline times one run
per architecture x shape (``evaluation.registry.timed_points``). A measurement flagged "noisy" or "under
load" (``timing_flag``, see ``archbench.provenance``) stays in the table but not in the figure's line or
the sentence, which says how many were dropped. The statistic is the median per-token decode time with
its p10-p90 spread."""

from __future__ import annotations

import pandas as pd

from archbench.provenance import NOISY_SPREAD, worst_flag
from archbench.report.figures import best_points, fmt_bytes, line_kw, pyplot, save, style
from archbench.report.questions.base import Inputs, Question
from archbench.report.questions.runs import load

FILE = "throughput_vs_batch"  # the figure's and the table's name
CAPTION = """
Decoding throughput (tokens/s, left) and carried state / KV-cache memory (right) against batch size
at a fixed prefilled context of {{ snakemake.config["latency"]["batch_context"] }} tokens, each
architecture in its cached mode (RetNet recurrent, Transformer KV cache), as in the RetNet paper's
Figure 6.
Each architecture × shape is timed once (one run per shape, whatever its learning rate: speed does not
depend on the weights). A point is the median per-token decode time over every timed step; a
measurement whose p90 / p10 spread exceeds 1.5 ("noisy") or that was taken while the machine's load
average exceeded the job's threads ("under load") stays in the table with its ``timing_flag`` and is
left out of the lines and the sentence.
"""


def table(inputs: Inputs) -> pd.DataFrame:
    """One row per run x batch size x mode of every throughput.json."""
    rows = []
    for run, d in load(inputs.of("throughput"), inputs.runs):
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
    return pd.DataFrame(rows)


def select(table: pd.DataFrame, inputs: Inputs) -> dict:
    """Per architecture its best timed point's clean measurements (a line), and the flagged ones dropped."""
    if table.empty:
        return {"empty": "no throughput.json: set latency.batch_sweep"}
    best = best_points(inputs.runs)  # on validation loss
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
    lines, dropped = {}, []
    for arch in dict.fromkeys(per["arch"]):
        measured = list(dict.fromkeys(per.loc[per["arch"] == arch, "point"]))
        # the best point when it was timed, else the timed point (one per shape, any learning rate)
        point = best.get(arch) if best.get(arch) in measured else measured[0]
        timed = per[(per["arch"] == arch) & (per["point"] == point)].dropna(subset=["tokens_per_s"])
        flagged = timed[timed["timing_flag"] != ""]
        dropped += [f"{style(arch)[1]} batch {int(r.batch_size)} ({r.timing_flag})" for r in flagged.itertuples()]
        line = timed[timed["timing_flag"] == ""].sort_values("batch_size")
        if not line.empty:
            lines[arch] = (point, line)
    return {
        "csv": per,
        "lines": lines,
        "dropped": dropped,
        "batches": sorted(per["batch_size"].unique()),
        "context": int(per["context"].iloc[0]),
    }


def plot(selected: dict, png: str) -> None:
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(11, 4.2))
    for arch, (_, line) in selected["lines"].items():
        kw = line_kw(arch)  # own marker and dashes: Transformer and Llama coincide
        ax1.plot(line["batch_size"], line["tokens_per_s"], **kw)
        ax2.plot(line["batch_size"], line["state_bytes"] / 2**20, **kw)
    for ax, label in ((ax1, "decode tokens/s"), (ax2, "state / KV cache (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
        ax.legend()
    ax1.set_yscale("log")
    ax2.set_yscale("log")
    fig.suptitle(f"Decoding at context {selected['context']} vs batch size (cf. RetNet paper Fig. 6)")
    save(fig, png)


def sentence(selected: dict) -> dict:
    if selected.get("empty"):
        return {"sentence": "Decode throughput vs batch was not measured (latency.batch_sweep is empty)."}
    facts, parts = {}, []
    batches, context, dropped = selected["batches"], selected["context"], selected["dropped"]
    for arch, (point, line) in selected["lines"].items():
        name = style(arch)[1]
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
    if parts:
        text = (
            f"Decode throughput from batch {batches[0]} to {batches[-1]} at context {context} "
            f"(median per-token time over every timed step): " + "; ".join(parts) + "."
        )
    else:
        text = f"No clean decode throughput measurement at context {context}: every one was flagged."
    if dropped:
        text += (
            f" Left out as noisy (p90/p10 > {NOISY_SPREAD}) or taken under load: {len(dropped)} measurement"
            f"{'s' if len(dropped) > 1 else ''} ({', '.join(dropped)})."
        )
    return {"context": context, "archs": facts, "dropped": dropped, "sentence": text}


QUESTION = Question.of_module(
    __name__, "throughput", "Throughput vs batch", CAPTION, figure=FILE, csv=FILE, evaluations=("throughput",), order=50
)
