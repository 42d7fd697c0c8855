"""Scaling: the per-size paired difference between architectures (primary evidence) and descriptive
fits L = E + A x^(-alpha) against parameters and training FLOPs (the runs' metrics.json).
Method and thresholds: :mod:`archbench.report.scaling`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from archbench.report import scaling
from archbench.report.figures import fmt_n, pyplot, save, style
from archbench.report.questions.base import Inputs, Question

CAPTION = """
Scaling. Right: the paired test-loss difference between architectures at each measured size (same seeds,
95% t-interval with ≥ 3 seeds) — the evidence. A crossover is claimed only when the intervals at the
smallest and the largest size exclude 0 with opposite signs, and it is placed inside the measured range.
Left and middle: test loss against non-embedding parameters and training FLOPs (each run's
``train_flops_per_token`` × tokens seen) with L = E + A·x^(−α) fitted per architecture (grid point per
size selected on validation loss; mean over seeds). Below 8 sizes the exponents are descriptive; their
intervals are a parametric bootstrap that includes the fit's uncertainty. The table's ``fit_crossover``
is where the fitted curves would meet (at most one decade beyond the largest size, flagged
``fit_crossover_extrapolated``); it is never a claim on its own.
"""


def _table(fits: dict) -> pd.DataFrame:
    rows = []
    for x, out in fits.items():
        for arch, f in out["fits"].items():
            iv = f.get("interval", {})
            rows.append(
                {
                    "x": x,
                    "kind": "fit",
                    "arch": arch,
                    "n_sizes": len(f["sizes"]),
                    "n_seeds": f["n_seeds"],
                    "selected_on": f["selected_on"],
                    **{k: f.get(k) for k in ("E", "A", "alpha")},
                    **{
                        f"{k}_{s}": (iv.get(k) or [None, None])[i]
                        for k in ("E", "A", "alpha")
                        for i, s in enumerate(("low", "high"))
                    },
                    "descriptive": f.get("descriptive"),
                    "error": f.get("error"),
                }
            )
            h = f.get("heldout")
            if h:
                rows.append(
                    {
                        "x": x,
                        "kind": "scaling_prediction",
                        "arch": arch,
                        "size": h["size"],
                        "n_seeds": h["n_seeds"],
                        "predicted": h["predicted"],
                        "predicted_low": (h["predicted_interval"] or [None, None])[0],
                        "predicted_high": (h["predicted_interval"] or [None, None])[1],
                        "measured": h["measured"],
                        "measured_low": (h["measured_interval"] or [None, None])[0],
                        "measured_high": (h["measured_interval"] or [None, None])[1],
                    }
                )
        for c in out["crossovers"]:
            for p in c["paired"]:
                rows.append(
                    {
                        "x": x,
                        "kind": "paired_difference",
                        "arch": f"{c['a']}-{c['b']}",
                        "size": p["size"],
                        "n_seeds": c["n_seeds"],
                        "diff": p["mean"],
                        "diff_low": p["low"],
                        "diff_high": p["high"],
                    }
                )
            rows.append(
                {
                    "x": x,
                    "kind": "crossover",
                    "arch": f"{c['a']}|{c['b']}",
                    "supported": c["supported"],
                    "crossover": c["crossover"],
                    "fit_crossover": c["fit_crossover"],
                    "fit_crossover_extrapolated": c["fit_crossover_extrapolated"],
                    "range_low": (c["range"] or [None, None])[0],
                    "range_high": (c["range"] or [None, None])[1],
                    "dropped": "; ".join(
                        f"{arch}: {', '.join(fmt_n(v) for v in sizes)}" for arch, sizes in c.get("dropped", {}).items()
                    ),
                }
            )
    return pd.DataFrame(rows)


def _interval(p: dict, n_seeds: int) -> str:
    if p["low"] is None:
        return f"{p['mean']:+.3f} (no interval: needs ≥ 3 seeds, has {n_seeds})"
    return f"{p['mean']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}]"


def pair_sentence(c: dict) -> str:
    a, b = style(c["a"])[1], style(c["b"])[1]
    if not c["paired"]:
        return f"{a} − {b}: no size both measured"
    first, last = c["paired"][0], c["paired"][-1]
    evidence = (
        f"{a} − {b} test loss {_interval(first, c['n_seeds'])} at {fmt_n(first['size'])} and "
        f"{_interval(last, c['n_seeds'])} at {fmt_n(last['size'])} parameters"
    )
    dropped = c.get("dropped") or {}
    if dropped:
        evidence += (
            " (sizes measured by one architecture only, left out: "
            + "; ".join(f"{style(arch)[1]} {', '.join(fmt_n(v) for v in sizes)}" for arch, sizes in dropped.items())
            + ")"
        )
    if c["supported"]:
        return f"{evidence}: they cross inside the measured range, near N ≈ {fmt_n(c['crossover'])} (interpolated)"
    return f"{evidence}: no crossover is supported by the data"


def _band(iv) -> str:
    return f" [{iv[0]:.3f}, {iv[1]:.3f}]" if iv else ""


def prediction_sentence(fitted: dict) -> str:
    """The held-out check per architecture: fit without the largest size, predict it."""
    parts = []
    for arch, f in fitted.items():
        h = f.get("heldout")
        if not h:
            continue
        parts.append(
            f"{style(arch)[1]} predicted {h['predicted']:.3f}{_band(h['predicted_interval'])} vs measured "
            f"{h['measured']:.3f}{_band(h['measured_interval'])} at {fmt_n(h['size'])}"
            + ("" if h["predicted_interval"] else f" (no interval: {h['n_seeds']} seed(s), needs ≥ 3)")
        )
    if not parts:
        return "Scaling prediction: needs ≥ 4 sizes (3 to fit, the largest held out)."
    return (
        "Scaling prediction (fit on every size but the largest, which it predicts; test loss): "
        + "; ".join(parts)
        + "."
    )


def table(inputs: Inputs) -> pd.DataFrame:
    """The runs with a test loss and a parameter count (the fits' points)."""
    return inputs.runs.dropna(subset=["test_loss", "params"])


def select(ok: pd.DataFrame, inputs: Inputs) -> dict:
    """The fits against parameters and training FLOPs (grid point per size selected on validation loss),
    the paired differences and crossovers; scaling_fits.csv is their table."""
    max_params = inputs.report["crossover_max_params"]
    fits = (
        {
            x: scaling.scaling_fits(ok.dropna(subset=[x]).to_dict("records"), x=x, max_params=max_params)
            for x in ("params", "flops")
        }
        if not ok.empty
        else {}
    )
    fitted = {a: f for a, f in fits.get("params", {}).get("fits", {}).items() if "alpha" in f}
    out = {"csv": _table(fits), "fits": fits, "fitted": fitted}
    if not fitted:
        out["sizes"] = ok.groupby("arch")["size_key"].nunique().to_dict() if not ok.empty else {}
        out["empty"] = "a scaling fit needs >= 3 model sizes per architecture (config/presets/scaling.yaml)"
    return out


def plot(selected: dict, png: str) -> None:
    import matplotlib.ticker

    fits = selected["fits"]
    fig, axes = pyplot().subplots(1, 3, figsize=(15, 4.2))
    for ax, x in zip(axes, ("params", "flops")):
        if x not in fits or not fits[x]["fits"]:
            ax.text(0.5, 0.5, "no train_flops_per_token in metrics.json", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        for arch, f in fits[x]["fits"].items():
            col, name = style(arch)
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
    ax = axes[2]
    for c in fits["params"]["crossovers"]:
        sizes = [p["size"] for p in c["paired"]]
        mean = np.array([p["mean"] for p in c["paired"]])
        err = np.array(
            [
                [p["mean"] - (p["low"] if p["low"] is not None else p["mean"]) for p in c["paired"]],
                [(p["high"] if p["high"] is not None else p["mean"]) - p["mean"] for p in c["paired"]],
            ]
        )
        ax.errorbar(
            sizes,
            mean,
            yerr=err,
            fmt="o-",
            capsize=3,
            color=style(c["b"])[0],
            label=f"{style(c['a'])[1]} − {style(c['b'])[1]}",
        )
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("non-embedding parameters")
    ax.set_ylabel("paired test-loss difference (95% interval, ≥ 3 seeds)")
    if fits["params"]["crossovers"]:
        ax.legend(fontsize=8)
    fig.suptitle(
        "Scaling: paired differences per size (right; the evidence) and descriptive fits L = E + A·x^(−α) "
        "(grid point per size selected on validation loss; test loss shown)",
        fontsize=9,
    )
    save(fig, png)


def sentence(selected: dict) -> dict:
    fits, fitted = selected["fits"], selected["fitted"]
    if not fitted:
        return {
            "fits": {},
            "measured": False,
            "sentence": "Scaling: no fit — it needs >= 3 model sizes per architecture, this run has "
            + (", ".join(f"{style(a)[1]} {n}" for a, n in selected["sizes"].items()) or "none")
            + " (run config/presets/scaling.yaml).",
        }
    n_min = scaling.MIN_SIZES_FOR_EXPONENT
    parts = []
    for arch, f in fitted.items():
        iv = f.get("interval", {}).get("alpha")
        parts.append(
            f"{style(arch)[1]} α = {f['alpha']:.3f}"
            + (f" [{iv[0]:.3f}, {iv[1]:.3f}]" if iv else " (no interval: needs ≥ 3 seeds)")
            + f" ({len(f['sizes'])} sizes, {f['n_seeds']} seed(s))"
        )
    descriptive = any(f.get("descriptive") for f in fitted.values())
    note = f"descriptive: fewer than {n_min} sizes; " if descriptive else ""
    fits_text = f"Fitted exponents ({note}95% intervals include fit uncertainty): " + "; ".join(parts) + ". "
    fits_text += prediction_sentence(fitted)
    pairs = "; ".join(pair_sentence(c) for c in fits["params"]["crossovers"])
    text = (
        "Scaling (grid point per size selected on validation loss; test loss reported): "
        + (pairs + ". " if pairs else "")
        + fits_text
    )
    return {"fits": fits, "sentence": text, "held_out": held_out_rows(fitted)}


def held_out_rows(fitted: dict) -> dict:
    """The held-out check per architecture (parameter axis), in the shape the reproduction question reads:
    {arch: {size, n_seeds, predicted, lo, hi, observed, inside}}; inside is None without an interval."""
    rows = {}
    for arch, f in fitted.items():
        h = f.get("heldout")
        if not h:
            continue
        band = h["predicted_interval"]
        rows[arch] = {
            "size": h["size"],
            "n_seeds": h["n_seeds"],
            "predicted": h["predicted"],
            "lo": band[0] if band else None,
            "hi": band[1] if band else None,
            "observed": h["measured"],
            "observed_interval": h.get("measured_interval"),
            "inside": None if band is None else band[0] <= h["measured"] <= band[1],
        }
    return rows


QUESTION = Question.of_module(__name__, "scaling", "Scaling", CAPTION, csv="scaling_fits", order=20)
