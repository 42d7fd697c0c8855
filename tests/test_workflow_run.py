"""A tiny pipeline end to end through the real `snakemake`: every declared output, a report row per run,
nothing to do on a second run, and a changed grid value reruns only that point's training."""

import json
import math

import pandas as pd
import pytest

from workflow_helpers import dry_run_counts, snakemake, tiny_config

pytestmark = pytest.mark.slow  # the tiny pipeline end to end: a minute or more on 2 cores

POINT = "learning_rate~{lr}_embed_dim~32_ffn_dim~64_heads~2_seq_len~32"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny_run")
    cfg = tiny_config(work)
    snakemake(work, "--cores", "2", configfile=cfg)
    return work, cfg


def test_every_declared_output_exists(tiny_run):
    work, _ = tiny_run
    res = work / "results"
    for rel in [
        "data/raw/00000-kjv.parquet",
        "data/raw/00000-kjv.json",
        "tokenizer/tokenizer.json",
        "report/grid_results.csv",
        "report/comparison.csv",
        "report/seed_summary.csv",
        "report/summary.md",
        "report/plots/loss_vs_params.png",
        "report/plots/decode_latency.png",
        "report/plots/state_memory.png",
        "report/plots/emissions.png",
    ]:
        assert (res / rel).stat().st_size > 0, rel
    for split in ("train", "validation", "test"):
        assert any((res / "data/split" / split).glob("*.parquet")), split
        index = json.loads((res / f"tokens/{split}/index.json").read_text())
        assert [s["name"] for s in index["shards"]] == ["00000-kjv"]
        assert (res / f"tokens/{split}/00000-kjv.bin").stat().st_size == index["n_tokens"] * 2  # uint16
    for arch in ("retnet", "transformer"):
        for lr in ("0.01", "0.02"):
            run = res / "runs" / arch / POINT.format(lr=lr) / "seed~0"
            for rel in (
                "metrics.json",
                "model/config.json",
                "model/tokenizer.json",
                "emissions.csv",
                "logs/csv/metrics.csv",
            ):
                assert (run / rel).stat().st_size > 0, run / rel
            ev = res / "eval" / arch / POINT.format(lr=lr) / "seed~0"
            for rel in ("harness.json", "samples.txt", "samples.csv"):
                assert (ev / rel).stat().st_size > 0, ev / rel
            # timed once per architecture x shape: at the first learning rate only
            assert (ev / "latency.json").exists() == (lr == "0.01"), ev


def test_report_has_one_row_per_run_and_models_learned(tiny_run):
    work, _ = tiny_run
    report = pd.read_csv(work / "results/report/grid_results.csv")
    assert len(report) == 4
    assert sorted(zip(report.arch, report.learning_rate)) == [
        ("retnet", 0.01),
        ("retnet", 0.02),
        ("transformer", 0.01),
        ("transformer", 0.02),
    ]
    uniform = math.log(512)
    assert (report.val_loss < 0.85 * uniform).all(), report[["arch", "val_loss"]]
    assert (report.test_loss < 0.85 * uniform).all()
    assert (report.params_total > report.params_non_embedding).all()
    assert (report.global_step == 30).all()
    assert (report.tokens_seen == 30 * 8 * 32).all()
    assert report.tokens_per_s.gt(0).all() and report.emissions_kg.gt(0).all()
    harness = [c for c in report.columns if c.startswith("harness/")]
    latency = [c for c in report.columns if c.startswith("latency/")]
    assert harness and latency, list(report.columns)
    assert report[harness].notna().all().all()
    comparison = pd.read_csv(work / "results/report/comparison.csv")
    assert len(comparison) == 2 and set(comparison.winner) <= {"retnet", "transformer"}


def test_saved_model_loads_with_auto_classes(tiny_run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from archbench.models import register

    register()

    work, _ = tiny_run
    run = work / "results/runs/retnet" / POINT.format(lr="0.01") / "seed~0"
    model = AutoModelForCausalLM.from_pretrained(run / "model").eval()
    tok = AutoTokenizer.from_pretrained(run / "model")
    ids = torch.tensor([tok("In the beginning God created")["input_ids"]])
    with torch.no_grad():
        out = model(input_ids=ids, labels=ids)
    metrics = json.loads((run / "metrics.json").read_text())
    assert out.logits.shape == (1, ids.shape[1], len(tok))
    assert math.isfinite(out.loss.item()) and out.loss.item() < math.log(len(tok))
    assert metrics["params_total"] == sum(p.numel() for p in model.parameters())


def test_second_run_has_nothing_to_do(tiny_run):
    work, cfg = tiny_run
    assert dry_run_counts(work, configfile=cfg) == {}


def test_changing_one_grid_value_reruns_only_that_points_training(tiny_run):
    work, _ = tiny_run
    changed = tiny_config(
        work,
        grid={"learning_rate": [1.0e-2, 3.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
    )
    # one per arch; the timed evaluations (latency, throughput) measured the shape at the first learning rate,
    # which did not change
    per_point = {"train": 2, "harness": 2, "generate": 2, "length": 2}
    assert dry_run_counts(work, configfile=changed) == {
        **per_point,
        "collect": 1,
        "plots": 1,
        "plot_latency": 1,
        "questions": 1,
        "summary": 1,
        "all": 1,
    }
