"""Length extrapolation: loss at k x the training length (``length.json`` of each run).

The headline is the same-target comparison of :mod:`archbench.evaluation.length`: the last ``seq_len``
targets of windows inside one document, read with k x the training length of context minus read
with the training length (1x). Negative: the longer context helps; positive: reading past the
training length hurts. The 95% interval is a bootstrap over windows (pooled over the seeds); the
position-free controls (unigram / bigram on the same windows) are printed beside it, and an interval
that covers the control reads "no effect detectable". (The earlier headline, positions beyond T at
k x vs the last half of T at 1x, read different tokens with different context: unigram / bigram
models scored -0.027 / -0.011 nats through it.) The sentence and the figure use the same multiplier
(``report.headline_multiplier`` where measured, else the longest). Each architecture is shown at its
grid point with the lowest validation loss."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from archbench.report.figures import best_points, pyplot, save, style
from archbench.report.questions.base import Inputs, Question
from archbench.report.questions.runs import load

FILE = "length_extrapolation"  # the figure's and the table's name
CAPTION = """
Length extrapolation: perplexity on the held-out test tokens per position bucket (geometric buckets,
log x) at the longest context each architecture can read, up to {{ snakemake.config["length"]["multipliers"] | max }}x
the training length (dashed line), each architecture at its grid point with the lowest validation loss.
RetNet reads long contexts chunkwise; a Transformer with learned positions cannot go past its training
length (those rows say "skipped"). The table gives, per architecture, grid point and multiplier, the mean
loss over the whole context, ``tail_loss`` (the last half of the context) and ``beyond_loss`` (the
positions beyond the training length); the headline compares ``beyond_loss`` at k x with ``tail_loss``
at 1x, as a whole-context mean dilutes a degradation.
"""
BOOTSTRAP = 2000


def bootstrap_interval(values, iters: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float] | None:
    """95% percentile bootstrap interval of the mean of ``values`` (None below 2 values)."""
    x = np.asarray([v for v in values if v is not None], float)
    if len(x) < 2:
        return None
    means = x[np.random.default_rng(seed).integers(0, len(x), (iters, len(x)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def same_targets(docs: list[dict], k: int) -> dict | None:
    """The headline of one architecture at multiplier ``k`` from its runs' length.json (seeds pooled):
    {delta, interval, n_windows, n_seeds, aligned, control: {name: mean}, covers_control}."""
    st = [e["same_targets"] for d in docs for e in d["entries"] if e.get("multiplier") == k and e.get("same_targets")]
    st = [x for x in st if "far" in x]
    if not st:
        return None
    delta = [f - n for x in st for f, n in zip(x["far"], x["near"])]
    iv = bootstrap_interval(delta)
    control = {
        name: float(np.mean([v for x in st for v in x.get("control", {}).get(name, [])]))
        for name in ("unigram", "bigram")
        if any(x.get("control", {}).get(name) for x in st)
    }
    covers = iv is not None and all(iv[0] <= c <= iv[1] for c in control.values()) if control else None
    return {
        "delta": float(np.mean(delta)),
        "interval": iv,
        "n_windows": len(delta),
        "n_seeds": len(st),
        "aligned": all(x.get("aligned") for x in st),
        "control": control,
        "covers_control": covers,
    }


def _same_target_text(name: str, h: dict, k: int) -> str:
    iv = h["interval"]
    number = f"{h['delta']:+.3f}" + (f" [{iv[0]:+.3f}, {iv[1]:+.3f}]" if iv else " (no interval: < 2 windows)")
    where = f"{h['n_windows']} windows, {h['n_seeds']} seed(s)" + ("" if h["aligned"] else ", windows cross documents")
    if h["covers_control"]:
        return f"{name}: no effect detectable at {k}x ({number} nats; {where})"
    return f"{name} {number} nats at {k}x ({where})"


def beyond_loss(entry: dict, seq_len: int) -> float | None:
    """Mean loss over the positions >= seq_len of one entry (n-weighted buckets); None if it has none."""
    buckets = [b for b in entry.get("buckets", []) if b["start"] >= seq_len and b.get("n")]
    if not buckets:
        return None
    return float(sum(b["loss"] * b["n"] for b in buckets) / sum(b["n"] for b in buckets))


COLUMNS = ["arch", "point", "seed", "multiplier", "context", "mean_loss", "tail_loss", "beyond_loss", "skipped"]


def table(inputs: Inputs) -> pd.DataFrame:
    """One row per run x multiplier of every length.json."""
    rows = []
    for run, d in load(inputs.of("length"), inputs.runs):
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
    return pd.DataFrame(rows, columns=COLUMNS)


def _by_k(values) -> dict:
    return {int(k): (None if pd.isna(v) else float(v)) for k, v in values.items()}


def select(table: pd.DataFrame, inputs: Inputs) -> dict:
    """Per architecture its best point (validation loss), the headline multiplier (the configured one
    where measured, else the longest: the figure shows the sentence's), its seeds' per-bucket loss at it
    and the same-target headline."""
    if table.empty:
        return {"empty": "no length.json: enable length.enabled"}
    headline_multiplier = inputs.report["headline_multiplier"]
    data = load(inputs.of("length"), inputs.runs)
    best = best_points(inputs.runs)  # on validation loss
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
    archs = {}
    for arch in dict.fromkeys(table["arch"]):
        point = best.get(arch) or table.loc[table["arch"] == arch, "point"].iloc[0]
        mine = [d for run, d in data if run["arch"] == arch and run["point"] == point]
        ok = [e for e in mine[0]["entries"] if "mean_loss" in e]
        if not ok:
            continue
        measured = {e["multiplier"] for e in ok}
        k = headline_multiplier if headline_multiplier in measured else max(measured)  # figure = sentence
        # mean over seeds of the per-bucket loss at that context
        buckets = [[b for e in d["entries"] if e.get("multiplier") == k for b in e["buckets"]] for d in mine]
        rows_a = per[(per["arch"] == arch) & (per["point"] == point)].set_index("multiplier")
        h = same_targets(mine, k)
        archs[arch] = {
            "k": k,
            "x": [math.sqrt((b["start"] + 1) * b["end"]) for b in buckets[0]],
            "y": np.exp(np.mean([[b["loss"] for b in bs] for bs in buckets], axis=0)),
            "facts": {
                "point": point,
                "seq_len": mine[0]["seq_len"],
                "loss": _by_k(rows_a["mean_loss"]),
                "tail_loss": _by_k(rows_a["tail_loss"]),
                "beyond_loss": _by_k(rows_a["beyond_loss"]),
                "skipped": {int(k): v for k, v in rows_a["skipped"].items() if isinstance(v, str)},
                "headline": {"multiplier": k, **h} if h else None,
            },
        }
    return {"csv": per, "archs": archs, "headline_multiplier": headline_multiplier}


def plot(selected: dict, png: str) -> None:
    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    for arch, a in selected["archs"].items():
        col, name = style(arch)
        ax.plot(a["x"], a["y"], "o-", color=col, label=f"{name} ({a['k']}x)")
    for s in {a["facts"]["seq_len"] for a in selected["archs"].values()}:
        ax.axvline(s, color="k", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("position in the context (token index, geometric buckets)")
    ax.set_ylabel("perplexity")
    ax.set_title("Length extrapolation (dashed: training length)")
    ax.legend()
    save(fig, png)


def sentence(selected: dict) -> dict:
    if selected.get("empty"):
        return {"measured": False, "sentence": "Length extrapolation was not measured (length.enabled is false)."}
    headline_multiplier = selected["headline_multiplier"]
    parts, controls = [], []
    for arch, a in selected["archs"].items():
        f, k, name = a["facts"], a["k"], style(arch)[1]
        h = f["headline"]
        if h:
            parts.append(_same_target_text(name, h, k))
            controls.append(h["control"])
        elif headline_multiplier in f["skipped"]:
            parts.append(f"{name} cannot read {headline_multiplier}x (learned positions end at its training length)")
        elif k > 1:
            parts.append(f"{name}: no same-target windows in length.json at {k}x (re-run its length job)")
    control = {
        name: float(np.mean([c[name] for c in controls if name in c]))
        for name in ("unigram", "bigram")
        if any(name in c for c in controls)
    }
    control_text = ", ".join(f"{n} {v:+.3f}" for n, v in control.items() if not math.isnan(v)) or "not recorded"
    text = (
        (
            "Length extrapolation (the same target tokens, the last training-length of windows inside one "
            "document, read with k x the training length of context minus with 1x; nats/token, 95% bootstrap "
            f"interval over windows; position-free control on the same windows: {control_text}; grid point "
            "selected on validation loss): " + "; ".join(parts) + "."
        )
        if parts
        else "Length extrapolation: no architecture read past 1x."
    )
    return {"archs": {arch: a["facts"] for arch, a in selected["archs"].items()}, "sentence": text}


QUESTION = Question.of_module(
    __name__, "length", "Length extrapolation", CAPTION, figure=FILE, csv=FILE, evaluations=("length",), order=10
)
