"""Scaling: per-size paired differences (the primary evidence) and descriptive power-law fits
L(N) = E + A * N^(-alpha) per architecture, against parameters and against training FLOPs.

N is the non-embedding parameter count of a run (``metrics.json: params_non_embedding``; the
embeddings are the same for every architecture at one width and vocabulary, and Kaplan et al. show
the fit is cleaner without them). Training FLOPs are ``metrics.json: train_flops_per_token`` (the
architecture's own formula, as trained; ``archbench.models.flops``) x ``tokens_seen``.

At each size every architecture is represented by its best grid point there, **selected on mean
validation loss**; the test losses of that point are what is reported and fitted.

Evidence at small n (a handful of sizes and seeds):

- **Paired differences per size.** a - b over the seeds both ran at the same size, joined by the
  runs' size key (their shape settings, ``questions.runs.SIZE_KEYS``; never by position), with a 95%
  t-interval from >= 3 seeds. Sizes only one architecture measured are listed as dropped. A crossover is claimed only when the
  intervals at the smallest and at the largest measured size exclude 0 with opposite signs; it is then
  located between the adjacent measured sizes where the mean difference changes sign (log-linear
  interpolation), i.e. inside the measured range. Otherwise no crossover is supported by the data.
- **Fits are descriptive.** With three free parameters and fewer than ``MIN_SIZES_FOR_EXPONENT`` sizes
  the exponent is not identified well (two identical true curves at five sizes with 0.01 nats of noise
  give alpha from 0.19 to 0.42 around 0.30). Intervals are a parametric bootstrap that includes the
  fit's own uncertainty: each refit adds noise of the larger of the residual variance and the seed
  variance of the mean to the fitted curve, and resamples the seeds. Below 3 seeds there is no
  interval (a 1-seed bootstrap covered the true exponent in 76% of identical-curve trials, not 95%)
  and no fitted crossing (one was reported in 88% of trials of two identical curves). With >= 3
  seeds, where the fitted curves would cross is listed only within one decade beyond the largest
  size, labelled extrapolated, and never claimed on its own.
- **Held-out check** (as OLMo's ladders do): with >= 4 sizes, the fit on every size but the largest
  predicts the largest; predicted vs measured, with the prediction's bootstrap interval and the
  measured mean's t-interval (>= 3 seeds), is the "scaling prediction" row of scaling_fits.csv.
"""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP = 300
MIN_SEEDS = 3  # below this: no exponent interval, no fitted crossing, no interval on the held-out check


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


def interval(values, level: float = 0.95) -> tuple[float, float] | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return None
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


# ----------------------------------------------------------------------------- budgets


# ----------------------------------------------------------------------------- the report

MIN_SIZES_FOR_EXPONENT = 8  # below this many sizes an exponent is descriptive, not an estimate
EXTRAPOLATE_DECADES = 1.0  # how far beyond the largest size a fitted crossing is listed at all


def paired_intervals(diffs) -> dict[str, np.ndarray]:
    """Mean and 95% t-interval of paired differences ``diffs`` [..., seeds, sizes] over the seeds axis,
    vectorised over any leading axes (NaN intervals below 3 seeds)."""
    from scipy import stats

    d = np.asarray(diffs, float)
    n = d.shape[-2]
    mean = d.mean(axis=-2)
    if n < 3:
        nan = np.full_like(mean, np.nan)
        return {"n": n, "mean": mean, "low": nan, "high": nan}
    half = stats.t.ppf(0.975, n - 1) * d.std(axis=-2, ddof=1) / math.sqrt(n)
    return {"n": n, "mean": mean, "low": mean - half, "high": mean + half}


def crossover_supported(low, high) -> np.ndarray:
    """Whether the intervals at the smallest (index 0) and largest (index -1) size exclude 0 with
    opposite signs; ``low``/``high``: [..., sizes]."""
    low, high = np.asarray(low, float), np.asarray(high, float)
    first_below, first_above = high[..., 0] < 0, low[..., 0] > 0
    last_below, last_above = high[..., -1] < 0, low[..., -1] > 0
    return (first_below & last_above) | (first_above & last_below)


def locate_sign_change(sizes, mean) -> float | None:
    """The size where the mean paired difference first changes sign, log-linear between measured sizes."""
    sizes, mean = np.asarray(sizes, float), np.asarray(mean, float)
    change = np.nonzero(np.sign(mean[1:]) * np.sign(mean[:-1]) < 0)[0]
    if not len(change):
        return None
    i = change[0]
    t = mean[i] / (mean[i] - mean[i + 1])
    return float(10 ** (math.log10(sizes[i]) + t * (math.log10(sizes[i + 1]) - math.log10(sizes[i]))))


def fit_bootstrap(sizes, losses_by_seed, fit: dict, iters: int = BOOTSTRAP, seed: int = 0) -> list[dict]:
    """Refits on the fitted curve plus noise (the larger of the residual variance with n - 3 degrees of
    freedom and the seed variance of the per-size mean), seeds resampled first when there are >= 3."""
    rng = np.random.default_rng(seed)
    sizes, losses = np.asarray(sizes, float), np.asarray(losses_by_seed, float)
    centre = power_law(sizes, fit["E"], fit["A"], fit["alpha"])
    mean = np.nanmean(losses, axis=0)
    dof = max(len(sizes) - 3, 1)
    residual_var = float(((mean - centre) ** 2).sum()) / dof
    n_seeds = losses.shape[0]
    seed_var = float(np.nanmean(np.nanvar(losses, axis=0, ddof=1)) / n_seeds) if n_seeds > 1 else 0.0
    sigma = math.sqrt(max(residual_var, seed_var))
    fits = []
    for _ in range(iters):
        base = centre
        if n_seeds >= 3:
            pick = rng.integers(0, n_seeds, n_seeds)
            base = centre + (np.nanmean(losses[pick], axis=0) - mean)
        try:
            fits.append(fit_power_law(sizes, base + rng.normal(0.0, sigma, len(sizes)), fit))
        except ValueError:
            continue
    return fits


def _select(rows, x: str, select: str):
    """Per size: the grid point with the lowest mean ``select`` loss (validation); its mean test loss."""
    agg = {"loss": ("test_loss", "mean"), "x": (x, "mean")}
    if select in rows and rows[select].notna().any():
        agg["select"] = (select, "mean")
    per = rows.groupby(["size_key", "point"], sort=False).agg(**agg).reset_index()
    if "select" in per:
        index = per.groupby("size_key")["select"].idxmin()
    else:  # no validation loss recorded: only unambiguous sizes (one point each) can be used
        index = per.groupby("size_key").head(1).index
    return per.loc[index].sort_values("x")


def scaling_fits(runs: list[dict], x: str = "params", *, max_params: float, select: str = "val_loss") -> dict:
    """Fit every architecture's runs and compare each pair per size. ``runs``: dicts with arch, seed,
    point, size_key, params (non-embedding), flops, val_loss and test_loss; ``x`` = "params" or "flops".
    Returns {"fits": {arch: {...}}, "crossovers": [{a, b, sizes, paired: [...], supported, crossover,
    fit_crossover, fit_crossover_extrapolated, range}]}."""
    import pandas as pd

    frame = pd.DataFrame(runs)
    out = {"x": x, "fits": {}, "crossovers": [], "min_sizes_for_exponent": MIN_SIZES_FOR_EXPONENT}
    if frame.empty:
        return out
    tables = {}
    for arch, rows in frame.groupby("arch", sort=False):
        best = _select(rows, x, select)
        entry = {
            "sizes": best["x"].tolist(),
            "size_keys": best["size_key"].tolist(),
            "loss": best["loss"].tolist(),
            "points": best["point"].tolist(),
            "n_seeds": int(rows["seed"].nunique()),
            "selected_on": select,
        }
        chosen = rows[rows["point"].isin(best["point"]) & rows["size_key"].isin(best["size_key"])]
        table = chosen.pivot_table(index="seed", columns="size_key", values="test_loss", aggfunc="mean")
        tables[arch] = table[best["size_key"].tolist()]
        if len(best) < 3:
            entry["error"] = f"{len(best)} size(s); a fit needs >= 3"
            out["fits"][arch] = entry
            continue
        entry.update(fit_power_law(best["x"], best["loss"]))
        entry["descriptive"] = len(best) < MIN_SIZES_FOR_EXPONENT
        if entry["n_seeds"] >= MIN_SEEDS:
            boots = fit_bootstrap(best["x"].to_numpy(), tables[arch].to_numpy(), entry)
            entry["interval"] = {k: interval([f[k] for f in boots]) for k in ("E", "A", "alpha")}
            entry["interval_method"] = (
                f"parametric bootstrap with fit uncertainty ({len(boots)} refits, seeds resampled, 95% percentile)"
            )
        else:
            entry["interval"] = {}
            entry["interval_method"] = f"none: {entry['n_seeds']} seed(s), needs >= {MIN_SEEDS}"
        # the held-out check on the parameter axis only (the row cited as "scaling prediction"; a second
        # bootstrap per axis would double the report's fitting time)
        if x == "params":
            entry["heldout"] = heldout(best["x"].to_numpy(), best["loss"].to_numpy(), tables[arch].to_numpy())
        out["fits"][arch] = entry
    archs = list(out["fits"])
    for i, a in enumerate(archs):
        for b in archs[i + 1 :]:
            out["crossovers"].append(_pair(out["fits"][a], out["fits"][b], tables[a], tables[b], a, b, x, max_params))
    return out


def heldout(sizes, loss, losses_by_seed) -> dict | None:
    """Fit on every size but the largest, predict the largest: {size, predicted, predicted_interval,
    measured, measured_interval, n_seeds} (intervals only from >= 3 seeds); None below 4 sizes."""
    from archbench.report.compare import mean_ci

    if len(sizes) < 4:
        return None
    try:
        fit = fit_power_law(sizes[:-1], loss[:-1])
    except ValueError:
        return None
    n_seeds = int(np.isfinite(losses_by_seed[:, -1]).sum())
    predicted = float(power_law(sizes[-1], fit["E"], fit["A"], fit["alpha"]))
    band = None
    if losses_by_seed.shape[0] >= MIN_SEEDS:
        boots = fit_bootstrap(sizes[:-1], losses_by_seed[:, :-1], fit)
        band = interval([float(power_law(sizes[-1], f["E"], f["A"], f["alpha"])) for f in boots])
    measured = mean_ci(losses_by_seed[:, -1])
    return {
        "size": float(sizes[-1]),
        "predicted": predicted,
        "predicted_interval": band,
        "measured": float(loss[-1]),
        "measured_interval": None if math.isnan(measured["ci_low"]) else [measured["ci_low"], measured["ci_high"]],
        "n_seeds": n_seeds,
    }


def _pair(fa: dict, fb: dict, ta, tb, a: str, b: str, x: str, max_params: float) -> dict:
    """Paired a - b per size, joined by size key (seeds both ran), the sizes only one of them measured,
    and what the differences support."""
    keys = [k for k in fa["size_keys"] if k in fb["size_keys"]]
    dropped = {a: [k for k in fa["size_keys"] if k not in keys], b: [k for k in fb["size_keys"] if k not in keys]}
    xa, xb = dict(zip(fa["size_keys"], fa["sizes"])), dict(zip(fb["size_keys"], fb["sizes"]))
    sizes = [math.sqrt(xa[s] * xb[s]) for s in keys]  # matched sizes: ~equal
    k = len(keys)
    seeds = ta.index.intersection(tb.index)
    diffs = ta.loc[seeds, keys].to_numpy() - tb.loc[seeds, keys].to_numpy()
    ok = ~np.isnan(diffs).any(axis=1)
    iv = paired_intervals(diffs[ok]) if k else {"n": 0, "mean": [], "low": [], "high": []}
    row = {
        "a": a,
        "b": b,
        "x": x,
        "sizes": sizes,
        "size_keys": keys,
        "dropped": {arch: [(xa if arch == a else xb)[s] for s in v] for arch, v in dropped.items() if v},
        "dropped_keys": {arch: v for arch, v in dropped.items() if v},
        "n_seeds": int(iv["n"]),
        "paired": [
            {
                "size": s,
                "mean": float(m),
                "low": None if np.isnan(lo) else float(lo),
                "high": None if np.isnan(hi) else float(hi),
            }
            for s, m, lo, hi in zip(sizes, iv["mean"], iv["low"], iv["high"])
        ],
        "supported": bool(k >= 2 and iv["n"] >= 3 and crossover_supported(iv["low"], iv["high"])),
        "crossover": None,
        "fit_crossover": None,
        "fit_crossover_extrapolated": None,
        "range": [min(sizes), max(sizes)] if sizes else None,
    }
    if row["supported"]:
        row["crossover"] = locate_sign_change(sizes, iv["mean"])
    enough = min(fa["n_seeds"], fb["n_seeds"]) >= MIN_SEEDS  # below: a fitted crossing is noise (88% of nulls)
    if "alpha" in fa and "alpha" in fb and sizes and enough:
        top = max(sizes) * 10**EXTRAPOLATE_DECADES
        top = min(top, max_params) if x == "params" else top
        point = crossover(fa, fb, min(sizes), max(top, max(sizes)))
        row["fit_crossover"] = point
        row["fit_crossover_extrapolated"] = None if point is None else point > max(sizes)
    return row
