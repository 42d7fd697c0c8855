"""Multi-query associative recall (``recall.json`` of each run trained on ``data.source: mqar``).

Per architecture x width, the learning rate is chosen by validation: the mean accuracy over pair counts
on recall.json's ``validation`` stream (fresh examples apart from the test stream), else the run's
validation loss; the width shown per architecture is chosen the same way. Test accuracy is reported.
Recall tracks the recurrent state / KV cache a model keeps (Zoology), so every point carries its
``state_bytes`` and a second panel plots accuracy against it.
"""

from __future__ import annotations

import math

import pandas as pd

from archbench.models.registry import ARCHS
from archbench.report.figures import fmt_bytes, pyplot, save, style
from archbench.report.questions.base import Inputs, Question
from archbench.report.questions.runs import load

CAPTION = """
Multi-query associative recall (MQAR): test accuracy of the greedy prediction at the answer positions
only. Left: against the number of key-value pairs per example, per architecture and model width, the
learning rate selected on the validation stream (fresh examples apart from the test stream; the run's
validation loss where recall.json has none). Right: accuracy at the largest pair count against the
recurrent state / KV-cache bytes per sequence at the MQAR length — recall tracks state size (Zoology).
Dotted line: chance (1 / number of value words). The summary sentence names each architecture's
parameter-matching knob and how the generator differs from Zoology's.
"""
# Zoology's MQAR (HazyResearch/zoology, multiquery_ar.py) as the paper sweeps it; recall.json's
# `generator` entry is compared with these and every difference is named in the sentence.
ZOOLOGY = {"power_a": 0.01, "random_fillers": True, "answers_in_input": False, "vocab_size": 8192}


def deviations(generator: dict | None) -> str:
    """The ways the MQAR generator differs from Zoology's, in words."""
    if not generator:
        return "the generator's settings are not recorded in recall.json (deviations from Zoology unknown)"
    out = []
    a = generator.get("power_a")
    if a is None:
        out.append("uniform query positions (Zoology: power-law gaps, a = 0.01)")
    elif a != ZOOLOGY["power_a"]:
        out.append(f"power_a = {a} (Zoology 0.01)")
    if generator.get("random_fillers") is False:
        out.append("a constant filler token (Zoology: random tokens)")
    elif generator.get("random_fillers"):  # archbench.data.mqar draws them from the value half of the words
        out.append("random non-query tokens drawn from the value words only (Zoology: any word)")
    if generator.get("answers_in_input"):
        out.append("answers visible in the input after each query (Zoology: only in the targets)")
    vocab = generator.get("vocab_size")
    if vocab is not None and vocab != ZOOLOGY["vocab_size"]:
        out.append(f"a {vocab}-word vocabulary (Zoology 8192)")
    T, pairs = generator.get("seq_len"), generator.get("pairs")
    if T and pairs and (T < 64 or T > 512 or min(pairs) < 4 or max(pairs) > 64):
        shown = ", ".join(map(str, pairs))
        out.append(f"training on {shown} key-value pairs in {T}-token sequences (Zoology: 64-512 tokens, 4-64 pairs)")
    return ("differs from Zoology's MQAR in: " + "; ".join(out)) if out else "matches Zoology's MQAR settings"


def _values(series) -> list:
    return sorted({v for v in series.dropna()}) if series is not None else []


def searched(table: pd.DataFrame, generator: dict | None, top: int, selected_on: str) -> str:
    """What was searched and seen, in words: the pair counts training saw, the learning rates, widths
    and seeds searched, and what was selected on validation (only what had more than one value)."""
    lrs = _values(table.get("learning_rate"))
    widths = _values(table.get("embed_dim"))
    seeds = _values(table.get("seed"))
    trained = (generator or {}).get("pairs")
    if trained:
        seen = f"training saw {', '.join(map(str, trained))} pairs"
        if top not in trained:
            seen += f" ({top} is a count it never saw)"
    else:
        seen = "the pair counts seen in training are not recorded in recall.json"
    chosen = [name for name, values in (("width", widths), ("learning rate", lrs)) if len(values) > 1]
    grid = (
        f"learning rate{'s' if len(lrs) != 1 else ''} {', '.join(f'{v:g}' for v in lrs) or 'unknown'}, "
        f"width{'s' if len(widths) != 1 else ''} d = {', '.join(f'{v:g}' for v in widths) or 'unknown'}, "
        f"seed{'s' if len(seeds) != 1 else ''} {', '.join(str(int(v)) for v in seeds)}"
    )
    pick = f"{' and '.join(chosen)} selected on {selected_on}" if chosen else "one setting, nothing selected"
    return f"{seen}; searched {grid}; {pick}"


def _knobs(archs) -> str:
    """Each architecture's parameter-matching knob (registry ``width_knob``; used with model.match_params)."""
    knobs = [f"{style(a)[1]} {ARCHS[a].width_knob}" for a in archs if a in ARCHS and ARCHS[a].width_knob]
    return ("matching knob (model.match_params): " + ", ".join(knobs)) if knobs else ""


def _generator(inputs: Inputs) -> dict | None:
    """The MQAR generator's settings (the first recall.json that records them)."""
    for _, d in load(inputs.of("recall"), inputs.runs):
        if d.get("generator"):
            return d["generator"]
    return None


def table(inputs: Inputs) -> pd.DataFrame:
    """One row per run x pair count of every recall.json, with the run's width, learning rate, validation
    loss and state bytes."""
    rows = []
    for run, d in load(inputs.of("recall"), inputs.runs):
        validation = {int(k): v for k, v in (d.get("validation") or {}).items()}
        for e in d["entries"]:
            rows.append(
                {
                    "arch": run["arch"],
                    "point": run["point"],
                    "seed": run["seed"],
                    "embed_dim": run["embed_dim"],
                    "learning_rate": run.get("learning_rate"),
                    "val_loss": run["val_loss"],
                    "state_bytes": d.get("state_bytes"),
                    "validation_accuracy": validation.get(int(e["pairs"])),
                    **e,
                }
            )
    return pd.DataFrame(rows)


def select(table: pd.DataFrame, inputs: Inputs) -> dict:
    """Per architecture x width the point selected on validation (higher validation accuracy, else lower
    validation loss; never test), and per architecture the width shown."""
    if table.empty:
        return {"empty": "no recall.json: set data.source: mqar (config/presets/mqar.yaml)"}
    per = (
        table.groupby(["arch", "embed_dim", "point", "pairs"], sort=False, dropna=False)
        .agg(
            accuracy=("accuracy", "mean"),
            validation_accuracy=("validation_accuracy", "mean"),
            val_loss=("val_loss", "mean"),
            state_bytes=("state_bytes", "mean"),
            chance=("chance", "first"),
            n_seeds=("seed", "nunique"),
        )
        .reset_index()
    )
    score = (
        per.groupby(["arch", "embed_dim", "point"], sort=False, dropna=False)
        .agg(
            val_acc=("validation_accuracy", "mean"), val_loss=("val_loss", "mean"), state_bytes=("state_bytes", "mean")
        )
        .reset_index()
    )
    on_accuracy = score["val_acc"].notna().all()
    score["select"] = -score["val_acc"] if on_accuracy else score["val_loss"]
    best = score.loc[score.groupby(["arch", "embed_dim"], sort=False, dropna=False)["select"].idxmin()]
    top = int(per["pairs"].max())
    return {
        "csv": per.drop(columns=["val_loss"]),
        "table": table,
        "per": per,
        "best": best,
        "top": top,
        "at_top": per[per["pairs"] == top].set_index(["arch", "point"])["accuracy"],
        "selected_on": "validation accuracy" if on_accuracy else "validation loss",
        "generator": _generator(inputs),
    }


def plot(selected: dict, png: str) -> None:
    per, best, top, at_top = selected["per"], selected["best"], selected["top"], selected["at_top"]
    widths = sorted(w for w in best["embed_dim"].dropna().unique())
    styles = dict(zip(widths, ["-", "--", ":", "-."] * 4))
    fig, (ax, ax2) = pyplot().subplots(1, 2, figsize=(12, 4.2))
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
    for arch, mine in best.groupby("arch", sort=False):
        mine = mine.dropna(subset=["state_bytes"]).sort_values("state_bytes")
        if len(mine):
            acc = [at_top.get((arch, p)) for p in mine["point"]]
            ax2.plot(mine["state_bytes"], acc, "o-", color=style(arch)[0], label=style(arch)[1])
    ax.axhline(per["chance"].iloc[0], color="k", lw=0.8, ls=":", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("key-value pairs")
    ax.set_ylabel("recall accuracy (answer positions, test)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(f"Multi-query associative recall (learning rate selected on {selected['selected_on']})", fontsize=9)
    if best["state_bytes"].notna().any():
        ax2.set_xscale("log")
        ax2.set_xlabel("recurrent state / KV cache per sequence at the MQAR length (bytes)")
        ax2.set_ylabel(f"recall accuracy at {top} pairs (test)")
        ax2.set_ylim(0, 1.02)
        ax2.legend(fontsize=8)
        ax2.set_title("accuracy vs state size (cf. Zoology)", fontsize=9)
    else:
        ax2.text(0.5, 0.5, "no state_bytes in recall.json", ha="center", va="center", transform=ax2.transAxes)
        ax2.set_axis_off()
    save(fig, png)


def sentence(selected: dict) -> dict:
    if selected.get("empty"):
        return {
            "measured": False,
            "sentence": "Associative recall was not measured (it needs data.source: mqar, see "
            "config/presets/mqar.yaml).",
        }
    best, top, at_top, generator = selected["best"], selected["top"], selected["at_top"], selected["generator"]
    selected_on = selected["selected_on"]
    facts = {}
    for arch, mine in best.groupby("arch", sort=False):
        pick = mine.loc[mine["select"].idxmin()]
        state = pick["state_bytes"]
        facts[arch] = {
            "accuracy": float(at_top.get((arch, pick["point"]))),
            "embed_dim": None if pd.isna(pick["embed_dim"]) else pick["embed_dim"],
            "point": pick["point"],
            "state_bytes": None if state is None or (isinstance(state, float) and math.isnan(state)) else float(state),
        }
    parts = [
        f"{style(a)[1]} {f['accuracy']:.1%} (d={f['embed_dim']}, state "
        + (fmt_bytes(f["state_bytes"]) if f["state_bytes"] is not None else "unknown")
        + ")"
        for a, f in facts.items()
    ]
    knobs = _knobs(facts)
    text = (
        f"Associative recall at {top} key-value pairs ({searched(selected['table'], generator, top, selected_on)}; "
        f"test accuracy reported; chance {selected['per']['chance'].iloc[0]:.1%}): "
        + "; ".join(parts)
        + ". "
        + (knobs[0].upper() + knobs[1:] + ". " if knobs else "")
        + "The generator "
        + deviations(generator)
        + "."
    )
    return {"pairs": top, "archs": facts, "selected_on": selected_on, "generator": generator, "sentence": text}


QUESTION = Question.of_module(__name__, "recall", "Associative recall", CAPTION, evaluations=("recall",), order=30)
