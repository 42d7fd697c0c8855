"""archbench.report on hand-made results trees: collection (missing runs/files), seed aggregation with
t-intervals, paired comparison and winners, plots, summary."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from archbench.evaluation.columns import harness_columns
from archbench.report.collect import collect, run_record
from archbench.report.compare import compare, mean_ci, seed_summary, verdict_table, write_tables
from archbench.report.plots import plot_all, plot_latency, slug
from archbench.report.summary import write_summary
from test_report_helpers import GRID, make_tree, point_path, points, provenance_block

# test loss per (arch, grid point index, seed): at point 0 retnet wins decisively over 3 seeds, at point 1
# transformer has the lower mean but the seeds disagree (not decisive); longnet has 2 seeds at point 1.
LOSSES = {
    ("retnet", 0, 0): 4.00,
    ("retnet", 0, 1): 4.10,
    ("retnet", 0, 2): 4.05,
    ("transformer", 0, 0): 4.20,
    ("transformer", 0, 1): 4.25,
    ("transformer", 0, 2): 4.30,
    ("longnet", 0, 0): 4.15,
    ("longnet", 0, 1): 4.26,
    ("longnet", 0, 2): 4.20,
    ("retnet", 1, 0): 3.90,
    ("retnet", 1, 1): 3.70,
    ("retnet", 1, 2): 3.95,
    ("transformer", 1, 0): 3.80,
    ("transformer", 1, 1): 3.85,
    ("transformer", 1, 2): 3.75,
    ("longnet", 1, 0): 3.95,
    ("longnet", 1, 1): 4.00,
    ("longnet", 1, 2): 9.99,
}
MISSING = {("longnet", 1, 2)}


def t_interval(values):
    """Independent reference: scipy's own t.interval around the sample mean."""
    x = np.asarray(values, dtype=float)
    return stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=x.std(ddof=1) / math.sqrt(len(x)))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    runs = make_tree(root, LOSSES, skip=MISSING)
    grid = collect(runs)
    return root, runs, grid


AXES = list(GRID)
BASELINE = "retnet"  # the architecture the others are compared against (report.baseline)


def test_run_identity_comes_from_metrics_json_not_folder_names(tmp_path):
    """Grid values with `_` (and folders that say something else) cannot confuse the report."""
    grid = {**GRID, "precision": ["bf16_mixed_x", "32_true"]}
    losses = {(a, p, 0): 4.0 + p + (a == "transformer") for a in ("retnet", "transformer") for p in range(4)}
    runs = make_tree(tmp_path / "r", losses, grid=grid, eval_files=False)
    for run in runs:  # the folder's name no longer says which run it is
        run["point"] = "p" + str(abs(hash(tuple(run["values"].items()))))
    table = collect(runs)
    assert sorted(set(table["precision"])) == ["32_true", "bf16_mixed_x"]
    assert table.groupby("precision")["learning_rate"].apply(sorted).to_dict() == {
        "32_true": [0.0005, 0.0005, 0.001, 0.001],
        "bf16_mixed_x": [0.0005, 0.0005, 0.001, 0.001],
    }
    # a missing run keeps the record's values
    missing = make_tree(tmp_path / "m", {("retnet", 3, 1): 1.0}, grid=grid, skip={("retnet", 3, 1)})
    row = collect(missing).iloc[0]
    assert (row["arch"], row["seed"], row["precision"], row["status"]) == ("retnet", 1, "32_true", "missing")
    # the whole report from such runs: tables, plots, summary
    out = tmp_path / "report"
    csv = {k: str(out / f"{k}.csv") for k in ("grid", "comparison", "seeds")}
    axes = list(grid)
    comparison = write_tables(runs, csv["grid"], csv["comparison"], csv["seeds"], BASELINE)
    assert len(comparison) == 4 and set(comparison["winner"]) == {"retnet"}
    assert set(comparison["precision"]) == {"32_true", "bf16_mixed_x"}
    assert comparison["diff_retnet_minus_transformer"].tolist() == pytest.approx([-1.0] * 4)
    plot_all(
        csv["grid"], csv["seeds"], csv["comparison"], str(out / "plots"), str(out / "plots" / "curves"), axes, BASELINE
    )
    assert len(list((out / "plots" / "curves").glob("*.png"))) == 4
    text = write_summary(csv["grid"], csv["seeds"], csv["comparison"], [], str(out / "summary.md"), axes, BASELINE)
    assert "| bf16_mixed_x " in text and "- RetNet has the lowest mean test loss at 4 of 4 grid points" in text


def test_records_of_the_snakefile_match_the_run_layout():
    record = run_record("retnet", 2, "learning_rate~0.001", {"learning_rate": 0.001}, metrics="r/m.json")
    assert record == {
        "arch": "retnet",
        "seed": 2,
        "point": "learning_rate~0.001",
        "values": {"learning_rate": 0.001},
        "files": {"metrics": "r/m.json"},
    }


def test_collect_marks_missing_runs_and_flattens_eval_files(tree):
    _, paths, grid = tree
    assert len(grid) == len(LOSSES)
    missing = grid[grid["status"] == "missing"]
    assert list(zip(missing["arch"], missing["seed"])) == [("longnet", 2)]
    assert missing["learning_rate"].item() == 0.0005 and missing["latency_status"].item() == "missing"
    assert math.isnan(missing["test_loss"].item())
    ok = grid[grid["status"] == "ok"].set_index(["arch", "point", "seed"])
    row = ok.loc[("transformer", point_path(points()[0]), 1)]
    assert row["test_loss"] == 4.25 and row["params_total"] == 100_000 and row["ffn_dim_model"] == 72
    assert row["harness/lambada_local/acc"] == 0.25 and row["harness/lambada_local/perplexity"] == 120.5
    assert "harness/lambada_local/word_perplexity" not in grid  # null: not a number
    # latency: the smallest batch size only, one column per mode, metric and context; skipped entries dropped
    assert row["latency/kv_cache/decode_ms_median@1024"] == pytest.approx(2.0 + 10.24)
    assert row["latency/kv_cache/state_bytes@64"] == 64 * 64
    assert row["latency/recompute/decode_ms_median@256"] == 5.0 * 256
    assert "latency/kv_cache/decode_ms_median@4096" not in grid
    assert ok.loc[("retnet", point_path(points()[0]), 0), "latency/recurrent/state_bytes@1024"] == 4096
    assert list(grid.columns[:3]) == ["arch", "point", "seed"]


def test_harness_metric_names_drop_the_default_filter():
    from archbench.evaluation.harness import flatten_results

    raw = {"arc": {"acc,none": 0.5, "acc_norm,strict": 0.4, "alias": "arc"}}
    written = {"results": flatten_results(raw)}  # harness.json drops ",none" once; the report keeps the rest
    assert harness_columns(written) == {"harness/arc/acc": 0.5, "harness/arc/acc_norm:strict": 0.4}


def test_mean_ci_matches_the_t_distribution():
    values = [4.0, 4.1, 4.05, 4.3]
    got = mean_ci(values)
    low, high = t_interval(values)
    assert got["n"] == 4 and got["mean"] == pytest.approx(np.mean(values))
    assert got["std"] == pytest.approx(np.std(values, ddof=1))
    assert (got["ci_low"], got["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    two = mean_ci([1.0, 2.0])  # below 3 seeds: mean and std, no interval
    assert two["mean"] == 1.5 and two["std"] == pytest.approx(math.sqrt(0.5)) and math.isnan(two["ci_low"])


def test_seed_summary_aggregates_only_completed_runs(tree):
    _, _, grid = tree
    summary = seed_summary(grid, AXES).set_index(["arch", "point"])
    p0, p1 = (point_path(p) for p in points())
    retnet = summary.loc[("retnet", p0)]
    low, high = t_interval([4.00, 4.10, 4.05])
    assert retnet["n_seeds"] == 3 and retnet["test_loss_mean"] == pytest.approx(4.05)
    assert retnet["test_loss_ci_low"] == pytest.approx(low) and retnet["test_loss_ci_high"] == pytest.approx(high)
    assert retnet["emissions_kg_mean"] == pytest.approx(2e-6)  # (1 + 2 + 3) e-6 / 3
    longnet = summary.loc[("longnet", p1)]  # seed 2 is missing: its 9.99 must not count
    assert longnet["n_seeds"] == 2 and longnet["test_loss_mean"] == pytest.approx(3.975)
    assert math.isnan(longnet["test_loss_ci_low"])
    assert summary.loc[("transformer", p1), "harness/lambada_local/acc_mean"] == 0.25


def pooled_interval(groups, n):
    """Independent reference: the paired differences' variance pooled over the groups (points), the
    t-interval of a mean of n of them, and its two-sided p."""
    ss = sum(((np.asarray(g) - np.mean(g)) ** 2).sum() for g in groups)
    df = sum(len(g) - 1 for g in groups)
    se = math.sqrt(ss / df / n)
    return se, df


def test_comparison_paired_differences_winners_and_param_ratios(tree):
    _, _, grid = tree
    table = compare(grid, AXES, BASELINE).set_index("point")
    p0, p1 = (point_path(p) for p in points())
    assert list(table.index) == [p0, p1]  # grid order, not sorted by loss
    row = table.loc[p0]
    d0 = np.array([4.00, 4.10, 4.05]) - np.array([4.20, 4.25, 4.30])
    d1 = np.array([3.90, 3.70, 3.95]) - np.array([3.80, 3.85, 3.75])
    se, df = pooled_interval([d0, d1], 3)  # seed noise of retnet - transformer pooled over both points
    half = stats.t.ppf(0.975, df) * se
    assert row["test_loss_retnet"] == pytest.approx(4.05) and row["test_loss_transformer"] == pytest.approx(4.25)
    assert row["diff_retnet_minus_transformer"] == pytest.approx(-0.2)
    assert row["diff_retnet_minus_transformer_std"] == pytest.approx(d0.std(ddof=1))  # this point's own seeds
    assert row["diff_retnet_minus_transformer_ci_low"] == pytest.approx(-0.2 - half)
    assert row["diff_retnet_minus_transformer_ci_high"] == pytest.approx(-0.2 + half)
    assert row["param_ratio_retnet_transformer"] == pytest.approx(1.2)
    assert row["param_ratio_non_embedding_retnet_transformer"] == pytest.approx(104_000 / 84_000)
    assert row["flops_ratio_retnet_transformer"] == pytest.approx(104_000 / 84_000)
    assert row["winner"] == "retnet" and row["margin"] == pytest.approx((4.15 + 4.26 + 4.20) / 3 - 4.05)
    # point 1's large seed noise, pooled, widens point 0's interval: raw p = 0.059, so not decisive
    p_raw = 2 * stats.t.sf(0.2 / se, df)
    assert p_raw == pytest.approx(0.0589, abs=1e-3) and row["decisive"] == False  # noqa: E712 (numpy bool)
    assert row["diff_retnet_minus_transformer_p_holm"] >= p_raw
    other = table.loc[p1]
    assert other["winner"] == "transformer" and other["test_loss_transformer"] == pytest.approx(3.8)
    # transformer's pair with longnet has 2 seeds (no interval): undecided
    assert other["decisive"] is None or math.isnan(other["decisive"])
    # every architecture against the baseline (retnet) only; longnet's missing seed 2 is left out of the pairs
    assert other["diff_retnet_minus_longnet_n"] == 2 and math.isnan(other["diff_retnet_minus_longnet_ci_low"])
    assert other["diff_retnet_minus_longnet"] == pytest.approx((3.90 - 3.95 + 3.70 - 4.00) / 2)
    assert "diff_longnet_minus_transformer" not in other


def test_a_consistent_difference_is_decisive_after_correction_and_headline_is_best_vs_best(tmp_path):
    """Per point, retnet is 0.1 lower than transformer at every seed (± 0.01); the best-vs-best
    difference is between each one's validation-selected point, not the mean over points."""
    noise = {0: 0.0, 1: 0.01, 2: -0.01}
    losses = {}
    for s, e in noise.items():
        losses[("retnet", 0, s)] = 3.0 + e  # retnet's selected point (lowest validation loss)
        losses[("retnet", 1, s)] = 4.0 + e  # a bad learning rate
        losses[("transformer", 0, s)] = 3.1 + e / 2
        losses[("transformer", 1, s)] = 3.05 + e / 2  # transformer's selected point
    grid = collect(make_tree(tmp_path, losses, eval_files=False))
    table = compare(grid, AXES, BASELINE)
    assert list(table["decisive"]) == [True, True]
    v = verdict_table(grid, BASELINE)
    (h,) = v["headline"]
    assert (h["a"], h["b"]) == ("retnet", "transformer")
    assert (h["point_a"], h["point_b"]) == (point_path(points()[0]), point_path(points()[1]))
    assert h["mean"] == pytest.approx(3.0 - 3.05) and h["n"] == 3 and h["decisive"] is True
    d = [np.array([noise[s] - noise[s] / 2 for s in range(3)]) + c for c in (-0.1, 0.95)]
    se, df = pooled_interval(d, 3)
    assert h["pooled_df"] == df == 4
    assert (h["low"], h["high"]) == pytest.approx(
        (-0.05 - stats.t.ppf(0.975, 4) * se, -0.05 + stats.t.ppf(0.975, 4) * se)
    )
    # 3 comparisons; the headline's p is the largest of them: Holm's last step keeps it (x 1)
    assert (
        v["m"] == 3
        and h["p_holm"] == pytest.approx(h["p"])
        and h["p"] > table["diff_retnet_minus_transformer_p_holm"].max() / 3
    )


def test_undecided_when_fewer_than_three_seeds(tmp_path):
    losses = {(a, 0, s): v + s for a, v in (("retnet", 1.0), ("transformer", 2.0)) for s in (0, 1)}
    grid = collect(make_tree(tmp_path, losses, eval_files=False))
    row = compare(grid, AXES, BASELINE).iloc[0]
    assert row["winner"] == "retnet" and row["decisive"] is None and row["diff_retnet_minus_transformer"] == -1.0
    assert "longnet" not in " ".join(compare(grid, AXES, BASELINE).columns)
    # another baseline: the differences are taken against it
    flipped = compare(grid, AXES, "transformer").iloc[0]
    assert flipped["diff_transformer_minus_retnet"] == 1.0 and "diff_retnet_minus_transformer" not in flipped


@pytest.fixture(scope="module")
def written(tree, tmp_path_factory):
    root, runs, _ = tree
    out = tmp_path_factory.mktemp("report")
    csv = {k: str(out / f"{k}.csv") for k in ("grid", "comparison", "seeds")}
    write_tables(runs, csv["grid"], csv["comparison"], csv["seeds"], BASELINE)
    plot_all(
        csv["grid"], csv["seeds"], csv["comparison"], str(out / "plots"), str(out / "plots" / "curves"), AXES, BASELINE
    )
    plot_latency(runs, str(out / "plots"), csv["seeds"])
    return out, csv, runs


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, path


def test_plots_are_valid_png_and_svg(written):
    out, _, _ = written
    for name in ("loss_vs_params", "diff_heatmap", "throughput", "emissions", "decode_latency", "state_memory"):
        assert_png(out / "plots" / f"{name}.png")
        assert "<svg" in (out / "plots" / f"{name}.svg").read_text()[:500]
    curves = sorted(p.name for p in (out / "plots" / "curves").glob("*.png"))
    assert curves == sorted(f"{slug(point_path(p))}.png" for p in points())
    for name in curves:
        assert_png(out / "plots" / "curves" / name)


def test_latency_plot_without_measurements_still_writes_a_figure(tmp_path):
    plot_latency(
        [run_record("retnet", 0, "lr~1", {"lr": 1}, latency=str(tmp_path / "nowhere/latency.json"))], str(tmp_path)
    )
    assert_png(tmp_path / "decode_latency.png")


def test_grid_results_csv_round_trips_the_table(written):
    _, csv, _ = written
    grid = pd.read_csv(csv["grid"])
    assert len(grid) == 18 and (grid["status"] == "missing").sum() == 1
    comparison = pd.read_csv(csv["comparison"])
    assert list(comparison["winner"]) == ["retnet", "transformer"]


def test_summary_states_the_verdict_and_links_the_plots(written):
    out, csv, _ = written
    text = write_summary(
        csv["grid"],
        csv["seeds"],
        csv["comparison"],
        [str(out / "plots" / "curves"), str(out / "plots" / "loss_vs_params.png")],
        str(out / "summary.md"),
        AXES,
        BASELINE,
    )
    assert text == (out / "summary.md").read_text()
    assert "Every best grid point is selected on validation loss; test loss reported." in text
    assert "## Best grid point per architecture (selected on validation loss; test loss reported)" in text
    assert "Commit abc1234, archbench 0.1.0; hardware cpu: Test CPU; data fingerprint cafe" in text
    assert "Warning" not in text
    # the answer first: best vs best (each at its validation-selected point; here both lr 0.0005)
    first = text.split("\n\n")[1]
    assert first == (
        "**Transformer has the lowest test loss at the grid points selected on validation loss: 3.8000 nats/token, "
        "0.0500 below RetNet** (95% interval [-0.2621, +0.1621], 3 seeds; not decisive (Holm p = 1)). It has ×0.833 "
        "the parameters and ×0.808 the training FLOPs per token of RetNet."
    )
    assert first.count(". ") + 1 <= 3
    # 3 pairs x 2 points + 3 best-vs-best, less those without an interval (longnet: 2 seeds at point 1)
    assert "(5 comparisons: every pair at every grid point and the best-against-best pairs)" in text
    assert (
        "- RetNet − LongNet: -0.1750 nats/token (no interval: 2 shared seed(s), needs ≥ 3); RetNet at learning_rate=0.0005"
        in text
    )
    assert "Parameters RetNet/Transformer ×1.2, training FLOPs per token ×1.24. Compares: " in text
    assert "- RetNet has the lowest mean test loss at 1 of 2 grid points (0 decisive)." in text
    assert "- Transformer has the lowest mean test loss at 1 of 2 grid points (0 decisive)." in text
    assert "multiplicity" not in text and "decisively" not in text
    assert "17 of 18 runs complete" in text and "Missing runs (1)" in text
    assert "(plots/loss_vs_params.png)" in text and "(plots/curves)" in text
    assert "retnet" not in text and "longnet" not in text  # one (display) name per architecture
    # the per-point table in grid order (learning rate 0.001 first, as in the grid), not by loss
    table = text.split("## Per grid point")[1]
    assert table.index("| 0.001 ") < table.index("| 0.0005 ")
    assert text.count("Columns: ") == 2


def test_extra_json_files_are_flattened_generically(tmp_path):
    runs = make_tree(tmp_path, {("retnet", 0, 0): 1.0}, eval_files=False)
    extra = tmp_path / "eval" / "retnet" / point_path(points()[0]) / "seed~0" / "generate.json"
    extra.parent.mkdir(parents=True)
    extra.write_text(json.dumps({"tokens_per_s": 12.5, "nested": {"x": 1}}))
    runs[0]["files"]["generate"] = str(extra)
    row = collect(runs).iloc[0]
    assert row["generate/tokens_per_s"] == 12.5 and row["generate_status"] == "ok" and "generate/nested" not in row


def _summary(tmp_path, runs):
    csv = {k: str(tmp_path / f"{k}.csv") for k in ("grid", "comparison", "seeds")}
    write_tables(runs, csv["grid"], csv["comparison"], csv["seeds"], BASELINE)
    return write_summary(
        csv["grid"], csv["seeds"], csv["comparison"], [], str(tmp_path / "summary.md"), AXES, BASELINE
    ), csv


def test_one_seed_says_no_interval_instead_of_zero_counts(tmp_path):
    losses = {(a, i, 0): v + i for a, v in (("retnet", 1.0), ("transformer", 2.0)) for i in (0, 1)}
    text, _ = _summary(tmp_path, make_tree(tmp_path, losses, eval_files=False))
    assert "- RetNet has the lowest mean test loss at 2 of 2 grid points (no interval (needs ≥ 3 seeds))." in text
    assert text.split("\n\n")[1] == (
        "**RetNet has the lowest test loss at the grid points selected on validation loss: 1.0000 nats/token, "
        "1.0000 below Transformer** (no interval: 1 shared seed(s), needs ≥ 3). It has ×1.2 the parameters and "
        "×1.24 the training FLOPs per token of Transformer."
    )
    assert "- RetNet − Transformer: -1.0000 nats/token (no interval: 1 shared seed(s), needs ≥ 3)" in text
    assert "(0 decisive)" not in text and "not decisive" not in text
    assert "No difference has an interval and none is called decisive: intervals need ≥ 3 seeds per run" in text


def test_best_point_is_selected_on_validation_when_validation_and_test_disagree(tmp_path):
    # point 0: lower test loss; point 1: lower validation loss -> point 1 is reported with its test loss
    runs = make_tree(tmp_path, {("retnet", 0, 0): 1.0, ("retnet", 1, 0): 2.0}, eval_files=False)
    for run, val in zip(runs, (3.0, 2.5)):
        data = json.loads(open(run["files"]["metrics"]).read())
        data["val_loss"] = val
        open(run["files"]["metrics"], "w").write(json.dumps(data))
    text, csv = _summary(tmp_path, runs)
    table = text.split("## Best grid point per architecture")[1].split("##")[0]
    header, _, *rows = [
        [c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")
    ]
    (row,) = [dict(zip(header, r)) for r in rows]
    assert (row["architecture"], row["learning_rate"], row["val loss"], row["test loss"]) == (
        "RetNet",
        "0.0005",
        "2.5",
        "2",
    )
    from archbench.report.figures import best_points

    seeds = pd.read_csv(csv["seeds"])
    assert best_points(seeds, "val_loss_mean") == {"retnet": point_path(points()[1])}


def test_grid_results_carry_provenance_and_the_summary_warns_once_when_runs_differ(tmp_path):
    runs = make_tree(
        tmp_path, {("retnet", 0, 0): 1.0, ("transformer", 0, 0): 1.1, ("longnet", 0, 0): 1.2}, eval_files=False
    )
    changes = {"transformer": provenance_block(commit="def5678", gpu="NVIDIA H100"), "longnet": None}
    for run in runs:
        if run["arch"] in changes:
            data = json.loads(open(run["files"]["metrics"]).read())
            data["provenance"] = changes[run["arch"]]
            if changes[run["arch"]] is None:  # an older run: no provenance, no FLOPs
                del data["provenance"], data["train_flops_per_token"]
            open(run["files"]["metrics"], "w").write(json.dumps(data))
    text, csv = _summary(tmp_path, runs)
    grid = pd.read_csv(csv["grid"]).set_index("arch")
    assert grid.loc["retnet", "settings_hash"] == "f00d" and grid.loc["retnet", "commit"] == "abc1234"
    assert (
        grid.loc["retnet", "hardware"] == "cpu: Test CPU" and grid.loc["transformer", "hardware"] == "gpu: NVIDIA H100"
    )
    assert grid.loc["retnet", "train_flops_per_token"] == 6.0 * 104_000
    assert grid.loc["longnet", "commit"] == "unknown" and math.isnan(grid.loc["longnet", "train_flops_per_token"])
    warnings = [line for line in text.splitlines() if "Warning" in line]
    assert warnings == [
        "**Warning: the runs of this report differ in commit (abc1234, def5678, unknown); package versions "
        "(python=3.12.0 torch=2.9.0, unknown); hardware (cpu: Test CPU, gpu: NVIDIA H100, unknown); data "
        "fingerprint (cafe, unknown).**"
    ]
    assert "Commit 3 values, archbench 2 values" in text


def _synthetic(tmp_path, losses: dict, flags: dict | None = None):
    """grid_results / seed_summary / comparison CSVs of a made-up table (no run tree) and its summary."""
    from archbench.report.collect import write_csv

    params = {"llama": 1_508_224, "retnet": 1_507_968, "transformer": 1_509_000}
    flops = {"llama": 6.29e6, "retnet": 6.43e6, "transformer": 6.26e6}
    rows = []
    for (arch, lr, seed), loss in losses.items():
        rows.append(
            {
                "arch": arch,
                "point": f"learning_rate~{lr}",
                "seed": seed,
                "learning_rate": lr,
                "status": "ok",
                "test_loss": loss,
                "val_loss": loss + (0.2 if lr == 0.001 else 0.0),  # lr 0.003 is selected on validation
                "params_total": params[arch],
                "params_non_embedding": params[arch] - 131_072,
                "train_flops_per_token": flops[arch],
                "tokens_per_s": 1000.0 + 100 * seed,
                "timing_flag": (flags or {}).get((arch, lr, seed), ""),
            }
        )
    csv = {k: str(tmp_path / f"{k}.csv") for k in ("grid", "comparison", "seeds")}
    write_csv(pd.DataFrame(rows), csv["grid"])
    grid = pd.read_csv(csv["grid"])
    write_csv(seed_summary(grid, ["learning_rate"]), csv["seeds"])
    write_csv(compare(grid, ["learning_rate"], BASELINE), csv["comparison"])
    return write_summary(
        csv["grid"], csv["seeds"], csv["comparison"], [], str(tmp_path / "summary.md"), ["learning_rate"], BASELINE
    )


def test_summary_first_paragraph_names_the_best_states_retnet_vs_transformer_and_skips_flagged_timings(tmp_path):
    noise = (0.0, 0.004, -0.003)
    base = {"llama": 3.40, "retnet": 3.46, "transformer": 3.43}
    scale = {"llama": 1.0, "retnet": -0.5, "transformer": 0.25}  # seed noise that differs per architecture
    losses = {
        (a, lr, s): b + (0.1 if lr == 0.001 else 0.0) + e * scale[a] + 0.002 * (a == "retnet") * (lr == 0.001)
        for a, b in base.items()
        for lr in (0.003, 0.001)
        for s, e in enumerate(noise)
    }
    flags = {("llama", 0.003, 2): "noisy", ("retnet", 0.003, 1): "under load", ("retnet", 0.003, 2): "noisy"}
    text = _synthetic(tmp_path, losses, flags)
    first = text.split("\n\n")[1]
    print("\n" + first)
    assert first == (
        "**Transformer++ (Llama) has the lowest test loss at the grid points selected on validation loss: 3.4003 "
        "nats/token, 0.0298 below Transformer** (95% interval [-0.0340, -0.0255], 3 seeds; decisive (Holm p = "
        "0.00028)). It has ×0.9995 the parameters and ×1.0048 the training FLOPs per token of Transformer. "
        "RetNet vs Transformer: RetNet's test loss is 0.0297 nats/token higher (95% interval [+0.0255, +0.0340], "
        "3 seeds; decisive (Holm p = 0.00028); parameters ×0.9993, training FLOPs/token ×1.03)."
    )
    table = text.split("## Best grid point per architecture")[1].split("##")[0]
    header, _, *rows = [
        [c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")
    ]
    speed = {r[0]: r[header.index("training tokens/s")] for r in rows}
    params = {r[0]: r[header.index("params")] for r in rows}
    # flagged timings left out: Llama (1000 + 1100) / 2; RetNet only seed 0; Transformer all three
    assert speed == {"Transformer++ (Llama)": "1050", "RetNet": "1000", "Transformer": "1100"}
    assert params["RetNet"] == "1.51M"
    assert "(timings flagged noisy or under load left out)" in text
