"""Every extension point at once, as a lab would install them: a data source, an architecture with a
model setting of its own, and an evaluation with an option of its own plus its report question, each
from a package outside archbench (entry points only), through ONE tiny pipeline into the report.

One run for the three kinds instead of one each (three pipelines cost CI ~5 min); each kind's fast
tests (registration, config checks, dry runs, the CLI) stay in its own module, whose `write_plugin`
writes the package used here."""

import json
import os

import pandas as pd
import pytest

import test_data_plugin_source
import test_plugin_arch
import test_plugin_eval
from archbench.provenance import settings_hash
from workflow_helpers import dry_run_counts, snakemake, tiny_config

pytestmark = pytest.mark.slow


def test_a_toy_source_architecture_and_evaluation_run_through_one_pipeline(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    for module in (test_data_plugin_source, test_plugin_arch, test_plugin_eval):
        module.write_plugin(site)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    work = tmp_path / "work"
    work.mkdir()
    cfg = tiny_config(
        work,
        data={"source": "toy", "options": {"documents": 60}},
        archs=["retnet", "toy"],
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
        model={"layers": 1, "toy_gain": 2.5},
    )
    snakemake(work, "--cores", "2", configfile=cfg, timeout=2400)
    results = work / "results"
    report = results / "report"

    # the source: planned, read and split like a built-in one
    raw = json.loads((results / "data/raw/00001-toy.json").read_text())
    assert raw["n_documents"] == 30 and raw["n_skipped_too_long"] == 0

    # the architecture: trained, evaluated and compared against the baseline like any other, its own
    # setting in its saved config
    grid = pd.read_csv(report / "grid_results.csv")
    assert sorted(grid["arch"]) == ["retnet", "toy"] and set(grid["status"]) == {"ok"}
    assert (grid["test_loss"] < 0.85 * grid["uniform_loss"]).all()  # the toy grammar is learnable
    assert "diff_retnet_minus_toy" in pd.read_csv(report / "comparison.csv")
    run = next((results / "runs" / "toy").glob("*/seed~0"))
    assert json.loads((run / "model" / "config.json").read_text())["toy_gain"] == 2.5
    toy_eval = next((results / "eval" / "toy").glob("*/seed~0"))
    latency = json.loads((toy_eval / "latency.json").read_text())
    assert {e["mode"] for e in latency["entries"]} >= {"kv_cache"} and latency["summary"]["arch"] == "toy"
    summary = (report / "summary.md").read_text()
    assert "Toy" in summary  # the registry's display name

    # the evaluation: one file per run, its provenance the run context's, its question in the report
    files = sorted((results / "eval").glob("*/*/seed~0/tokencount.json"))
    assert [f.parts[-4] for f in files] == ["retnet", "toy"]
    for f in files:
        out = json.loads(f.read_text())
        assert (out["arch"], out["windows"], out["context"], out["dtype"]) == (f.parts[-4], 3, 32, "fp32")
        assert out["tokens_index"].endswith("tokens/test/index.json")
        assert out["provenance"]["settings_hash"] == settings_hash(
            {"evaluation": "tokencount", "windows": 3, "dtype": "fp32"}
        )
    assert (results / "benchmarks" / "eval" / "tokencount").is_dir()
    assert len((report / "tokencount.csv").read_text().splitlines()) == 3
    assert (report / "plots" / "tokencount.png").is_file()
    assert "- Token count measured for 2 runs. ([plot](plots/tokencount.png))" in summary
    # the questions rule reads the plugin's files: removing one reruns it and the summary
    files[0].unlink()
    assert dry_run_counts(work, configfile=cfg) == {"tokencount": 1, "questions": 1, "summary": 1, "all": 1}
