"""Scaling: L = E + A x^(-alpha) per architecture against parameters and training FLOPs (the runs' metrics.json)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from archbench.report import scaling
from archbench.report.figures import empty, fmt_n, save, style, write_csv

EVALUATION = None


def answer(files, runs: pd.DataFrame, png: str, csv: str, max_params: float = 1e12, **_settings) -> dict:
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
    write_csv(pd.DataFrame(rows), csv)

    fitted = {a: f for a, f in fits.get("params", {}).get("fits", {}).items() if "alpha" in f}
    if not fitted:
        sizes = ok.groupby("arch")["size_key"].nunique().to_dict() if not ok.empty else {}
        empty(png, "a scaling fit needs >= 3 model sizes per architecture (config/presets/scaling.yaml)")
        return {
            "fits": {},
            "sentence": "Scaling: no fit — it needs >= 3 model sizes per architecture, this run has "
            + (", ".join(f"{style(a)[1]} {n}" for a, n in sizes.items()) or "none")
            + " (run config/presets/scaling.yaml).",
        }
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, x in zip(axes, ("params", "flops")):
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
    fig.suptitle("Scaling: L = E + A·x^(−α) per architecture (best grid point per size, mean over seeds)")
    save(fig, png)

    parts = []
    for arch, f in fitted.items():
        iv = f.get("interval", {}).get("alpha")
        parts.append(
            f"{style(arch)[1]} α = {f['alpha']:.3f}"
            + (f" [{iv[0]:.3f}, {iv[1]:.3f}]" if iv else "")
            + f" ({len(f['sizes'])} sizes, {f['n_seeds']} seed(s))"
        )
    cross = []
    for c in fits["params"]["crossovers"]:
        a, b = style(c["a"])[1], style(c["b"])[1]
        where = f"{fmt_n(c['range'][0])}–{fmt_n(c['range'][1])} parameters"
        if c["crossover"] is None:
            cross.append(f"{a} and {b}: no crossover predicted in {where}")
        else:
            iv = c.get("interval")
            cross.append(
                f"{a} and {b} are predicted to cross at N ≈ {fmt_n(c['crossover'])}"
                + (
                    f" (95% bootstrap interval {fmt_n(iv[0])}–{fmt_n(iv[1])}, "
                    f"{c['bootstrap_fraction_crossing']:.0%} of refits cross)"
                    if iv
                    else " (no interval: fewer than 3 seeds)"
                )
            )
    sentence = "Scaling: " + "; ".join(parts) + (". " + "; ".join(cross) + "." if cross else ".")
    return {"fits": fits, "sentence": sentence}
