"""Compute: validation loss vs training FLOPs for every run, with the Pareto frontier marked (issue 29).

Training FLOPs are the architecture's own formula per token (``archbench.models.flops``, forward +
backward at the training length) times the tokens the exported checkpoint saw (``metrics.json``). A run
is on the frontier when no run reached a lower validation loss with as much compute or less. Quality is
given in nats per token and, beside it, in bits per byte of the validation text (``val_bits_per_byte``:
tokenizer-independent, so runs with different tokenizers compare); the bits per byte include the
end-of-document token's loss.
"""

from __future__ import annotations

import math

import pandas as pd

from archbench.report.figures import fmt_n, pyplot, save, style
from archbench.report.questions.base import Inputs, Question
from archbench.report.questions.runs import run_metrics

CAPTION = """
Validation loss (nats per token; bits per byte of the validation text on the right axis when every run
shares one tokenizer) against training FLOPs, for every run: the architecture's FLOPs per token
(forward + backward at the training length, ``archbench.models.flops``) times the tokens the exported
checkpoint saw. Circled runs form the Pareto frontier: no run reached a lower loss with as much
compute or less. ``model.match: flops`` sizes the architectures to equal FLOPs per token instead of
equal parameters. The table (compute.csv) lists every run with its ``pareto`` flag.
"""


def pareto(frame: pd.DataFrame, x: str = "train_flops", y: str = "val_loss") -> pd.Series:
    """True for the rows no other row beats: lower ``y`` at ``x`` no larger (ties on ``x``: the lower ``y``)."""
    order = frame.sort_values([x, y], kind="stable").index
    best, on = math.inf, pd.Series(False, index=frame.index)
    for i in order:
        if frame.at[i, y] < best:
            best, on[i] = frame.at[i, y], True
    return on


def _bpb(value) -> str:
    return f"{value:.3f} bits/byte" if value is not None and not pd.isna(value) else "bits/byte not recorded"


def table(inputs: Inputs) -> pd.DataFrame:
    """One row per run: its training FLOPs and its loss (nats per token and bits per byte)."""
    rows = []
    for run in inputs.runs.to_dict("records"):
        m = run_metrics(run["run_dir"])
        rows.append(
            {
                "arch": run["arch"],
                "point": run["point"],
                "seed": run["seed"],
                "params": run["params"],
                "train_flops_per_token": m.get("train_flops_per_token"),
                "tokens": run["tokens"],
                "train_flops": run["flops"],
                "val_loss": run["val_loss"],
                "val_bits_per_byte": m.get("val_bits_per_byte"),
                "test_loss": run["test_loss"],
                "test_bits_per_byte": m.get("test_bits_per_byte"),
            }
        )
    return pd.DataFrame(rows, columns=["arch", "point", "seed", "params", "train_flops_per_token", "tokens",
                                       "train_flops", "val_loss", "val_bits_per_byte", "test_loss",
                                       "test_bits_per_byte"])  # fmt: skip


def select(table: pd.DataFrame, inputs: Inputs) -> dict:
    """The runs with FLOPs and a validation loss, the frontier among them, each architecture's best."""
    usable = table.dropna(subset=["train_flops", "val_loss"])
    if usable.empty:
        return {
            "csv": table.assign(pareto=pd.Series(dtype=bool)),
            "empty": "no run records training FLOPs (train_flops_per_token x tokens_seen)",
        }
    table = table.copy()
    table["pareto"] = False
    table.loc[usable.index, "pareto"] = pareto(usable)
    usable = table.loc[usable.index]
    front = usable[usable["pareto"]].sort_values("train_flops")
    bests = usable.loc[usable.groupby("arch", sort=False)["val_loss"].idxmin()].sort_values("val_loss")
    return {"csv": table, "usable": usable, "front": front, "bests": bests}


def plot(selected: dict, png: str) -> None:
    plt = pyplot()
    usable, front = selected["usable"], selected["front"]
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for arch in dict.fromkeys(usable["arch"]):
        mine = usable[usable["arch"] == arch]
        col, name = style(arch)
        ax.scatter(mine["train_flops"], mine["val_loss"], color=col, label=name, alpha=0.8, zorder=3)
    ax.step(front["train_flops"], front["val_loss"], where="post", color="black", lw=1, label="Pareto frontier")
    ax.scatter(front["train_flops"], front["val_loss"], s=120, facecolors="none", edgecolors="black", zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs (forward + backward, exported checkpoint)")
    ax.set_ylabel("validation loss (nats / token)")
    per_token = (usable["val_bits_per_byte"] / usable["val_loss"]).dropna()
    if len(per_token) and per_token.max() - per_token.min() < 1e-9 * per_token.max():  # one tokenizer, one text
        k = float(per_token.iloc[0])
        ax.secondary_yaxis("right", functions=(lambda v: v * k, lambda v: v / k)).set_ylabel("bits / byte")
    ax.legend()
    ax.set_title("Validation loss vs training compute, every run")
    save(fig, png)


def sentence(selected: dict) -> dict:
    if selected.get("empty"):
        return {"sentence": "Loss vs training compute was not measured: no run records its training FLOPs."}
    usable, front, bests = selected["usable"], selected["front"], selected["bests"]
    counts = front["arch"].value_counts()
    parts = [
        f"{style(r.arch)[1]} best {r.val_loss:.3f} nats/token ({_bpb(r.val_bits_per_byte)}) "
        f"at {fmt_n(r.train_flops)} FLOPs"
        for r in bests.itertuples()
    ]
    on_front = ", ".join(f"{style(a)[1]} {n}" for a, n in counts.items())
    text = (
        "Validation loss vs training FLOPs (every run; Pareto frontier: lowest loss at no more compute): "
        f"{len(front)} of {len(usable)} runs on the frontier ({on_front}); " + "; ".join(parts) + "."
    )
    archs = {
        r.arch: {"val_loss": r.val_loss, "val_bits_per_byte": r.val_bits_per_byte, "train_flops": r.train_flops}
        for r in bests.itertuples()
    }
    return {"archs": archs, "frontier": int(len(front)), "runs": int(len(usable)), "sentence": text}


QUESTION = Question.of_module(__name__, "compute", "Compute", CAPTION, order=60)
