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

import matplotlib.pyplot as plt
import pandas as pd

from archbench.report.figures import empty, fmt_n, save, style, write_csv
from archbench.report.questions.runs import run_metrics

EVALUATION = None


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


def answer(files, runs: pd.DataFrame, png: str, csv: str, **_settings) -> dict:
    rows = []
    for run in runs.to_dict("records"):
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
    table = pd.DataFrame(rows, columns=["arch", "point", "seed", "params", "train_flops_per_token", "tokens",
                                        "train_flops", "val_loss", "val_bits_per_byte", "test_loss",
                                        "test_bits_per_byte"])  # fmt: skip
    usable = table.dropna(subset=["train_flops", "val_loss"])
    if usable.empty:
        write_csv(table.assign(pareto=pd.Series(dtype=bool)), csv)
        empty(png, "no run records training FLOPs (train_flops_per_token x tokens_seen)")
        return {"sentence": "Loss vs training compute was not measured: no run records its training FLOPs."}
    table["pareto"] = False
    table.loc[usable.index, "pareto"] = pareto(usable)
    write_csv(table, csv)
    usable = table.loc[usable.index]

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for arch in dict.fromkeys(usable["arch"]):
        mine = usable[usable["arch"] == arch]
        col, name = style(arch)
        ax.scatter(mine["train_flops"], mine["val_loss"], color=col, label=name, alpha=0.8, zorder=3)
    front = usable[usable["pareto"]].sort_values("train_flops")
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

    counts = front["arch"].value_counts()
    bests = usable.loc[usable.groupby("arch", sort=False)["val_loss"].idxmin()].sort_values("val_loss")
    parts = [
        f"{style(r.arch)[1]} best {r.val_loss:.3f} nats/token ({_bpb(r.val_bits_per_byte)}) "
        f"at {fmt_n(r.train_flops)} FLOPs"
        for r in bests.itertuples()
    ]
    on_front = ", ".join(f"{style(a)[1]} {n}" for a, n in counts.items())
    sentence = (
        "Validation loss vs training FLOPs (every run; Pareto frontier: lowest loss at no more compute): "
        f"{len(front)} of {len(usable)} runs on the frontier ({on_front}); " + "; ".join(parts) + "."
    )
    archs = {
        r.arch: {"val_loss": r.val_loss, "val_bits_per_byte": r.val_bits_per_byte, "train_flops": r.train_flops}
        for r in bests.itertuples()
    }
    return {"archs": archs, "frontier": int(len(front)), "runs": int(len(usable)), "sentence": sentence}
