"""Does archbench find what the papers found? One row per published claim -> ``reproduction.csv``.

The claims (their source, published setting and number) live in :data:`CLAIMS`; the *rule* that turns a
run's numbers into **reproduced / not reproduced / inconclusive** is written in the run's preset
(``reproduce.rule`` in config/presets/reproduce-*.yaml) before the run, and read from the config here:
a rule is never chosen after seeing the result. A run checks the claim its preset names; the other
claims get a row saying which preset measures them ("not measured in this run").

What each claim reads:

- ``zoology_fig2``, ``mamba2_fig8``: every run's ``recall.json`` (rule ``recall``), the learning rate
  chosen per architecture x setting on the validation stream's accuracy (never the test stream's).
- ``length_control``: ``length.json`` (rule ``length``): loss on the positions beyond the training length
  at k x vs the last half of the training length at 1x, as the length question computes it.
- ``retnet_cost``: ``latency.json`` (rule ``latency``): per-token decode time and carried state from the
  smallest to the largest context.
- ``scaling_prediction``: the scaling question's held-out check (``held_out`` in its answer, added by
  report/scaling.py's verdict work); "not measured" when the scaling question has none.
"""

from __future__ import annotations

import json
import math
import os

import pandas as pd

from archbench.models.registry import ARCHS
from archbench.report.claims import CLAIMS
from archbench.report.figures import fmt_bytes, note, pyplot, save, style
from archbench.report.questions.base import Inputs, Question
from archbench.report.questions.length import beyond_loss
from archbench.report.questions.runs import load

CAPTION = """
Does archbench find what the papers found? ``reproduction.csv`` has one row per published claim (Zoology
Fig. 2, Mamba-2 Fig. 8, the length-extrapolation positive control, RetNet's inference cost, the scaling
ladder's held-out prediction): the claim and its source, the published setting and number, ours (every
deviation named), the seeds, and **reproduced / not reproduced / inconclusive** by the rule written in the
run's preset (``reproduce.rule``, config/presets/reproduce-*.yaml) before the run. A claim this run does
not check reads "not measured" and names its preset. The figure is the overview; each claim has its own
figure beside it (``reproduction_<claim>.png``). See docs/reproduce.md.
"""

COLUMNS = [
    "claim",
    "source",
    "claim_text",
    "published_setting",
    "our_setting",
    "published",
    "ours",
    "seeds",
    "verdict",
    "rule",
    "note",
    "preset",
]


def _hparams(run: dict) -> dict:
    path = os.path.join(str(run.get("run_dir") or ""), "metrics.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh).get("hparams", {})


def recall_table(files, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run x evaluated pair count: test and validation accuracy, state bytes and the run's
    learning rate / width / SSM state size (from its metrics.json)."""
    rows = []
    for run, d in load(files, runs):
        hp = _hparams(run)
        validation = {int(k): v for k, v in (d.get("validation") or {}).items()}
        trained = set((d.get("generator") or {}).get("pairs") or [])
        for e in d["entries"]:
            rows.append(
                {
                    "arch": run["arch"],
                    "seed": run["seed"],
                    "embed_dim": hp.get("embed_dim", run.get("embed_dim")),
                    "learning_rate": hp.get("learning_rate"),
                    "ssm_state_size": hp.get("ssm_state_size"),
                    "state_bytes": d.get("state_bytes"),
                    "pairs": int(e["pairs"]),
                    "trained": int(e["pairs"]) in trained if trained else True,
                    "accuracy": e["accuracy"],
                    "validation_accuracy": validation.get(int(e["pairs"])),
                    "chance": e.get("chance"),
                }
            )
    return pd.DataFrame(rows)


def best_lr(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per ``by`` group x pair count: the mean over seeds at the learning rate with the highest mean
    validation accuracy over the trained pair counts (Zoology shows the best learning rate per point;
    the choice here reads the validation stream only)."""
    keys = [*by, "learning_rate"]
    mean = table.groupby([*keys, "pairs"], dropna=False).agg(
        accuracy=("accuracy", "mean"),
        validation_accuracy=("validation_accuracy", "mean"),
        state_bytes=("state_bytes", "mean"),
        trained=("trained", "first"),
        n_seeds=("seed", "nunique"),
    )
    mean = mean.reset_index()
    score = mean[mean["trained"]].groupby(keys, dropna=False)["validation_accuracy"].mean().reset_index()
    pick = score.loc[score.groupby(by, dropna=False)["validation_accuracy"].idxmax()]
    return mean.merge(pick[keys], on=keys)


def _is_attention(arch: str) -> bool:
    return arch in ARCHS and ARCHS[arch].state == "kv_cache"


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


# ----------------------------------------------------------------------------------------- the claims


def zoology(files, runs, rule: dict) -> dict:
    table = recall_table(files.get("recall"), runs)
    if table.empty:
        return _missing("no recall.json in this run")
    best = best_lr(table, ["arch", "embed_dim"])
    trained = best[best["trained"]]
    lo_p, hi_p = int(trained["pairs"].min()), int(trained["pairs"].max())
    widths = sorted(trained["embed_dim"].dropna().unique())
    narrow, wide = widths[0], widths[-1]
    parts, fails, oks, reversed_, missing = [], [], [], [], []
    for arch, mine in trained.groupby("arch", sort=False):
        acc = mine.set_index(["embed_dim", "pairs"])["accuracy"]
        name = style(arch)[1]
        if _is_attention(arch):
            worst = float(acc.min())
            parts.append(f"{name} min {_pct(worst)} over {len(acc)} (width, pairs)")
            if worst < rule["attention_fail"]:
                fails.append(f"{name} {_pct(worst)} < {rule['attention_fail']:.0%}")
            elif worst >= rule["attention_min"]:
                oks.append(name)
            else:
                missing.append(f"{name} between the thresholds ({_pct(worst)})")
        else:
            drop = acc.get((narrow, lo_p), math.nan) - acc.get((narrow, hi_p), math.nan)
            rise = acc.get((wide, hi_p), math.nan) - acc.get((narrow, hi_p), math.nan)
            parts.append(
                f"{name} {lo_p}->{hi_p} pairs at d={narrow}: {-drop:+.1%}; d={narrow}->{wide} at {hi_p} pairs: "
                f"{rise:+.1%}"
            )
            if drop <= -rule["min_effect"] or rise <= -rule["min_effect"]:
                reversed_.append(name)
            elif drop >= rule["min_effect"] and (len(widths) < 2 or rise >= rule["min_effect"]):
                oks.append(name)
            else:
                missing.append(f"{name} effect below {rule['min_effect']:.0%}")
    has_fixed = any(not _is_attention(a) for a in trained["arch"].unique())
    if fails or reversed_:
        verdict = "not reproduced"
    elif not missing and has_fixed and len(widths) >= 2:
        verdict = "reproduced"
    else:
        verdict = "inconclusive"
    why = fails + [f"{n}: trend reversed" for n in reversed_] + missing
    if not has_fixed:
        why.append("no fixed-state model in this run")
    if len(widths) < 2:
        why.append("one width: the width trend is not measured")
    return {
        "ours": "; ".join(parts),
        "seeds": int(best["n_seeds"].max()),
        "verdict": verdict,
        "note": "; ".join(why),
        "our_setting": _mqar_setting(table, files.get("recall"), runs),
        "figure": (draw_zoology, {"trained": trained, "widths": widths, "rule": rule, "verdict": verdict}),
    }


def _finish(fig, ax, png: str, xlabel: str, ylabel: str, title: str, accuracy: bool = False, base: int = 2) -> None:
    """A claim figure's log x axis, labels, title and legend; saved. ``accuracy``: the y axis is 0-1."""
    ax.set_xscale("log", base=base)
    if accuracy:
        ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save(fig, png)


def draw_zoology(png: str, trained: pd.DataFrame, widths: list, rule: dict, verdict: str) -> None:
    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    styles = dict(zip(widths, ["-", "--", ":", "-."] * 4))
    for (arch, width), line in trained.groupby(["arch", "embed_dim"], sort=False):
        line = line.sort_values("pairs")
        col, name = style(arch)
        ax.plot(line["pairs"], line["accuracy"], "o" + styles.get(width, "-"), color=col, label=f"{name} d={width}")
    ax.axhline(
        rule["attention_min"], color="k", lw=0.8, ls=":", label=f"rule: attention >= {rule['attention_min']:.0%}"
    )
    labels = ("key-value pairs (trained)", "recall accuracy (test; learning rate on validation)")
    _finish(fig, ax, png, *labels, f"Zoology Fig. 2: {verdict}", accuracy=True)


def mamba2(files, runs, rule: dict) -> dict:
    table = recall_table(files.get("recall"), runs)
    if table.empty:
        return _missing("no recall.json in this run")
    table["setting"] = [  # N only for Mamba-2: the others ignore ssm_state_size (identical repeats)
        f"N={int(n)}" if a == "mamba2" and not math.isnan(n) else f"d={w}"
        for a, n, w in zip(table["arch"], table["ssm_state_size"].astype(float), table["embed_dim"])
    ]
    best = best_lr(table, ["arch", "embed_dim", "setting"])
    top = int(best.loc[best["trained"], "pairs"].max())
    at_top = best[best["pairs"] == top]
    m2 = at_top[at_top["arch"] == "mamba2"].copy()
    m2["N"] = [int(s[2:]) for s in m2["setting"] if s.startswith("N=")] if len(m2) else []
    m2 = m2.sort_values("N")
    acc = m2["accuracy"].tolist()
    steps = [b - a for a, b in zip(acc, acc[1:])]
    ours = ", ".join(f"N={n}: {_pct(a)}" for n, a in zip(m2["N"], acc)) + f" at {top} pairs"
    if len(acc) < 2:
        verdict, why = "inconclusive", "fewer than two Mamba-2 state sizes in this run"
    elif acc[0] >= rule["ceiling"]:
        verdict, why = "inconclusive", f"the smallest state already recalls >= {rule['ceiling']:.0%}: too easy"
    elif min(steps) < -rule["min_effect"] or acc[-1] - acc[0] <= 0:
        verdict, why = "not reproduced", "accuracy does not rise with N"
    elif min(steps) >= -rule["tolerance"] and acc[-1] - acc[0] >= rule["min_effect"]:
        verdict, why = "reproduced", ""
    else:
        verdict, why = "inconclusive", f"a step falls by {-min(steps):.1%} (tolerance {rule['tolerance']:.0%})"
    others = "; ".join(
        f"{style(a)[1]} {_pct(float(g['accuracy'].max()))} at {fmt_bytes(float(g['state_bytes'].max()))}"
        for a, g in at_top[at_top["arch"] != "mamba2"].groupby("arch", sort=False)
        if g["state_bytes"].notna().any()
    )
    return {
        "ours": ours + (f" (others: {others})" if others else ""),
        "seeds": int(best["n_seeds"].max()),
        "verdict": verdict,
        "note": why,
        "our_setting": _mqar_setting(table, files.get("recall"), runs),
        "figure": (draw_mamba2, {"at_top": at_top, "top": top, "verdict": verdict}),
    }


def draw_mamba2(png: str, at_top: pd.DataFrame, top: int, verdict: str) -> None:
    fig, ax = pyplot().subplots(figsize=(7, 4.2))  # the Based paper's recall-vs-state frontier
    for arch, mine in at_top.groupby("arch", sort=False):
        mine = mine.dropna(subset=["state_bytes"]).sort_values("state_bytes")
        col, name = style(arch)
        ax.plot(mine["state_bytes"], mine["accuracy"], "o-", color=col, label=name)
        for r in mine.itertuples():
            ax.annotate(r.setting, (r.state_bytes, r.accuracy), fontsize=7, xytext=(3, 3), textcoords="offset points")
    labels = ("state per sequence at the MQAR length (bytes)", f"recall accuracy at {top} pairs (test)")
    _finish(fig, ax, png, *labels, f"Mamba-2 Fig. 8 (accuracy vs state): {verdict}", accuracy=True, base=10)


def length_control(files, runs, rule: dict) -> dict:
    data = load(files.get("length"), runs)
    if not data:
        return _missing("no length.json in this run (length.enabled)")
    k, control = int(rule["multiplier"]), rule["control_arch"]
    per: dict[str, dict] = {}
    for run, d in data:
        by_k = {e["multiplier"]: e for e in d["entries"] if "mean_loss" in e}
        if 1 not in by_k:
            continue
        one = by_k[1].get("tail_loss")
        curve = {m: beyond_loss(e, d["seq_len"]) for m, e in by_k.items() if m > 1}
        per.setdefault(run["arch"], {"one": [], "curve": []})
        per[run["arch"]]["one"].append(one)
        per[run["arch"]]["curve"].append(curve)
    deltas, parts, lines = {}, [], {}
    for arch, f in per.items():
        ks = sorted({m for c in f["curve"] for m in c if c[m] is not None})
        one = sum(f["one"]) / len(f["one"])
        ys = [sum(c[m] for c in f["curve"]) / len(f["curve"]) - one for m in ks]
        lines[arch] = ([1, *ks], [0.0, *ys])
        if k in ks:
            deltas[arch] = ys[ks.index(k)]
        if ks:  # every multiplier read, so a run without the rule's k still shows its numbers
            parts.append(f"{style(arch)[1]} " + ", ".join(f"{y:+.3f} nats at {m}x" for m, y in zip(ks, ys)))
    seeds = max((len(f["one"]) for f in per.values()), default=0)
    if control not in deltas:
        verdict, why = "inconclusive", f"the control ({control}) has no loss at {k}x"
    elif deltas[control] >= rule["min_effect"]:
        verdict, why = "reproduced", ""
    elif deltas[control] <= 0:
        verdict, why = "not reproduced", f"{style(control)[1]} does not degrade at {k}x"
    else:
        verdict, why = "inconclusive", f"degradation below the rule's {rule['min_effect']} nats"
    seq = sorted({d["seq_len"] for _, d in data})
    return {
        "ours": "; ".join(parts),
        "seeds": seeds,
        "verdict": verdict,
        "note": why,
        "our_setting": f"trained at {'/'.join(map(str, seq))} tokens, read at k x that length",
        "figure": (draw_length_control, {"lines": lines, "rule": rule, "control": control, "verdict": verdict}),
    }


def draw_length_control(png: str, lines: dict, rule: dict, control: str, verdict: str) -> None:
    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    for arch, (x, y) in lines.items():
        col, name = style(arch)
        ax.plot(x, y, "o-", color=col, label=name)
    ax.axhline(rule["min_effect"], color="k", lw=0.8, ls=":", label=f"rule: +{rule['min_effect']} nats")
    labels = ("k (context = k x training length)", "loss beyond the training length - 1x tail loss (nats)")
    _finish(fig, ax, png, *labels, f"Length control ({style(control)[1]} trained short): {verdict}")


def retnet_cost(files, runs, rule: dict) -> dict:
    data = load(files.get("latency"), runs)
    if not data:
        return _missing("no latency.json in this run")
    growth, parts, ctx_ratio, series = {}, [], None, []
    for run, d in data:
        s = d.get("summary") or {}
        arch = run["arch"]
        for mode, times in (s.get("decode_ms_median") or {}).items():
            if mode == "recompute" or not times:
                continue
            ctxs = sorted(times, key=int)
            state = (s.get("state_bytes") or {}).get(mode) or {}
            ctx_ratio = int(ctxs[-1]) / int(ctxs[0])
            t_g = times[ctxs[-1]] / times[ctxs[0]]
            s_g = state[ctxs[-1]] / state[ctxs[0]] if state.get(ctxs[0]) else math.nan
            growth[arch] = (t_g, s_g)
            series.append((arch, mode, ctxs, times, state))
            parts.append(f"{style(arch)[1]}: decode x{t_g:.2f}, state x{s_g:.2f} over contexts {ctxs[0]}-{ctxs[-1]}")
    retnet = growth.get("retnet")
    kv = [g for a, g in growth.items() if _is_attention(a)]
    if retnet is None or not kv:
        verdict, why = "inconclusive", "needs RetNet and an attention model in the same latency run"
    else:
        flat = retnet[0] <= rule["flat_max"] and abs(retnet[1] - 1) <= 0.01
        linear = all(abs(s / ctx_ratio - 1) <= rule["linear_tolerance"] for _, s in kv)
        if retnet[0] > rule["fail_above"] or abs(retnet[1] - 1) > 0.01 or not linear:
            verdict, why = "not reproduced", "RetNet's cost grows with context, or the KV cache is not linear"
        elif flat:
            verdict, why = "reproduced", ""
        else:
            verdict, why = "inconclusive", f"RetNet decode grows x{retnet[0]:.2f} (flat <= x{rule['flat_max']})"
    return {
        "ours": "; ".join(parts),
        "seeds": 1,
        "verdict": verdict,
        "note": why,
        "our_setting": f"CPU, batch 1, context ratio x{ctx_ratio:.0f}" if ctx_ratio else "",
        "figure": (draw_retnet_cost, {"series": series, "verdict": verdict}),
    }


def draw_retnet_cost(png: str, series: list, verdict: str) -> None:
    fig, (ax, ax2) = pyplot().subplots(1, 2, figsize=(11, 4.2))
    for arch, mode, ctxs, times, state in series:
        col, name = style(arch)
        ax.plot([int(c) for c in ctxs], [times[c] for c in ctxs], "o-", color=col, label=f"{name} ({mode})")
        if state:
            ax2.plot([int(c) for c in ctxs], [state[c] for c in ctxs if c in state], "o-", color=col, label=name)
    for a in (ax, ax2):
        a.set_xscale("log", base=2)
        a.set_xlabel("context (tokens)")
        a.legend(fontsize=7)
    ax.set_ylabel("decode ms / token (median)")
    ax2.set_yscale("log")
    ax2.set_ylabel("carried state (bytes)")
    ax.set_title(f"RetNet inference cost: {verdict}", fontsize=9)
    save(fig, png)


def scaling_prediction(answers: dict, rule: dict) -> dict:
    held = (answers.get("scaling") or {}).get("held_out")
    if not held:
        return _missing("the scaling question has no held-out prediction (report/scaling.py)")
    rows = (
        held
        if isinstance(held, list)
        else [{"arch": a, **v} for a, v in held.items()]
        if "inside" not in held
        else [held]
    )
    inside, parts = [], []
    for h in rows:
        ok = h.get("inside", h.get("within"))
        inside.append(bool(ok))
        lo, hi = h.get("lo"), h.get("hi")
        name = style(h.get("arch", "?"))[1]
        num = lambda v: "?" if v is None else f"{v:.3f}"  # noqa: E731
        band = f" [{num(lo)}, {num(hi)}]" if lo is not None else " (no interval: needs >= 3 seeds)"
        seen = h.get("observed_interval")
        seen = f" [{num(seen[0])}, {num(seen[1])}]" if seen else ""
        parts.append(f"{name} predicted {num(h.get('predicted'))}{band}, observed {num(h.get('observed'))}{seen}")
    # No predicted interval (fewer than 3 seeds): nothing to be inside of
    undecided = any(h.get("inside", h.get("within")) is None for h in rows)
    verdict = "inconclusive" if undecided else "reproduced" if inside and all(inside) else "not reproduced"
    counts = [h["n_seeds"] for h in rows if h.get("n_seeds") is not None]
    return {
        "ours": "; ".join(parts),
        "seeds": min(counts) if counts else None,
        "verdict": verdict,
        "note": "",
        "our_setting": "",
        "figure": (draw_scaling_prediction, {"rows": rows, "verdict": verdict}),
    }


def draw_scaling_prediction(png: str, rows: list, verdict: str) -> None:
    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    for i, h in enumerate(rows):
        lo, hi = h.get("lo"), h.get("hi")
        if h.get("predicted") is not None:
            ax.errorbar(
                i,
                h["predicted"],
                # a bootstrap band need not contain the point fit: clip the bars at 0
                yerr=[
                    [max(0.0, h["predicted"] - (lo or h["predicted"]))],
                    [max(0.0, (hi or h["predicted"]) - h["predicted"])],
                ],
                fmt="o",
            )
        if h.get("observed") is not None:
            ax.plot(i, h["observed"], "kx")
    ax.set_title(f"Scaling: held-out largest size: {verdict}", fontsize=9)
    ax.set_ylabel("test loss (o predicted with interval, x observed)")
    save(fig, png)


def _missing(why: str) -> dict:
    return {
        "ours": "",
        "seeds": None,
        "verdict": "not measured",
        "note": why,
        "our_setting": "",
        "figure": (draw_missing, {"why": why}),
    }


def draw_missing(png: str, why: str) -> None:
    fig, ax = pyplot().subplots(figsize=(6, 2.5))
    note(ax, why)
    save(fig, png)


def _mqar_setting(table: pd.DataFrame, files, runs) -> str:
    gen = next((d.get("generator") for _, d in load(files, runs) if d.get("generator")), {}) or {}
    lrs = [float(x) for x in sorted(table["learning_rate"].dropna().unique())]
    widths = sorted(table["embed_dim"].dropna().unique())
    return (
        f"MQAR vocabulary {gen.get('vocab_size')}, seq_len {gen.get('seq_len')}, trained on a mixture of "
        f"{gen.get('pairs')} pairs, widths {[int(w) for w in widths]}, learning rates {lrs} (chosen on validation), "
        f"power_a {gen.get('power_a')}, answers in input {gen.get('answers_in_input')}"
    )


EVALUATORS = {
    "zoology_fig2": zoology,
    "mamba2_fig8": mamba2,
    "length_control": length_control,
    "retnet_cost": retnet_cost,
}


def claim_png(png: str, claim: str) -> str:
    """The figure of ``claim`` beside the question's own figure: ``<stem>_<claim>.png``."""
    stem, ext = os.path.splitext(png)
    return f"{stem}_{claim}{ext}"


def table(inputs: Inputs) -> pd.DataFrame:
    """One row per published claim (:data:`CLAIMS`): the claim this run checks (``reproduce.claim``)
    judged by its preset's rule, the others "not measured in this run"; column ``figure`` holds each
    claim's (draw function, its arguments), drawn from the same numbers as its row."""
    reproduce, files = inputs.reproduce, inputs.files
    mine = reproduce.get("claim")
    rows = []
    for claim, facts in CLAIMS.items():
        if claim != mine:
            row = _missing(f"not measured in this run: {facts['preset']}")
            row["note"] = f"not measured in this run (run {facts['preset']})"
            rule_text = ""
        else:
            rule = reproduce.get("rule") or {}
            rule_text = " ".join(str(rule.get("text", "")).split())
            if claim == "scaling_prediction":
                row = scaling_prediction(inputs.answers, rule)
            else:
                row = EVALUATORS[claim](files, inputs.runs, rule)
        deviations = "; ".join(reproduce.get("deviations") or []) if claim == mine else ""
        setting = row.get("our_setting", "")
        rows.append(
            {
                "claim": claim,
                "source": facts["source"],
                "claim_text": facts["claim"],
                "published_setting": facts["published_setting"],
                "our_setting": setting + (f" (deviations: {deviations})" if deviations else ""),
                "published": facts["published"],
                "ours": row["ours"],
                "seeds": row["seeds"],
                "verdict": row["verdict"],
                "rule": rule_text,
                "note": row["note"],
                "preset": facts["preset"],
                "figure": row["figure"],
            }
        )
    return pd.DataFrame(rows, columns=[*COLUMNS, "figure"])


def select(table: pd.DataFrame, inputs: Inputs) -> dict:
    """The claim this run checks; reproduction.csv is the table without the figures."""
    claims = table.drop(columns=["figure"])
    return {
        "csv": claims,
        "table": claims,
        "claim": inputs.reproduce.get("claim"),
        "figures": dict(zip(table["claim"], table["figure"])),
    }


def plot(selected: dict, png: str) -> None:
    for claim, (draw, kwargs) in selected["figures"].items():
        draw(claim_png(png, claim), **kwargs)
    table = selected["table"]
    fig, ax = pyplot().subplots(figsize=(9, 2.6))  # the overview: one line per claim
    ax.set_axis_off()
    colors = {"reproduced": "tab:green", "not reproduced": "tab:red", "inconclusive": "tab:orange"}
    for i, r in enumerate(table.itertuples()):
        y = 1 - (i + 0.5) / len(table)
        ax.text(0.0, y, r.source, fontsize=8, va="center", transform=ax.transAxes)
        ax.text(
            0.72, y, r.verdict, fontsize=8, va="center", color=colors.get(r.verdict, "gray"), transform=ax.transAxes
        )
    save(fig, png)


def sentence(selected: dict) -> dict:
    table, mine = selected["table"], selected["claim"]
    if mine:
        r = table[table["claim"] == mine].iloc[0]
        text = (
            f"Reproduction of {r['source']} ({r['claim_text']}): {r['verdict']} by the rule written in the preset "
            f"before the run ({r['rule']}). Ours: {r['ours'] or 'n/a'}" + (f"; {r['note']}" if r["note"] else "") + "."
        )
    else:
        text = "Reproduction: no published claim is checked by this run (config/presets/reproduce-*.yaml)."
    # measured: summary.md links the figure only when this run checks a claim
    return {"claims": table.to_dict("records"), "claim": mine, "measured": bool(mine), "sentence": text}


QUESTION = Question.of_module(
    __name__,
    "reproduction",
    "Reproduction",
    CAPTION,
    evaluations=("recall", "length", "latency"),
    extra_figures=tuple(f"reproduction_{claim}" for claim in CLAIMS),
    reads_answers=True,  # the scaling question's held-out check
    order=80,
)
