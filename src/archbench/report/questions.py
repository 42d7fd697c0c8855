"""The architecture questions: length extrapolation, scaling, recall, decode throughput vs batch.

``write_questions`` (rule ``questions``) turns the runs' ``metrics.json`` and the evaluation files
``length.json`` / ``throughput.json`` / ``recall.json`` into one figure and one table per question
and ``questions.json``: per question the numbers and one sentence computed from them, which
``summary.md`` prints (:func:`summary_section`). A question without data still gets its figure
(saying why it is empty) and a sentence saying what to run, so the report's file set is fixed.

Where an architecture has several grid points (learning rates, widths), the length and throughput
answers use its best point (lowest mean test loss over seeds); the tables list every point.
"""

from __future__ import annotations

import json
import math
import os
import re

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from archbench.io import atomic_file, write_json  # noqa: E402
from archbench.report import scaling  # noqa: E402

_RUN = re.compile(r"(?:^|/)(?:runs|eval)/(?P<arch>[^/]+)/(?P<point>.+)/seed~(?P<seed>\d+)/[^/]+$")
QUESTIONS = ("length", "scaling", "recall", "throughput")


def run_of(path: str) -> dict:
    """The run a file belongs to, as a join key between a run's metrics.json and its evaluation files
    (``point`` is an opaque folder label); arch and seed of a run are then read from its metrics.json."""
    m = _RUN.search(os.fspath(path).replace(os.sep, "/"))
    if not m:
        raise ValueError(f"{path}: not a run file (expected .../runs|eval/<arch>/<point>/seed~<n>/<file>)")
    return {"arch": m["arch"], "point": m["point"], "seed": int(m["seed"])}


def _load(paths) -> list[tuple[dict, dict]]:
    out = []
    for p in paths or []:
        if os.path.exists(p):
            with open(p, encoding="utf-8") as fh:
                out.append((run_of(p), json.load(fh)))
    return out


def _style(arch: str) -> tuple[str, str]:
    """(colour, display name) from the architecture registry; unknown names get grey."""
    from archbench.models.registry import ARCHS

    a = ARCHS.get(arch)
    return (a.color, a.display) if a else ("tab:gray", arch)


def _save(fig, path: str) -> None:
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def _empty(path: str, text: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_axis_off()
    _save(fig, path)


def _write_csv(frame: pd.DataFrame, path: str) -> None:
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, index=False)


def runs_frame(metrics_paths) -> pd.DataFrame:
    rows = []
    for run, m in _load(metrics_paths):
        hp = m.get("hparams", {})
        n = m.get("params_non_embedding")
        run = {**run, "arch": m.get("arch", run["arch"]), "seed": int(m.get("seed", run["seed"]))}
        rows.append(
            {
                **run,
                "test_loss": m.get("test_loss"),
                "params": n,
                "size_key": n,
                "tokens": m.get("tokens_seen"),
                "flops": scaling.flops_per_token(run["arch"], n, hp) * m.get("tokens_seen", 0)
                if n and {"layers", "embed_dim", "seq_len"} <= set(hp)
                else None,
                "embed_dim": hp.get("embed_dim"),
            }
        )
    return pd.DataFrame(
        rows, columns=["arch", "point", "seed", "test_loss", "params", "size_key", "tokens", "flops", "embed_dim"]
    )


def best_points(runs: pd.DataFrame) -> dict[str, str]:
    """{arch: its grid point with the lowest mean test loss}."""
    if runs.empty:
        return {}
    mean = runs.groupby(["arch", "point"], sort=False)["test_loss"].mean().reset_index()
    return {a: g.loc[g["test_loss"].idxmin(), "point"] for a, g in mean.groupby("arch", sort=False)}


def _fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def _fmt_n(n: float) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


# ----------------------------------------------------------------------------- 1. length


def length_answer(paths, best: dict, png: str, csv: str, headline_k: int = 4) -> dict:
    data = _load(paths)
    rows = []
    for run, d in data:
        for e in d["entries"]:
            rows.append(
                {
                    **run,
                    "multiplier": e["multiplier"],
                    "context": e["context"],
                    "mean_loss": e.get("mean_loss"),
                    "tail_loss": e.get("tail_loss"),
                    "skipped": e.get("skipped"),
                }
            )
    table = pd.DataFrame(
        rows, columns=["arch", "point", "seed", "multiplier", "context", "mean_loss", "tail_loss", "skipped"]
    )
    if table.empty:
        _write_csv(table, csv)
        _empty(png, "no length.json: enable length.enabled")
        return {"sentence": "Length extrapolation was not measured (length.enabled is false)."}
    per = (
        table.groupby(["arch", "point", "multiplier", "context"], sort=False, dropna=False)
        .agg(
            mean_loss=("mean_loss", "mean"),
            tail_loss=("tail_loss", "mean"),
            n_seeds=("seed", "nunique"),
            skipped=("skipped", "first"),
        )
        .reset_index()
    )
    base = per[per["multiplier"] == per["multiplier"].min()].set_index(["arch", "point"])["mean_loss"]
    per["ratio_to_1x"] = [r.mean_loss / base.get((r.arch, r.point), np.nan) for r in per.itertuples()]
    _write_csv(per, csv)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    facts, parts = {}, []
    for arch in dict.fromkeys(table["arch"]):
        point = best.get(arch) or table.loc[table["arch"] == arch, "point"].iloc[0]
        mine = [d for run, d in data if run["arch"] == arch and run["point"] == point]
        ok = [e for e in mine[0]["entries"] if "mean_loss" in e]
        if not ok:
            continue
        longest = max(e["multiplier"] for e in ok)
        col, name = _style(arch)
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
            "skipped": {int(k): v for k, v in rows_a["skipped"].items() if isinstance(v, str)},
        }
        facts[arch] = f
        k = headline_k if headline_k in f["loss"] else longest
        one = f["loss"].get(int(per["multiplier"].min()))
        if f["loss"].get(k) is not None and one:
            parts.append(f"{name} {f['loss'][k]:.3f} vs {one:.3f} nats ({f['loss'][k] - one:+.3f}) at {k}x")
        elif k in f["skipped"]:
            parts.append(f"{name} cannot read {k}x (learned positions end at its training length)")
    seq_lens = {f["seq_len"] for f in facts.values()}
    for s in seq_lens:
        ax.axvline(s, color="k", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("position in the context (token index, geometric buckets)")
    ax.set_ylabel("perplexity")
    ax.set_title("Length extrapolation (dashed: training length)")
    ax.legend()
    _save(fig, png)
    sentence = (
        (
            "Length extrapolation (test loss over the whole context at k x the training length vs 1x): "
            + "; ".join(parts)
            + "."
        )
        if parts
        else "Length extrapolation: no architecture read past 1x."
    )
    return {"archs": facts, "sentence": sentence}


# ----------------------------------------------------------------------------- 2. scaling


def scaling_answer(runs: pd.DataFrame, png: str, csv: str, max_params: float = 1e12) -> dict:
    ok = runs.dropna(subset=["test_loss", "params"])
    fits = (
        {
            x: scaling.scaling_fits(ok.dropna(subset=[x]).to_dict("records"), x=x, max_params=max_params)
            for x in ("params", "flops")
        }
        if not ok.empty
        else {}
    )
    rows = []
    for x, out in fits.items():
        for arch, f in out["fits"].items():
            iv = f.get("interval", {})
            rows.append(
                {
                    "x": x,
                    "arch": arch,
                    "n_sizes": len(f["sizes"]),
                    "n_seeds": f["n_seeds"],
                    **{k: f.get(k) for k in ("E", "A", "alpha")},
                    **{
                        f"{k}_{s}": (iv.get(k) or [None, None])[i]
                        for k in ("E", "A", "alpha")
                        for i, s in enumerate(("low", "high"))
                    },
                    "error": f.get("error"),
                }
            )
        for c in out["crossovers"]:
            rows.append(
                {
                    "x": x,
                    "arch": f"{c['a']}|{c['b']}",
                    "crossover": c["crossover"],
                    "crossover_low": (c.get("interval") or [None, None])[0],
                    "crossover_high": (c.get("interval") or [None, None])[1],
                    "range_low": c["range"][0],
                    "range_high": c["range"][1],
                }
            )
    _write_csv(pd.DataFrame(rows), csv)

    fitted = {a: f for a, f in fits.get("params", {}).get("fits", {}).items() if "alpha" in f}
    if not fitted:
        sizes = ok.groupby("arch")["size_key"].nunique().to_dict() if not ok.empty else {}
        _empty(png, "a scaling fit needs >= 3 model sizes per architecture (config/presets/scaling.yaml)")
        return {
            "fits": {},
            "sentence": "Scaling: no fit — it needs >= 3 model sizes per architecture, this run has "
            + (", ".join(f"{_style(a)[1]} {n}" for a, n in sizes.items()) or "none")
            + " (run config/presets/scaling.yaml).",
        }
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, x in zip(axes, ("params", "flops")):
        for arch, f in fits[x]["fits"].items():
            col, name = _style(arch)
            ax.plot(f["sizes"], f["loss"], "o", color=col)
            if "alpha" in f:
                grid = np.logspace(np.log10(min(f["sizes"])), np.log10(max(f["sizes"])), 100)
                ax.plot(
                    grid,
                    scaling.power_law(grid, f["E"], f["A"], f["alpha"]),
                    "-",
                    color=col,
                    label=f"{name}: E={f['E']:.2f}, α={f['alpha']:.2f}",
                )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # long labels overlap on a narrow range
        ax.set_xlabel("non-embedding parameters" if x == "params" else "training FLOPs")
        ax.set_ylabel("test loss (nats/token)")
        ax.legend(fontsize=8)
    fig.suptitle("Scaling: L = E + A·x^(−α) per architecture (best grid point per size, mean over seeds)")
    _save(fig, png)

    parts = []
    for arch, f in fitted.items():
        iv = f.get("interval", {}).get("alpha")
        parts.append(
            f"{_style(arch)[1]} α = {f['alpha']:.3f}"
            + (f" [{iv[0]:.3f}, {iv[1]:.3f}]" if iv else "")
            + f" ({len(f['sizes'])} sizes, {f['n_seeds']} seed(s))"
        )
    cross = []
    for c in fits["params"]["crossovers"]:
        a, b = _style(c["a"])[1], _style(c["b"])[1]
        where = f"{_fmt_n(c['range'][0])}–{_fmt_n(c['range'][1])} parameters"
        if c["crossover"] is None:
            cross.append(f"{a} and {b}: no crossover predicted in {where}")
        else:
            iv = c.get("interval")
            cross.append(
                f"{a} and {b} are predicted to cross at N ≈ {_fmt_n(c['crossover'])}"
                + (
                    f" (95% bootstrap interval {_fmt_n(iv[0])}–{_fmt_n(iv[1])}, "
                    f"{c['bootstrap_fraction_crossing']:.0%} of refits cross)"
                    if iv
                    else " (no interval: fewer than 3 seeds)"
                )
            )
    sentence = "Scaling: " + "; ".join(parts) + (". " + "; ".join(cross) + "." if cross else ".")
    return {"fits": fits, "sentence": sentence}


# ----------------------------------------------------------------------------- 3. recall


def recall_answer(paths, runs: pd.DataFrame, png: str, csv: str) -> dict:
    rows = []
    width = runs.set_index(["arch", "point", "seed"])["embed_dim"].to_dict() if not runs.empty else {}
    for run, d in _load(paths):
        for e in d["entries"]:
            rows.append({**run, "embed_dim": width.get((run["arch"], run["point"], run["seed"])), **e})
    table = pd.DataFrame(rows)
    if table.empty:
        _write_csv(table, csv)
        _empty(png, "no recall.json: set data.source: mqar (config/presets/mqar.yaml)")
        return {
            "sentence": "Associative recall was not measured (it needs data.source: mqar, see "
            "config/presets/mqar.yaml)."
        }
    per = (
        table.groupby(["arch", "embed_dim", "point", "pairs"], sort=False, dropna=False)
        .agg(accuracy=("accuracy", "mean"), chance=("chance", "first"), n_seeds=("seed", "nunique"))
        .reset_index()
    )
    _write_csv(per, csv)
    # best point (learning rate) per arch x width, by mean accuracy over pair counts
    score = per.groupby(["arch", "embed_dim", "point"], dropna=False)["accuracy"].mean().reset_index()
    best = score.loc[score.groupby(["arch", "embed_dim"], dropna=False)["accuracy"].idxmax()]
    widths = sorted(w for w in best["embed_dim"].dropna().unique())
    styles = dict(zip(widths, ["-", "--", ":", "-."] * 4))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in best.itertuples():
        col, name = _style(r.arch)
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
    _save(fig, png)
    top = int(per["pairs"].max())
    at_top = per[per["pairs"] == top]
    facts = {
        a: {"accuracy": float(g["accuracy"].max()), "embed_dim": g.loc[g["accuracy"].idxmax(), "embed_dim"]}
        for a, g in at_top.groupby("arch", sort=False)
    }
    parts = [f"{_style(a)[1]} {f['accuracy']:.1%} (d={f['embed_dim']})" for a, f in facts.items()]
    sentence = (
        f"Associative recall at {top} key-value pairs (best width and learning rate, chance "
        f"{per['chance'].iloc[0]:.1%}): " + "; ".join(parts) + "."
    )
    return {"pairs": top, "archs": facts, "sentence": sentence}


# ----------------------------------------------------------------------------- 4. throughput vs batch


def throughput_answer(paths, best: dict, png: str, csv: str) -> dict:
    rows = []
    for run, d in _load(paths):
        for r in d["rows"]:
            rows.append(
                {
                    **run,
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
        _write_csv(table, csv)
        _empty(png, "no throughput.json: set latency.batch_sweep")
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
    _write_csv(per, csv)
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
        col, name = _style(arch)
        ax1.plot(line["batch_size"], line["tokens_per_s"], "o-", color=col, label=name)
        ax2.plot(line["batch_size"], line["state_bytes"] / 2**20, "o-", color=col, label=name)
        lo, hi = line.iloc[0], line.iloc[-1]
        facts[arch] = {
            "batch": [int(lo.batch_size), int(hi.batch_size)],
            "tokens_per_s": [float(lo.tokens_per_s), float(hi.tokens_per_s)],
            "state_bytes": [float(lo.state_bytes), float(hi.state_bytes)],
        }
        parts.append(
            f"{name} {lo.tokens_per_s:,.0f} → {hi.tokens_per_s:,.0f} tokens/s "
            f"(×{hi.tokens_per_s / lo.tokens_per_s:.1f}), state {_fmt_bytes(lo.state_bytes)} → "
            f"{_fmt_bytes(hi.state_bytes)}"
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
    _save(fig, png)
    batches = sorted(per["batch_size"].unique())
    sentence = (
        f"Decode throughput from batch {batches[0]} to {batches[-1]} at context {context}: " + "; ".join(parts) + "."
    )
    return {"context": context, "archs": facts, "sentence": sentence}


# ----------------------------------------------------------------------------- all four


def write_questions(metrics, files: dict, out: dict, max_params: float = 1e12, headline_multiplier: int = 4) -> dict:
    """Every figure / table named in ``out`` (keys: length, length_table, scaling, scaling_table, recall,
    recall_table, throughput, throughput_table, json) and ``questions.json``.

    ``files`` maps an evaluation's name (``length``, ``throughput``, ``recall``) to its per-run output
    files; an evaluation that did not run is absent or an empty list."""
    runs = runs_frame(metrics)
    best = best_points(runs)
    result = {
        "length": length_answer(files.get("length"), best, out["length"], out["length_table"], headline_multiplier),
        "scaling": scaling_answer(runs, out["scaling"], out["scaling_table"], max_params),
        "recall": recall_answer(files.get("recall"), runs, out["recall"], out["recall_table"]),
        "throughput": throughput_answer(files.get("throughput"), best, out["throughput"], out["throughput_table"]),
        "plots": {q: out[q] for q in QUESTIONS},
    }
    write_json(result, out["json"])
    return result


def summary_section(questions_json: str | None, base: str) -> list[str]:
    """The summary.md lines for the questions (empty without questions.json)."""
    if not questions_json:
        return []
    with open(questions_json, encoding="utf-8") as fh:
        data = json.load(fh)
    lines = ["## The architecture questions", ""]
    lines += [f"- {data[q]['sentence']} ([plot]({os.path.relpath(data['plots'][q], base)}))" for q in QUESTIONS]
    return lines + [""]
