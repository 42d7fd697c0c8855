"""Hybrid ratio: how much attention does a recurrent model need? (the Mamba-2 paper's Table 2 question)

For every architecture whose runs vary the fraction of softmax-attention layers (``model.attention_every``
/ ``model.attention_layers``, :mod:`archbench.models.hybrid`; fraction = attention layers / layers) over
at least two values, each fraction is represented by its grid point **selected on mean validation
loss** among the other axes (learning rate, the pattern's placement, ...); its test loss is reported.

The question: does an interior fraction beat both the pure recurrent model (the lowest fraction
measured, 0 in the hybrid-ratio preset) and the most-attention end (the highest)? The U shape is claimed
only when the interior fraction with the lowest validation loss has a seed-paired test-loss difference
to **both** ends below 0 with Holm-adjusted p < 0.05 (so its 95% t-interval lies below 0 too), from
>= 3 seeds. The family Holm corrects over is every comparison the question makes: every interior
fraction against both ends, for every architecture of the report (the best interior is chosen on
validation loss, which moves with the test loss of the same run, so all interior fractions count).

Seed noise is pooled per architecture as compare.py pools it over grid points: the residual of a
fraction x seed table (the seed effect removed: the comparison is paired) on (F - 1)(n - 1) degrees of
freedom, so a paired difference has variance 2 sigma^2; this assumes the seed noise is alike at every
fraction. With 3 seeds and 5 fractions, 8 degrees of freedom instead of one difference's 2. Simulated
(tests/test_report_hybrid.py, 2,000 reports of 5 fractions, 3 seeds, 0.01 nats of seed noise): a flat
curve is claimed a U in 0.2%, a true 0.05-nat U is found in 97%.

Torch- and matplotlib-free apart from :func:`plot` (the table, selection and sentence are tested
without a plot).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from archbench.models.hybrid import attention_layers
from archbench.models.registry import ARCHS
from archbench.report import compare
from archbench.report.questions.base import Inputs, Question
from archbench.report.questions.runs import run_metrics

CAPTION = """
Hybrid ratio (the Mamba-2 paper's Table 2 question): test loss against the fraction of softmax-attention
layers (``model.attention_every`` / ``model.attention_layers``; attention layers / layers), one line per
architecture whose runs vary it. Each fraction is shown at its grid point selected on validation loss
(mean over seeds; error bars: 95% t-interval with ≥ 3 seeds); the circled point is the best interior
fraction. A U shape is claimed only when that fraction's seed-paired test-loss difference to both ends
(the lowest and the highest fraction measured) lies below 0, Holm-corrected over every interior-vs-end
comparison of the report. The table (hybrid.csv) has one ``fraction`` row per selected point (pattern,
n_seeds, test loss and interval, parameters, training FLOPs per token) and one ``difference`` row per
comparison (interval, p, Holm-adjusted p).
"""
PRESET = "config/presets/hybrid-ratio.yaml"
PUBLISHED = (
    "Published shape: the Mamba-2 paper (arXiv 2405.21060, Table 2; 48 layers, 350M parameters, the Pile) "
    "is best with ~10% attention layers, 8.26 perplexity against 8.60 with none and 8.50 with half"
)
NOT_MEASURED = (
    "Hybrid ratio (does an interior fraction of attention layers beat the pure recurrent model and the "
    f"most-attention end?) was not measured: no architecture's runs vary model.attention_every / "
    f"model.attention_layers (run {PRESET})."
)
RUN_COLUMNS = ["arch", "point", "seed", "val_loss", "test_loss", "params", "flops_per_token", "layers",
               "attention_every", "attention_layers", "hybrid"]  # fmt: skip


# ----------------------------------------------------------------------------- the runs


def hybrid_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (questions.runs.runs_frame) with each run's layer count, attention settings, training FLOPs
    per token and ``hybrid``: whether its architecture's model has the hybrid settings (they are in the
    metrics.json ``model_config``; a Transformer in the same grid carries ``attention_every`` only in its
    ``hparams`` and is left out)."""
    rows = []
    for run in runs.to_dict("records"):
        m = run_metrics(run["run_dir"])
        hp, model = m.get("hparams", {}), m.get("model_config")
        where = model if model is not None else hp
        rows.append(
            {
                **{k: run.get(k) for k in ("arch", "point", "seed", "val_loss", "test_loss", "params")},
                "flops_per_token": m.get("train_flops_per_token"),
                "layers": hp.get("layers"),
                "attention_every": hp.get("attention_every") or 0,
                "attention_layers": list(hp.get("attention_layers") or []),
                "hybrid": "attention_every" in where or "attention_layers" in where,
            }
        )
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def _fraction_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus ``pattern`` (R / M ... for the recurrent layers, A for attention) and ``fraction``."""
    out = frame.copy()
    patterns, fractions = [], []
    for r in out.to_dict("records"):
        layers = int(r["layers"])
        attn = attention_layers(layers, int(r["attention_every"] or 0), list(r["attention_layers"] or []) or None)
        mixer = display(r["arch"])[0].upper()
        patterns.append("".join("A" if i in attn else mixer for i in range(layers)))
        fractions.append(len(attn) / layers)
    out["pattern"], out["fraction"] = patterns, fractions
    return out


def display(arch: str) -> str:
    return ARCHS[arch].display if arch in ARCHS else arch


def percent(f: float) -> str:
    return f"{100 * f:.3g}%"


# ----------------------------------------------------------------------------- selection


def by_fraction(frame: pd.DataFrame) -> dict:
    """Per architecture whose hybrid runs have >= 2 attention fractions: per fraction (ascending) the grid
    point with the lowest mean validation loss (compare.select_best; test loss never selects).

    ``frame``: one row per run with the :data:`RUN_COLUMNS`. Returns {arch: {"fractions", "rows" (one
    dict per fraction: point, attention_every, pattern, n_seeds, test mean / 95% interval, val mean,
    params, flops_per_token), "seeds", "test" / "val" [F, S] at the selected points}}."""
    frame = frame[frame["hybrid"].astype(bool)].dropna(subset=["layers"])
    if frame.empty:
        return {}
    frame = _fraction_columns(frame)
    out = {}
    for arch, rows in frame.groupby("arch", sort=False):
        fractions = sorted(rows["fraction"].unique())
        if len(fractions) < 2:
            continue
        points = list(dict.fromkeys(rows["point"]))
        seeds = sorted(rows["seed"].unique())
        cube = {c: np.full((len(fractions), len(points), len(seeds)), np.nan) for c in ("test_loss", "val_loss")}
        for r in rows.to_dict("records"):
            at = (fractions.index(r["fraction"]), points.index(r["point"]), seeds.index(r["seed"]))
            for c, values in cube.items():
                if r[c] is not None and not pd.isna(r[c]):
                    values[at] = r[c]
        best = compare.select_best(cube["val_loss"], cube["test_loss"])
        test = cube["test_loss"][np.arange(len(fractions)), best]  # [F, S]
        val = cube["val_loss"][np.arange(len(fractions)), best]
        chosen = []
        for f, p in zip(fractions, best):
            mine = rows[(rows["fraction"] == f) & (rows["point"] == points[p])]
            ci = compare.mean_ci(mine["test_loss"])
            first = mine.iloc[0]
            chosen.append(
                {
                    "fraction": f,
                    "point": points[p],
                    "attention_every": int(first["attention_every"]),
                    "attention_layers": list(first["attention_layers"]),
                    "pattern": first["pattern"],
                    "layers": int(first["layers"]),
                    "n_seeds": ci["n"],
                    "test_loss": ci["mean"],
                    "test_low": ci["ci_low"],
                    "test_high": ci["ci_high"],
                    "val_loss": float(pd.to_numeric(mine["val_loss"], errors="coerce").mean()),
                    "params": float(pd.to_numeric(mine["params"], errors="coerce").mean()),
                    "flops_per_token": float(pd.to_numeric(mine["flops_per_token"], errors="coerce").mean()),
                }
            )
        out[arch] = {"fractions": fractions, "rows": chosen, "seeds": seeds, "test": test, "val": val}
    return out


# ----------------------------------------------------------------------------- the U test (arrays)


def comparisons(test, fractions) -> dict:
    """Every interior fraction against both ends, on test losses ``test`` [..., F, S] (fractions ascending,
    NaN = no run), vectorised over leading axes (simulated reports). Only seeds every fraction ran count.
    Returns ``mean`` / ``low`` / ``high`` / ``p`` [..., K, 2] (interior - lowest end, interior - highest
    end; K = F - 2 interior fractions) from compare.t_test with the pooled residual variance, ``n`` and
    ``df`` [...]."""
    test = np.asarray(test, float)
    F = test.shape[-2]
    if len(fractions) != F or F < 3:
        raise ValueError(f"a U needs >= 3 fractions (two ends and an interior one), got {F}")
    complete = np.isfinite(test).all(-2)  # [..., S]
    x = np.where(complete[..., None, :], test, np.nan)
    n = complete.sum(-1)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        per_fraction = np.nanmean(x, -1)  # [..., F]
        per_seed = np.nanmean(x, -2)  # [..., S]
        grand = np.nanmean(per_fraction, -1)
        resid = x - per_fraction[..., None] - per_seed[..., None, :] + grand[..., None, None]
        df = (F - 1) * np.maximum(n - 1, 0)
        var = np.where(df > 0, 2 * np.nansum(resid**2, (-2, -1)) / np.maximum(df, 1), np.nan)
    interior = per_fraction[..., 1:-1]
    mean = np.stack([interior - per_fraction[..., :1], interior - per_fraction[..., -1:]], -1)  # [..., K, 2]
    shape = mean.shape
    t = compare.t_test(mean, var[..., None, None], np.broadcast_to(n[..., None, None], shape), df[..., None, None])
    return {"mean": mean, "low": t["low"], "high": t["high"], "p": t["p"], "n": n, "df": df}


def best_interior(val, test) -> np.ndarray:
    """[...] index (0-based among the interior fractions) of the interior fraction with the lowest mean
    validation loss (``val`` / ``test`` [..., F, S]); its mean test loss where it has no validation loss."""
    val, test = np.asarray(val, float)[..., 1:-1, :], np.asarray(test, float)[..., 1:-1, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        score = np.where(np.isfinite(val).any(-1), np.nanmean(val, -1), np.nanmean(test, -1))
    return np.argmin(np.where(np.isfinite(score), score, np.inf), -1)


def claimed(mean, adjusted, best, alpha: float = compare.ALPHA) -> np.ndarray:
    """[...] whether the best interior fraction beats both ends: both differences negative with
    Holm-adjusted p < ``alpha`` (``mean`` / ``adjusted`` [..., K, 2], ``best`` [...])."""
    pick = np.asarray(best)[..., None, None]
    m = np.take_along_axis(np.asarray(mean), pick, -2)[..., 0, :]
    a = np.take_along_axis(np.asarray(adjusted), pick, -2)[..., 0, :]
    with np.errstate(invalid="ignore"):
        return ((m < 0) & (a < alpha)).all(-1)


def u_arrays(test, val, fractions) -> dict:
    """The U verdict of one architecture (its comparisons the whole family), vectorised over leading axes:
    :func:`comparisons` plus ``adjusted`` (Holm), ``best`` and ``claimed``."""
    c = comparisons(test, fractions)
    shape = c["p"].shape
    c["adjusted"] = compare.holm(c["p"].reshape(*shape[:-2], -1)).reshape(shape)
    c["best"] = best_interior(val, test)
    c["claimed"] = claimed(c["mean"], c["adjusted"], c["best"])
    return c


# ----------------------------------------------------------------------------- the report


def verdict(selected: dict) -> dict:
    """Per architecture of :func:`select`: its comparisons, Holm over every architecture's together.
    {arch: {"best" (index among the fractions), "lowest" (index of the lowest validation loss), "n",
    "comparisons": [{fraction, end, mean, low, high, p, p_holm}], "claimed" (None: below 3 seeds or
    fewer than 3 fractions)}, "_m": family size}."""
    out, family = {}, []
    for arch, s in selected.items():
        fr = s["fractions"]
        lowest = int(np.argmin([r["val_loss"] if np.isfinite(r["val_loss"]) else r["test_loss"] for r in s["rows"]]))
        entry = {"lowest": lowest, "best": None, "n": 0, "comparisons": [], "claimed": None}
        out[arch] = entry
        if len(fr) < 3:
            continue
        c = comparisons(s["test"], fr)
        entry.update(best=int(best_interior(s["val"], s["test"])) + 1, n=int(c["n"]), df=int(c["df"]), raw=c)
        family.append(c["p"].ravel())
    adjusted = compare.holm(np.concatenate(family)) if family else np.array([])
    at = 0
    for arch, entry in out.items():
        c = entry.pop("raw", None)
        if c is None:
            continue
        k = c["p"].size
        adj = adjusted[at : at + k].reshape(c["p"].shape)
        at += k
        fr = selected[arch]["fractions"]
        for i in range(c["mean"].shape[0]):
            for j, end in enumerate((fr[0], fr[-1])):
                entry["comparisons"].append(
                    {
                        "fraction": fr[i + 1],
                        "end": end,
                        **{key: _num(c[key][i, j]) for key in ("mean", "low", "high", "p")},
                        "p_holm": _num(adj[i, j]),
                    }
                )
        if entry["n"] >= compare.MIN_SEEDS_FOR_CI:
            entry["claimed"] = bool(claimed(c["mean"], adj, entry["best"] - 1))
    return {**out, "_m": int(np.isfinite(adjusted).sum())}


def _num(v) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def _diff(c: dict) -> str:
    if c["low"] is None:
        return f"{c['mean']:+.3f}"
    return f"{c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"


def _end(f: float) -> str:
    if f == 0:
        return "0% (pure)"
    return percent(f) + (" (all attention)" if f == 1 else "")


def arch_sentence(arch: str, s: dict, v: dict) -> str:
    """One architecture's part of the sentence."""
    fr, rows = s["fractions"], s["rows"]
    head = f"{display(arch)} ({rows[0]['layers']} layers; {', '.join(percent(f) for f in fr)} attention)"
    lowest = rows[v["lowest"]]
    if len(fr) < 3:
        return (
            f"{head}: no U test — it needs >= 3 fractions (two ends and an interior one); lowest validation loss "
            f"at {percent(lowest['fraction'])} ({lowest['pattern']}), test loss {lowest['test_loss']:.3f}"
        )
    b = rows[v["best"]]
    diffs = [c for c in v["comparisons"] if c["fraction"] == b["fraction"]]
    evidence = (
        f"best interior fraction {percent(b['fraction'])} ({b['pattern']}, attention_every {b['attention_every']}), "
        f"test loss {b['test_loss']:.3f}; minus {_end(diffs[0]['end'])} {_diff(diffs[0])}, "
        f"minus {_end(diffs[1]['end'])} {_diff(diffs[1])} nats/token"
    )
    if v["claimed"] is None:
        verdict_words = f"no interval: {v['n']} seed(s), needs ≥ {compare.MIN_SEEDS_FOR_CI}"
    elif v["claimed"]:
        verdict_words = "U shape: an interior fraction beats both ends"
    else:
        verdict_words = "no U shape detectable"
    tail = ""
    if v["lowest"] in (0, len(fr) - 1):
        tail = f"; lowest validation loss at the end {_end(lowest['fraction'])}"
    return f"{head}: {verdict_words} — {evidence}{tail}"


def words(selected: dict, v: dict) -> str:
    if not selected:
        return NOT_MEASURED
    parts = "; ".join(arch_sentence(a, s, v[a]) for a, s in selected.items())
    family = f"Holm over the {v['_m']} comparisons made" if v["_m"] else "Holm over the comparisons made"
    return (
        "Hybrid ratio (fraction of attention layers; per fraction the grid point selected on validation loss, "
        "test loss reported; a U shape is claimed when the best interior fraction is below both ends with "
        f"seed-paired 95% intervals, ≥ 3 seeds, {family}): {parts}. {PUBLISHED}."
    )


def fraction_table(selected: dict, v: dict) -> pd.DataFrame:
    """hybrid.csv: one ``fraction`` row per architecture and fraction (the selected point), then one
    ``difference`` row per comparison (interior - end)."""
    rows = []
    for arch, s in selected.items():
        for i, r in enumerate(s["rows"]):
            rows.append(
                {
                    "kind": "fraction",
                    "arch": arch,
                    "attention_every": r["attention_every"],
                    "attention_layers": " ".join(map(str, r["attention_layers"])),
                    "pattern": r["pattern"],
                    "fraction": r["fraction"],
                    "point": r["point"],
                    "n_seeds": r["n_seeds"],
                    "test_loss": r["test_loss"],
                    "test_loss_low": r["test_low"],
                    "test_loss_high": r["test_high"],
                    "val_loss": r["val_loss"],
                    "params": r["params"],
                    "flops_per_token": r["flops_per_token"],
                    "best_interior": i == v[arch]["best"],
                }
            )
        for c in v[arch]["comparisons"]:
            rows.append(
                {
                    "kind": "difference",
                    "arch": arch,
                    "fraction": c["fraction"],
                    "end_fraction": c["end"],
                    "n_seeds": v[arch]["n"],
                    "diff": c["mean"],
                    "diff_low": c["low"],
                    "diff_high": c["high"],
                    "p": c["p"],
                    "p_holm": c["p_holm"],
                    "u_shape": v[arch]["claimed"],
                }
            )
    columns = ["kind", "arch", "attention_every", "attention_layers", "pattern", "fraction", "point", "n_seeds",
               "test_loss", "test_loss_low", "test_loss_high", "val_loss", "params", "flops_per_token",
               "best_interior", "end_fraction", "diff", "diff_low", "diff_high", "p", "p_holm", "u_shape"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def table(inputs: Inputs) -> pd.DataFrame:
    """Every run with its attention settings (:func:`hybrid_runs`)."""
    return hybrid_runs(inputs.runs)


def select(frame: pd.DataFrame, inputs: Inputs) -> dict:
    """Per fraction the selected point (:func:`by_fraction`) and the U test (:func:`verdict`)."""
    selected = by_fraction(frame)
    v = verdict(selected)
    out = {"csv": fraction_table(selected, v), "selected": selected, "verdict": v}
    if not selected:
        out["empty"] = f"no architecture's runs vary the attention fraction (run {PRESET})"
    return out


def plot(chosen: dict, png: str) -> None:
    """Test loss vs attention fraction per architecture, 95% t-intervals as error bars (>= 3 seeds)."""
    from archbench.report.figures import line_kw, pyplot, save, style

    plt = pyplot()
    selected, v = chosen["selected"], chosen["verdict"]
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for arch, s in selected.items():
        col = style(arch)[0]
        x = np.array(s["fractions"])
        y = np.array([r["test_loss"] for r in s["rows"]])
        low = np.array([r["test_low"] for r in s["rows"]])
        high = np.array([r["test_high"] for r in s["rows"]])
        err = np.nan_to_num(np.vstack([y - low, high - y]), nan=0.0)
        ax.errorbar(x, y, yerr=err, capsize=3, **line_kw(arch))
        if v[arch]["best"] is not None:
            b = s["rows"][v[arch]["best"]]
            ax.scatter([b["fraction"]], [b["test_loss"]], s=140, facecolors="none", edgecolors=col, zorder=4)
        for r in s["rows"]:
            ax.annotate(r["pattern"], (r["fraction"], r["test_loss"]), fontsize=6, xytext=(3, 4),
                        textcoords="offset points")  # fmt: skip
    ax.set_xlabel("fraction of attention layers")
    ax.set_ylabel("test loss (nats/token; 95% t-interval, ≥ 3 seeds)")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda f, _: percent(f)))
    ax.legend()
    ax.set_title(
        "Hybrid ratio: test loss vs attention fraction (per fraction selected on validation loss; "
        "circled: best interior)",
        fontsize=8,
    )
    save(fig, png)


def sentence(chosen: dict) -> dict:
    selected, v = chosen["selected"], chosen["verdict"]
    if not selected:
        return {"measured": False, "archs": {}, "sentence": NOT_MEASURED}
    archs = {
        arch: {
            "fractions": s["fractions"],
            "points": [r["point"] for r in s["rows"]],
            "test_loss": [r["test_loss"] for r in s["rows"]],
            "best": v[arch]["best"],
            "u_shape": v[arch]["claimed"],
            "n_seeds": v[arch]["n"],
            "comparisons": v[arch]["comparisons"],
        }
        for arch, s in selected.items()
    }
    return {"measured": True, "archs": archs, "comparisons": v["_m"], "sentence": words(selected, v)}


QUESTION = Question.of_module(__name__, "hybrid", "Hybrid ratio", CAPTION, order=70)
