"""Error rates of the report's verdict, simulated through its own code (archbench.report.compare.
verdict_arrays, the function compare() and the summary call): identical architectures on the paper
grid must give a corrected "decisive" claim in <= 5% of reports; a true 0.05-nat difference at 3 seeds
must be found in >= 80%. Vectorised over simulated reports; the rates are printed (pytest -s)."""

import time

import numpy as np
import pandas as pd
import pytest

from archbench.report.compare import all_pairs, compare, verdict_arrays, verdict_table

ARCHS = ["retnet", "transformer", "llama"]
POINTS, SEEDS, SIGMA = 72, 3, 0.01  # the paper grid per architecture, 3 seeds, 0.01 nats of seed noise
PAIRS = [(0, 1), (0, 2), (1, 2)]


def simulate(trials: int, gaps=(0.0, 0.0, 0.0), seeds: int = SEEDS, rng_seed: int = 0, points: int = POINTS):
    """test / val losses [trials, A, P, S]: a shared grid surface (learning rate x width: some points
    are far from the best), per-arch offsets ``gaps``, a per-seed loader effect shared by the
    architectures, independent run noise SIGMA; validation = test + correlated noise."""
    rng = np.random.default_rng(rng_seed)
    surface = 3.0 + 0.3 * np.abs(np.linspace(-1, 1, points)) + 0.05 * rng.standard_normal(points)
    gaps = np.asarray(gaps)[:, None, None]
    shared = 0.02 * rng.standard_normal((trials, 1, 1, seeds))  # same batch order for every arch
    noise = SIGMA * rng.standard_normal((trials, len(gaps), points, seeds))
    test = surface[None, None, :, None] + gaps + shared + noise
    val = test + 0.005 * rng.standard_normal(test.shape)
    return test, val


def claims(v) -> np.ndarray:
    """Per report: does it print "decisive" anywhere (a best-vs-best pair or a grid point's winner)?"""
    return v["head_decisive"].any(-1) | v["point_decisive"].any(-1)


def test_identical_architectures_rarely_give_a_decisive_claim_and_a_real_difference_is_found():
    start = time.perf_counter()
    trials = 1000
    null = verdict_arrays(*simulate(trials), PAIRS)
    false_rate = float(claims(null).mean())
    # stricter: any single comparison of the family significant after Holm (a claim needs more)
    any_rejection = float(((null["point_adj"] < 0.05).any((-1, -2)) | (null["head_adj"] < 0.05).any(-1)).mean())
    found = verdict_arrays(*simulate(trials, gaps=(-0.05, 0.0, 0.0), rng_seed=1), PAIRS)
    # found: both best-vs-best pairs of the better architecture are decisive, its way
    hit = found["head_decisive"][:, :2].all(-1) & (found["head_mean"][:, :2] < 0).all(-1)
    power = float(hit.mean())
    wrong = float((found["head_decisive"][:, 2]).mean())  # the two identical ones
    # without the correction (per-comparison 5%), the same null reports claim much more often
    uncorrected = float(((null["point_p"] < 0.05).any((-1, -2)) | (null["head_p"] < 0.05).any(-1)).mean())
    elapsed = time.perf_counter() - start
    print(
        f"\npaper grid ({POINTS} points x {len(ARCHS)} archs, {SEEDS} seeds, sigma {SIGMA}), {trials} reports each: "
        f"family of {int(null['m'][0])} comparisons (Holm); decisive claim with identical architectures "
        f"{false_rate:.1%} (any comparison significant after Holm: {any_rejection:.1%}; some comparison at "
        f"uncorrected p < 0.05: {uncorrected:.1%}); true 0.05-nat difference found {power:.1%}; "
        f"decisive between the two identical ones {wrong:.1%}; {elapsed:.1f} s"
    )
    assert int(null["m"][0]) == 3 * POINTS + 3
    assert false_rate <= any_rejection and false_rate <= 0.05
    assert power >= 0.80
    assert wrong <= 0.05
    assert uncorrected > 0.5  # the correction is what keeps the null rate down
    assert elapsed < 10


def test_the_scaling_ladder_grid_rarely_gives_a_decisive_claim():
    """The scaling preset's grid (5 sizes x 2 architectures, with three-seeds.yaml): ~23% of reports had a
    decisive win without correction."""
    v = verdict_arrays(*simulate(4000, gaps=(0.0, 0.0), points=5, rng_seed=4), [(0, 1)])
    rate = float(claims(v).mean())
    print(f"\nscaling ladder (5 sizes x 2 archs, 3 seeds): decisive claim with identical architectures {rate:.1%}")
    assert rate <= 0.05


def test_at_two_seeds_nothing_is_decisive():
    v = verdict_arrays(*simulate(50, gaps=(-0.5, 0.0, 0.0), seeds=2), PAIRS)
    assert not claims(v).any() and np.isnan(v["head_low"]).all() and (v["m"] == 0).all()


def test_the_table_functions_give_the_arrays_verdict():
    """compare() / verdict_table() on a grid_results-shaped table equal verdict_arrays on its cube."""
    test, val = simulate(1, gaps=(-0.05, 0.0, 0.01), rng_seed=3)
    rows = [
        {
            "arch": a,
            "point": f"p{p:02d}",
            "seed": s,
            "status": "ok",
            "learning_rate": p,
            "test_loss": test[0, i, p, s],
            "val_loss": val[0, i, p, s],
            "params_total": 1.0,
            "params_non_embedding": 1.0,
            "train_flops_per_token": 1.0 + i,
        }
        for i, a in enumerate(ARCHS)
        for p in range(POINTS)
        for s in range(SEEDS)
    ]
    grid = pd.DataFrame(rows)
    table = verdict_table(grid, baseline="retnet")
    pairs = all_pairs(table["archs"], "retnet")
    idx = [(table["archs"].index(a), table["archs"].index(b)) for a, b in pairs]
    order = [ARCHS.index(a) for a in table["archs"]]
    direct = verdict_arrays(test[0][order], val[0][order], idx)
    assert [h["mean"] for h in table["headline"]] == pytest.approx(list(direct["head_mean"]))
    assert [h["p_holm"] for h in table["headline"]] == pytest.approx(list(direct["head_adj"]))
    comparison = compare(grid, ["learning_rate"], baseline="retnet")
    assert list(comparison["point"]) == [f"p{p:02d}" for p in range(POINTS)]  # grid order
    assert list(comparison["decisive"] == True) == list(direct["point_decisive"])  # noqa: E712
