"""Scaling fits: known (E, A, alpha) are recovered from synthetic points; crossovers; FLOPs formulas;
token budgets proportional to parameters."""

import numpy as np
import pytest

from archbench.report.scaling import budget_steps, crossover, fit_power_law, flops_per_token, power_law, scaling_fits

SIZES = np.array([2e5, 4e5, 9e5, 1.6e6, 3e6])


@pytest.mark.parametrize("e,a,alpha", [(1.8, 40.0, 0.3), (2.5, 300.0, 0.5), (0.5, 12.0, 0.15)])
def test_fit_recovers_known_parameters_within_5_percent(e, a, alpha):
    noise = 1e-4 * np.array([1, -1, 0.5, -0.5, 0.2])  # deterministic, far below the curve's range
    fit = fit_power_law(SIZES, power_law(SIZES, e, a, alpha) + noise)
    assert fit["E"] == pytest.approx(e, rel=0.05)
    assert fit["A"] == pytest.approx(a, rel=0.05)
    assert fit["alpha"] == pytest.approx(alpha, rel=0.05)


def test_fit_needs_three_sizes():
    with pytest.raises(ValueError, match="needs >= 3 distinct sizes, got 2"):
        fit_power_law([1e5, 1e5, 2e5], [3.0, 3.0, 2.9])


def test_crossover_is_where_the_curves_meet_or_none():
    a = {"E": 2.0, "A": 10.0, "alpha": 0.2}
    b = {"E": 1.5, "A": 30.0, "alpha": 0.2}  # b above a while 20 N^-0.2 > 0.5, i.e. N < 40^5 ≈ 1.02e8
    n = crossover(a, b, 1e5, 1e12)
    assert n == pytest.approx(40.0**5, rel=0.01)
    assert crossover(a, b, 1e5, 1e7) is None


def _runs(truth, seeds, rng):
    runs = []
    for arch, (e, a, alpha) in truth.items():
        for n in SIZES:
            for s in seeds:
                runs.append(
                    {
                        "arch": arch,
                        "seed": s,
                        "point": f"d{n}",
                        "size_key": n,
                        "params": n,
                        "flops": 6 * n * 2 * n,
                        "test_loss": power_law(n, e, a, alpha) + rng.normal(0, 0.003),
                    }
                )
    return runs


def test_report_fits_each_arch_with_bootstrap_intervals_and_a_crossover():
    truth = {"retnet": (1.5, 60.0, 0.3), "transformer": (2.0, 30.0, 0.3)}
    out = scaling_fits(_runs(truth, [0, 1, 2], np.random.default_rng(0)), x="params")
    for arch, (_e, _a, alpha) in truth.items():
        fit = out["fits"][arch]
        assert fit["n_seeds"] == 3 and fit["alpha"] == pytest.approx(alpha, rel=0.15)
        lo, hi = fit["interval"]["alpha"]
        assert lo < fit["alpha"] < hi and "bootstrap over seeds" in fit["interval_method"]
    (row,) = out["crossovers"]
    # 60 N^-0.3 - 30 N^-0.3 = 0.5  ->  N = 60^(1/0.3)
    assert row["crossover"] == pytest.approx(60 ** (1 / 0.3), rel=0.5)
    assert row["interval"][0] <= row["crossover"] <= row["interval"][1]


def test_one_seed_fits_without_interval_and_too_few_sizes_say_so():
    rng = np.random.default_rng(1)
    runs = [r for r in _runs({"retnet": (1.5, 60.0, 0.3)}, [0], rng)]
    out = scaling_fits(
        runs
        + [
            {
                "arch": "transformer",
                "seed": 0,
                "point": "p",
                "size_key": 1e5,
                "params": 1e5,
                "flops": 1e12,
                "test_loss": 3.0,
            }
        ]
    )
    assert "interval" not in out["fits"]["retnet"] and out["fits"]["retnet"]["alpha"] > 0
    assert out["fits"]["transformer"]["error"] == "1 size(s); a fit needs >= 3"
    assert out["crossovers"] == []


def test_flops_per_token_formulas():
    hp = {
        "layers": 2,
        "embed_dim": 64,
        "seq_len": 127,
        "value_embed_dim": None,
        "segment_lengths": [32, 64],
        "dilated_ratios": [1, 2],
    }
    n = 1000
    assert flops_per_token("transformer", n, hp) == 6 * n + 6 * 2 * 64 * 2 * 64
    assert flops_per_token("retnet", n, hp) == 6 * n + 6 * 2 * 64 * (64 + 128)
    assert flops_per_token("longnet", n, hp) == pytest.approx(6 * n + 6 * 2 * (16.5 * 128 + 32.5 * 128 / 2))


def test_token_budget_is_proportional_to_parameters():
    s = {"tokens_per_param": 4, "batch_size": 8, "accumulate_grad_batches": 2, "seq_len": 64}
    assert budget_steps(s, 1_000_000) == 3907  # ceil(4e6 / 1024)
    assert budget_steps({**s, "tokens_per_param": None}, 1_000_000) is None
