"""Failure isolation: one failing grid point does not stop the others (--keep-going), its error names
the cause, and `report.partial` builds the report with the failed run marked missing."""

import pandas as pd
import pytest

from workflow_helpers import snakemake, tiny_config

pytestmark = pytest.mark.faults  # a failing grid point through a real run


def test_failing_grid_point_is_isolated_and_reported_missing(tmp_path):
    # seq_len 16384 cannot make one full training batch from this small corpus: that point fails.
    cfg = tiny_config(
        tmp_path,
        archs=["retnet"],
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32, 16384]},
    )
    failed = snakemake(tmp_path, "--cores", "2", "--keep-going", "summary", configfile=cfg, check=False)
    assert failed.returncode != 0
    runs = tmp_path / "results/runs/retnet"
    ok = runs / "learning_rate~0.01_embed_dim~32_ffn_dim~64_heads~2_seq_len~32/seed~0/metrics.json"
    assert ok.exists()  # the other grid point finished
    assert not any(runs.glob("*16384*/seed~0/metrics.json"))
    log = next((tmp_path / "results/logs/train/retnet").glob("*16384*/seed~0.log")).read_text()
    assert "DataError" in log and "seq_len=16384" in log and "tokens/train" in log

    partial = tmp_path / "partial.yaml"
    partial.write_text("report: {partial: true}\n")
    snakemake(tmp_path, "--cores", "2", "summary", "--configfile", str(cfg), str(partial))
    grid = pd.read_csv(tmp_path / "results/report/grid_results.csv")
    assert sorted(zip(grid.seq_len, grid.status)) == [(32, "ok"), (16384, "missing")]
    assert "1 of 2 runs complete" in (tmp_path / "results/report/summary.md").read_text()
