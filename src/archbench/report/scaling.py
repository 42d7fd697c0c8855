"""Scaling fits: L(N) = E + A * N^(-alpha) per architecture, vs parameters and vs training FLOPs.

N is the non-embedding parameter count of a run (``metrics.json: params_non_embedding``; the
embeddings are the same for every architecture at one width and vocabulary, and Kaplan et al. show
the fit is cleaner without them). The fit is scipy's ``curve_fit`` (least squares) on the mean loss
per size over seeds; with >= 3 seeds the intervals come from a **bootstrap over seeds** (seeds drawn
with replacement, the same draw for every size so a seed's runs stay together, refit each time;
2.5 / 97.5 percentiles). ``curve_fit``'s covariance is not used for intervals: with 4-5 sizes and
3 free parameters its linearisation is unreliable.

Training FLOPs of a run (C = 3 x forward; backward ~ 2 x forward), per training token, with
N = non-embedding parameters, L layers, d = embed_dim, d_v = RetNet's value_embed_dim,
T = training seq_len and T_bar = (T + 1) / 2 the mean causal span of a position::

    Transformer: C_tok = 6 N + 6 L T_bar (2 d)        (QK^T and AV: 2 * T_bar * d each, forward)
    RetNet:      C_tok = 6 N + 6 L T_bar (d + d_v)     (parallel retention: QK^T over d, (.)V over d_v)
    LongNet:     C_tok = 6 N + 6 L sum_i T_bar_i (2 d) / r_i,  T_bar_i = (min(w_i, T) + 1) / 2
                 (branch i attends within segments of w_i tokens at dilation r_i)

and C = C_tok * tokens_seen. The decay mask, softmax, norms and the vocabulary projection are left
out (the projection is an embedding cost, the same for every architecture).

The predicted crossover is where two fitted curves meet, searched on a log grid from the smallest
measured size up to ``max_params``; it is reported as "none in range" when they do not cross there.
"""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP = 300


def power_law(n, e, a, alpha):
    return e + a * np.power(n, -alpha)


def fit_power_law(n, loss, start: dict | None = None) -> dict:
    """Least-squares (E, A, alpha) of L(N) = E + A N^-alpha through the points (n, loss).

    N is rescaled by its geometric mean for conditioning; A is returned in the original units.
    Without ``start`` several initial alphas are tried (flat valleys in alpha); a bootstrap refit
    starts from the point estimate only. Needs >= 3 distinct sizes (3 free parameters)."""
    from scipy.optimize import curve_fit

    n, loss = np.asarray(n, float), np.asarray(loss, float)
    if len(np.unique(n)) < 3:
        raise ValueError(f"a power-law fit needs >= 3 distinct sizes, got {len(np.unique(n))}")
    scale = float(np.exp(np.log(n).mean()))
    x = n / scale
    best = None
    e0 = max(float(loss.min()) - 0.1 * float(np.ptp(loss) or 1.0), 0.0)
    starts = [(e0, max(float(loss.max()) - e0, 1e-6), alpha0) for alpha0 in (0.1, 0.3, 0.7, 1.5)]
    if start is not None:
        starts = [(start["E"], start["A"] * scale ** -start["alpha"], start["alpha"])]
    for p0 in starts:
        try:
            p, _ = curve_fit(power_law, x, loss, p0=p0, bounds=([0, 0, 1e-4], [np.inf, np.inf, 5.0]), maxfev=20000)
        except RuntimeError:
            continue
        sse = float(((power_law(x, *p) - loss) ** 2).sum())
        if best is None or sse < best[1]:
            best = (p, sse)
    if best is None:
        raise ValueError("the power-law fit did not converge")
    (e, a_scaled, alpha), sse = best
    return {
        "E": float(e),
        "A": float(a_scaled * scale**alpha),
        "alpha": float(alpha),
        "sse": sse,
        "n_points": int(len(n)),
    }


def crossover(fit_a: dict, fit_b: dict, n_min: float, n_max: float, points: int = 2000) -> float | None:
    """Smallest N in [n_min, n_max] where the fitted curves a and b change order (None: they do not)."""
    grid = np.logspace(math.log10(n_min), math.log10(n_max), points)
    diff = power_law(grid, fit_a["E"], fit_a["A"], fit_a["alpha"]) - power_law(
        grid, fit_b["E"], fit_b["A"], fit_b["alpha"]
    )
    sign = np.sign(diff)
    change = np.nonzero(sign[1:] * sign[:-1] < 0)[0]
    if not len(change):
        return None
    i = change[0]  # log-linear interpolation between the grid points around the sign change
    t = diff[i] / (diff[i] - diff[i + 1])
    return float(10 ** (math.log10(grid[i]) + t * (math.log10(grid[i + 1]) - math.log10(grid[i]))))


def bootstrap_fits(sizes, losses_by_seed, start: dict, iters: int = BOOTSTRAP, seed: int = 0) -> list[dict]:
    """Refit on seeds resampled with replacement, starting from the point estimate ``start``.
    ``losses_by_seed``: [n_seeds, n_sizes] array."""
    rng = np.random.default_rng(seed)
    losses = np.asarray(losses_by_seed, float)
    fits = []
    for _ in range(iters):
        pick = rng.integers(0, losses.shape[0], losses.shape[0])
        try:
            fits.append(fit_power_law(sizes, np.nanmean(losses[pick], axis=0), start))
        except ValueError:
            continue
    return fits


def interval(values, level: float = 0.95) -> tuple[float, float] | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return None
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


# ----------------------------------------------------------------------------- FLOPs and budgets


def flops_per_token(arch: str, params_non_embedding: float, hparams: dict) -> float:
    """Training FLOPs per token (formulas in the module docstring)."""
    n, layers, d, t = params_non_embedding, hparams["layers"], hparams["embed_dim"], hparams["seq_len"]
    span = (t + 1) / 2
    if arch.startswith("hf-"):  # any transformers causal LM: the attention term only for its attention layers
        from archbench.models.hf import flops_per_token as hf_flops

        return hf_flops(arch, n, {**hparams, "max_seq_len": t})
    if arch == "retnet":
        dv = hparams.get("value_embed_dim") or 2 * d
        context = span * (d + dv)
    elif arch == "longnet":
        context = sum(
            (min(w, t) + 1) / 2 * 2 * d / r for w, r in zip(hparams["segment_lengths"], hparams["dilated_ratios"])
        )
    else:  # transformer and every other softmax-attention model
        context = span * 2 * d
    return 6 * n + 6 * layers * context


def budget_steps(settings: dict, params_non_embedding: int) -> int | None:
    """Optimizer steps for ``training.tokens_per_param`` x N tokens (None when no budget is set)."""
    per_param = settings.get("tokens_per_param")
    if not per_param:
        return None
    per_step = settings["batch_size"] * settings["accumulate_grad_batches"] * settings["seq_len"]
    return max(1, math.ceil(per_param * params_non_embedding / per_step))


# ----------------------------------------------------------------------------- the report


def scaling_fits(runs: list[dict], x: str = "params", max_params: float = 1e12) -> dict:
    """Fit every architecture's runs; ``runs``: dicts with arch, seed, params (non-embedding),
    flops and test_loss. ``x`` = "params" or "flops". Returns {"fits": {arch: {...}}, "crossovers": [...]}.

    Points at one size are averaged over seeds; several grid points at one size (e.g. learning
    rates) are reduced to the best (lowest mean loss), as a scaling law describes the tuned model."""
    import pandas as pd

    frame = pd.DataFrame(runs)
    out = {"x": x, "fits": {}, "crossovers": []}
    if frame.empty:
        return out
    boots = {}
    for arch, rows in frame.groupby("arch", sort=False):
        # best configuration per size, by mean over seeds
        per = (
            rows.groupby(["size_key", "point"], sort=False).agg(loss=("test_loss", "mean"), x=(x, "mean")).reset_index()
        )
        best = per.loc[per.groupby("size_key")["loss"].idxmin()].sort_values("x")
        entry = {"sizes": best["x"].tolist(), "loss": best["loss"].tolist(), "n_seeds": int(rows["seed"].nunique())}
        if len(best) < 3:
            entry["error"] = f"{len(best)} size(s); a fit needs >= 3"
            out["fits"][arch] = entry
            continue
        entry.update(fit_power_law(best["x"], best["loss"]))
        chosen = rows[rows["point"].isin(best["point"])]
        table = chosen.pivot_table(index="seed", columns="size_key", values="test_loss", aggfunc="mean")
        table = table[best["size_key"].tolist()]
        if entry["n_seeds"] >= 3:
            boots[arch] = bootstrap_fits(best["x"].to_numpy(), table.to_numpy(), entry)
            entry["interval"] = {k: interval([f[k] for f in boots[arch]]) for k in ("E", "A", "alpha")}
            entry["interval_method"] = f"bootstrap over seeds ({len(boots[arch])} refits, 95% percentile)"
        out["fits"][arch] = entry
    fitted = [a for a, f in out["fits"].items() if "alpha" in f]
    for i, a in enumerate(fitted):
        for b in fitted[i + 1 :]:
            fa, fb = out["fits"][a], out["fits"][b]
            lo = min(min(fa["sizes"]), min(fb["sizes"]))
            hi = max_params if x == "params" else max_params * 1e12  # FLOPs: a generous upper end
            point = crossover(fa, fb, lo, hi)
            row = {"a": a, "b": b, "x": x, "range": [lo, hi], "crossover": point}
            if a in boots and b in boots:
                cross = [crossover(p, q, lo, hi) for p, q in zip(boots[a], boots[b])]
                row["bootstrap_fraction_crossing"] = float(np.mean([c is not None for c in cross])) if cross else None
                row["interval"] = interval(cross)
            out["crossovers"].append(row)
    return out
