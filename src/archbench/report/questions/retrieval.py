"""Long-context retrieval (``retrieval.json`` of each run trained on ``data.source: mqar`` with
``retrieval.enabled``): which models keep retrieval beyond what their state can hold?

Per architecture the grid point with the lowest mean validation loss is read (test examples are only
reported). Seeds of a point are pooled: their exact-match counts add up, and the 95% Wilson interval
is the pooled count's (:func:`archbench.data.retrieval.wilson_interval`; it is the interval of these
trained models on fresh examples, not of a seed-to-seed spread). The sentence claims no more than the
intervals support: an accuracy "keeps" through a length while every longer length's interval reaches
the 1x interval, "falls" from the first length whose interval lies wholly below it, and a model whose
1x interval reaches chance is said not to do the task at all; the closing names who keeps and who falls,
fixed state or growing (a growing state that falls is not short of room: something else, e.g. positions
past the training length, fails). :func:`pool` and :func:`words` are
plain functions of the files and of a table; only :func:`plot` draws.
"""

from __future__ import annotations

import pandas as pd

from archbench.data.retrieval import TASKS, wilson_interval
from archbench.report.figures import best_points, display, fmt_bytes, line_kw, pyplot, save
from archbench.report.questions.base import Inputs, Question
from archbench.report.questions.runs import load

CAPTION = """
Long-context retrieval on the MQAR vocabulary: exact-match accuracy of the greedy answer for phonebook
lookup (as many key-value pairs as fill the context, one queried), passkey retrieval (one pair at a random
depth in filler, queried at the end) and copying (the pairs, a separator, the pairs again: every value
must be reproduced) at {{ snakemake.config["retrieval"]["multipliers"] | join(", ") }} x the training
length, {{ snakemake.config["retrieval"]["examples"] }} fresh examples per task and length, error bars the
95% Wilson interval (seeds pooled). Left: accuracy against the context length per task (dashed: the
training length; dotted: chance). Right: accuracy against the recurrent state / KV-cache bytes per
sequence at each length: a fixed-state model's points stack at one x while the content grows. Each
architecture at its grid point with the lowest validation loss; the table (retrieval.csv) has every point.
"""
NOT_MEASURED = (
    "Long-context retrieval was not measured (it needs data.source: mqar and retrieval.enabled: true, "
    "see config/presets/retrieval.yaml)."
)
COLUMNS = [
    "arch",
    "point",
    "selected",
    "task",
    "multiplier",
    "context",
    "pairs",
    "n_seeds",
    "n_examples",
    "correct",
    "accuracy",
    "low",
    "high",
    "chance",
    "answer_accuracy",
    "state_bytes",
    "mode",
    "skipped",
]


def rows(files, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run x task x length of every retrieval.json (skipped lengths keep their reason)."""
    out = []
    for run, d in load(files, runs):
        for e in d["entries"]:
            out.append(
                {
                    "arch": run["arch"],
                    "point": run["point"],
                    "seed": run["seed"],
                    "val_loss": run["val_loss"],
                    "seq_len": d.get("seq_len"),
                    **{k: v for k, v in e.items() if k != "interval"},
                }
            )
    return pd.DataFrame(out)


def pool(per_run: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Seeds pooled per architecture x grid point x task x length (:data:`COLUMNS`): exact-match counts
    added, the Wilson interval of the pooled count, mean state bytes; ``selected`` marks each
    architecture's grid point with the lowest mean validation loss."""
    if per_run.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame = per_run.copy()
    for col in ("correct", "n_examples", "pairs", "chance", "answer_accuracy", "state_bytes", "mode", "skipped"):
        if col not in frame:
            frame[col] = None
    keys = ["arch", "point", "task", "multiplier"]
    groups = frame.groupby(keys, sort=False, dropna=False)
    per = groups.agg(
        context=("context", "first"),
        pairs=("pairs", "max"),
        n_seeds=("seed", "nunique"),
        n_examples=("n_examples", "sum"),
        correct=("correct", "sum"),
        chance=("chance", "max"),
        answer_accuracy=("answer_accuracy", "mean"),
        state_bytes=("state_bytes", "mean"),
        mode=("mode", "first"),
        skipped=("skipped", "first"),
    ).reset_index()
    measured = per["n_examples"] > 0
    per["accuracy"] = (per["correct"] / per["n_examples"]).where(measured)
    bounds = [
        wilson_interval(int(c), int(n)) if n > 0 else (None, None) for c, n in zip(per["correct"], per["n_examples"])
    ]
    per["low"] = [b[0] for b in bounds]
    per["high"] = [b[1] for b in bounds]
    best = best_points(runs if runs is not None and not runs.empty else frame)
    first = per.groupby("arch", sort=False)["point"].first()
    per["selected"] = [p == best.get(a, first[a]) for a, p in zip(per["arch"], per["point"])]
    # the runs' order of architectures and points, then the tasks' order, then length
    rank = {k: i for i, k in enumerate(dict.fromkeys(zip(per_run["arch"], per_run["point"])))}
    per["_order"] = [
        (rank[(a, p)], TASKS.index(t) if t in TASKS else len(TASKS))
        for a, p, t in zip(per["arch"], per["point"], per["task"])
    ]
    per = per.sort_values(["_order", "multiplier"])
    return per[COLUMNS].reset_index(drop=True)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _acc(r) -> str:
    return f"{_pct(r.accuracy)} [{_pct(r.low)}, {_pct(r.high)}]"


def _state(mine: pd.DataFrame) -> str:
    known = mine.dropna(subset=["state_bytes"]).sort_values("multiplier")
    if known.empty:
        return "state unknown"
    lo, hi = known.iloc[0], known.iloc[-1]
    if lo.state_bytes == hi.state_bytes:
        return f"state {fmt_bytes(lo.state_bytes)} at every length"
    return f"state {fmt_bytes(lo.state_bytes)} at {lo.multiplier}x to {fmt_bytes(hi.state_bytes)} at {hi.multiplier}x"


def verdict(line: pd.DataFrame) -> str:
    """One architecture's one task over its lengths (rows of :func:`pool`, one grid point), in words
    that the intervals support."""
    line = line.sort_values("multiplier")
    done = line[line["n_examples"] > 0]
    skipped = line[line["n_examples"] <= 0]
    cannot = f" (cannot read {', '.join(f'{k}x' for k in skipped['multiplier'])})" if len(skipped) else ""
    if done.empty:
        return "not measured" + cannot
    base, last = done.iloc[0], done.iloc[-1]
    if base.low <= base.chance:
        return f"at chance already at {base.multiplier}x ({_acc(base)}, chance {_pct(base.chance)})" + cannot
    if len(done) == 1:
        return f"{_acc(base)} at {base.multiplier}x (one length measured)" + cannot
    below = done[done["high"] < base.low]
    if below.empty:
        return f"keeps {_acc(base)} at {base.multiplier}x through {last.multiplier}x ({_acc(last)})" + cannot
    return (
        f"falls from {_acc(base)} at {base.multiplier}x to {_acc(last)} at {last.multiplier}x "
        f"(below the {base.multiplier}x interval from {below.iloc[0].multiplier}x)" + cannot
    )


def words(per: pd.DataFrame) -> str:
    """The answer from :func:`pool` (its ``selected`` rows): per architecture its state bytes over the
    lengths and each task's verdict, then which fixed-state models keep every task through the longest
    length and which fall."""
    chosen = per[per["selected"]]
    if chosen.empty:
        return NOT_MEASURED
    tasks = [t for t in TASKS if t in set(chosen["task"])]
    n = chosen[chosen["n_examples"] > 0].groupby(["arch", "task", "multiplier"])["n_examples"].first()
    n_text = f"{int(n.min())}" if len(n) and n.min() == n.max() else f"{int(n.min())}-{int(n.max())}" if len(n) else "0"
    content = []
    for task in tasks:
        mine = chosen[(chosen["task"] == task) & chosen["pairs"].notna()].drop_duplicates("multiplier")
        mine = mine.sort_values("multiplier")
        if len(mine):
            a, b = mine.iloc[0], mine.iloc[-1]
            span = (
                f"{int(a.pairs)}"
                if a.pairs == b.pairs
                else f"{int(a.pairs)} at {a.multiplier}x to {int(b.pairs)} at {b.multiplier}x"
            )
            content.append(f"{task} {span}")
    parts, keep, fall = [], [], []
    for arch, mine in chosen.groupby("arch", sort=False):
        verdicts = {t: verdict(mine[mine["task"] == t]) for t in tasks if (mine["task"] == t).any()}
        parts.append(f"{display(arch)} ({_state(mine)}): " + "; ".join(f"{t} {v}" for t, v in verdicts.items()))
        states = mine["state_bytes"].dropna()
        kind = "fixed state" if len(states) and states.nunique() == 1 else "state growing with the context"
        if mine["multiplier"].nunique() > 1 and any(v.startswith("falls") for v in verdicts.values()):
            fall.append((display(arch), kind))
        elif mine["multiplier"].nunique() > 1 and verdicts and all(v.startswith("keeps") for v in verdicts.values()):
            keep.append((display(arch), kind))
    top = int(chosen["multiplier"].max())
    seq_len = chosen.loc[chosen["multiplier"] == chosen["multiplier"].min(), "context"].iloc[0]
    named = lambda archs: ", ".join(f"{a} ({k})" for a, k in archs) or "none"  # noqa: E731
    closing = [f"no task below its 1x interval through {top}x: {named(keep)}", f"a task falls: {named(fall)}"]
    if any(k != "fixed state" for _, k in fall):
        closing.append(
            "a model whose state grows with the context and still falls loses retrieval for another reason than its state's size (e.g. positions past its training length)"
        )
    return (
        f"Long-context retrieval from {int(seq_len)} tokens ({int(chosen['multiplier'].min())}x the training length) "
        f"to {top}x (exact-match greedy answers on the MQAR vocabulary, {n_text} examples per task and length, "
        f"95% Wilson intervals; key-value pairs held: {', '.join(content)}; grid point selected on validation "
        f"loss): "
        + ". ".join(parts)
        + "."
        + " Which models keep retrieval beyond the training length, in words of the intervals: "
        + "; ".join(closing)
        + "."
    )


def table(inputs: Inputs) -> pd.DataFrame:
    """Every retrieval.json pooled over seeds (:func:`pool`), each architecture's selected point marked."""
    return pool(rows(inputs.of("retrieval"), inputs.runs), inputs.runs)


def select(per: pd.DataFrame, inputs: Inputs) -> dict:
    if not per["selected"].any() or not (per["n_examples"] > 0).any():
        return {
            "empty": "no retrieval.json: set data.source: mqar and retrieval.enabled (config/presets/retrieval.yaml)"
        }
    return {"csv": per}


def plot(selected: dict, png: str) -> None:
    plt = pyplot()
    per = selected["csv"]
    chosen = per[per["selected"] & (per["n_examples"] > 0)]
    tasks = [t for t in TASKS if t in set(chosen["task"])]
    fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(4.2 * (len(tasks) + 1), 3.8), squeeze=False)
    markers = dict(zip(TASKS, "os^"))
    for ax, task in zip(axes[0], tasks):
        for arch, mine in chosen[chosen["task"] == task].groupby("arch", sort=False):
            mine = mine.sort_values("context")
            err = [mine["accuracy"] - mine["low"], mine["high"] - mine["accuracy"]]
            ax.errorbar(mine["context"], mine["accuracy"], yerr=err, capsize=3, **line_kw(arch))
        line = chosen[chosen["task"] == task].sort_values("context")
        ax.plot(line["context"], line["chance"], "k:", lw=0.8, label="chance")
        ax.axvline(line["context"].min(), color="k", lw=0.6, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("context (tokens; dashed: training length)")
        ax.set_ylabel("exact-match accuracy (95% Wilson)")
        ax.set_title(task, fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    for (arch, task), mine in chosen.groupby(["arch", "task"], sort=False):
        mine = mine.dropna(subset=["state_bytes"]).sort_values("context")
        kw = line_kw(arch)
        kw.update(marker=markers[task], label=f"{kw['label']} {task}")
        ax.plot(mine["state_bytes"], mine["accuracy"], **kw)
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("state / KV cache per sequence at that length (bytes)")
    ax.set_ylabel("exact-match accuracy")
    ax.set_title("accuracy vs state size (every length)", fontsize=9)
    ax.legend(fontsize=6)
    save(fig, png)


def sentence(selected: dict) -> dict:
    if selected.get("empty"):
        return {"measured": False, "sentence": NOT_MEASURED}
    per = selected["csv"]
    chosen = per[per["selected"]]
    archs = {
        arch: {
            "point": mine["point"].iloc[0],
            "tasks": {
                task: {
                    int(r.multiplier): {
                        "accuracy": r.accuracy,
                        "interval": [r.low, r.high],
                        "state_bytes": r.state_bytes,
                    }
                    for r in line.itertuples()
                    if r.n_examples > 0
                }
                for task, line in mine.groupby("task", sort=False)
            },
        }
        for arch, mine in chosen.groupby("arch", sort=False)
    }
    return {"archs": archs, "sentence": words(per)}


QUESTION = Question.of_module(
    __name__, "retrieval", "Long-context retrieval", CAPTION, evaluations=("retrieval",), order=40
)
