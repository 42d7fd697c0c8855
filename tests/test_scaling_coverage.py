"""Coverage of the scaling question's intervals at >= 3 seeds, simulated through the report's own
functions (issue 29, point 5): identical true curves L(N) = E + A N^-alpha at the scaling preset's five
sizes with 3 seeds of 0.01-nat noise; how often the printed 95% exponent interval holds the true alpha
and the held-out prediction's interval holds the largest size's true loss. Below 3 seeds the report
prints no interval at all (a 1-seed bootstrap covered alpha in 76% of trials; tests/test_report_scaling.py).

Slow tier: two 300-refit bootstraps per trial (~1.5-2 s a trial on one idle core; 16 min at load 9).
Measured (rng seed 1): alpha covered in 95.0% of trials, the held-out loss in 98.3%."""

import numpy as np
import pytest

from archbench.report.scaling import MIN_SEEDS, fit_bootstrap, fit_power_law, heldout, interval, power_law

pytestmark = pytest.mark.slow

SIZES = np.array([0.15e6, 0.21e6, 0.37e6, 0.56e6, 1.03e6])  # config/presets/scaling.yaml (non-embedding)
E, ALPHA = 3.0, 0.3
A = 2.0 / SIZES[0] ** -ALPHA  # 2 nats above E at the smallest size, ~1.7 nats of range as the preset
TRIALS = 60
NOISE = 0.01


def test_exponent_and_held_out_intervals_cover_at_three_seeds():
    rng = np.random.default_rng(1)
    true_largest = power_law(SIZES[-1], E, A, ALPHA)
    alpha_hits = held_hits = held_n = 0
    for trial in range(TRIALS):
        losses = power_law(SIZES, E, A, ALPHA) + rng.normal(0, NOISE, (MIN_SEEDS, len(SIZES)))
        fit = fit_power_law(SIZES, losses.mean(0))
        lo, hi = interval([f["alpha"] for f in fit_bootstrap(SIZES, losses, fit, seed=trial)])
        alpha_hits += lo <= ALPHA <= hi
        h = heldout(SIZES, losses.mean(0), losses)
        if h["predicted_interval"]:
            held_n += 1
            held_hits += h["predicted_interval"][0] <= true_largest <= h["predicted_interval"][1]
    alpha_rate, held_rate = alpha_hits / TRIALS, held_hits / held_n
    print(
        f"\n{MIN_SEEDS} seeds, {TRIALS} identical-curve trials: exponent interval covers alpha in "
        f"{alpha_rate:.1%}, held-out prediction interval covers the largest size's loss in {held_rate:.1%}"
    )
    assert held_n == TRIALS  # >= 3 seeds: every trial gets a held-out interval
    # the bar is >= 90% coverage; 60 trials resolve it to about +-4 points (binomial SE at 0.9)
    assert alpha_rate >= 0.85
    assert held_rate >= 0.85
