"""The report rules through the real `snakemake` on a hand-made results tree (no training): tables,
plots and summary.md, then `snakemake --report` writes an HTML report with every category."""

import pandas as pd
import pytest

from test_report_helpers import GRID, make_tree, points
from workflow_helpers import snakemake, tiny_config

REPORT_RULES = ["collect", "plots", "plot_latency", "questions", "summary"]


def test_report_rules_and_html_report_on_a_hand_made_tree(tmp_path):
    # no length / throughput files in the hand-made tree: those evaluations are off
    cfg = tiny_config(tmp_path, grid=GRID, seeds=[0, 1, 2], length__enabled=False, latency__batch_sweep=[])
    losses = {
        (arch, p, s): base + 0.02 * s - 0.1 * p
        for arch, base in (("retnet", 4.0), ("transformer", 4.2))
        for p in range(len(points()))
        for s in range(3)
    }
    make_tree(tmp_path / "results", losses)
    summary = tmp_path / "results" / "report" / "summary.md"
    # Only the report rules may run: the files above stand in for train / harness / latency outputs.
    proc = snakemake(tmp_path, str(summary), "--cores", "2", "--allowed-rules", *REPORT_RULES, configfile=cfg)
    for rule in REPORT_RULES:
        assert f"(Rule: {rule})" in proc.stdout + proc.stderr, rule

    report = tmp_path / "results" / "report"
    grid = pd.read_csv(report / "grid_results.csv")
    assert len(grid) == 12 and set(grid["status"]) == {"ok"} and "latency/recurrent/state_bytes@1024" in grid
    comparison = pd.read_csv(report / "comparison.csv")
    assert list(comparison["winner"]) == ["retnet", "retnet"]
    assert comparison["diff_retnet_minus_transformer"].tolist() == pytest.approx([-0.2, -0.2])
    for name in ("loss_vs_params", "diff_heatmap", "throughput", "emissions", "decode_latency", "state_memory"):
        assert (report / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((report / "plots" / "curves").glob("*.png"))) == len(points())
    text = summary.read_text()
    assert "- RetNet has the lowest mean test loss at 2 of 2 grid points (2 decisive)." in text
    assert "**RetNet has the lowest test loss at the grid points selected on validation loss: 3.9200" in text
    assert "(plots/decode_latency.png)" in text

    html = tmp_path / "report.html"
    snakemake(tmp_path, str(summary), "--report", str(html), configfile=cfg)
    content = html.read_text(errors="replace")
    assert html.stat().st_size > 100_000
    for needle in (
        "Quality",
        "Speed",
        "Memory",
        "Carbon",
        "Summary",
        "diff_heatmap.png",
        "comparison.csv",
        "Paired test-loss difference",
        "architecture registry",  # the intro names the registry, not a fixed list of architectures
        "selected on validation loss",
    ):
        assert needle in content, needle
    assert "RetNet, Transformer and LongNet" not in content
