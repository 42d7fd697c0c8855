"""One run layout: every results path is built by archbench.layout, and the paths are the ones the
pipeline has always written (checks and users depend on them)."""

import re

from archbench.layout import Layout, run_name
from workflow_helpers import REPO

POINT = "learning_rate~0.01_embed_dim~32_ffn_dim~64_heads~2_seq_len~32"


def test_paths_are_the_pipelines():
    lay, run = Layout("results"), run_name(POINT, "retnet", 0)
    assert run == f"retnet/{POINT}/seed~0"
    assert lay.metrics(run) == f"results/runs/retnet/{POINT}/seed~0/metrics.json"
    assert lay.model_config(run) == f"results/runs/retnet/{POINT}/seed~0/model/config.json"
    assert lay.scratch_dir(run) == f"results/scratch/retnet/{POINT}/seed~0"
    assert lay.eval_file(run, "harness.json") == f"results/eval/retnet/{POINT}/seed~0/harness.json"
    assert lay.tasks_dir() == "results/eval/tasks"
    assert lay.log("train", run) == f"results/logs/train/retnet/{POINT}/seed~0.log"
    assert lay.log("eval", "latency", run) == f"results/logs/eval/latency/retnet/{POINT}/seed~0.log"
    assert lay.log("report", "summary") == "results/logs/report/summary.log"
    assert lay.benchmark("train", run) == f"results/benchmarks/train/retnet/{POINT}/seed~0.tsv"
    assert lay.tokens_index("test") == "results/tokens/test/index.json"
    assert lay.split("test", "00000-kjv") == "results/data/split/test/00000-kjv.parquet"
    assert lay.raw("00000-kjv", "json") == "results/data/raw/00000-kjv.json"
    assert lay.tokenizer_dir() == "results/tokenizer"
    assert lay.tokenizer_file("tokenizer_config.json") == "results/tokenizer/tokenizer_config.json"
    assert lay.split_plan() == "results/data/split_plan.json"
    assert lay.split_stats("00000-kjv") == "results/data/split/stats/00000-kjv.json"
    assert lay.tokens("train", "00000-kjv", "json") == "results/tokens/train/00000-kjv.json"
    assert (lay.report_dir(), lay.plots_dir()) == ("results/report", "results/report/plots")
    # patterns for the rules: the run's wildcards stay wildcards
    assert Layout("r").eval_dir(run_name()) == "r/eval/{arch}/{point}/seed~{seed}"


def test_rule_files_build_results_paths_only_through_the_layout():
    """The rules (Snakefile and every rule file) spell no results path."""
    for name in (
        "Snakefile",
        *(f"rules/{f}.smk" for f in ("common", "data", "train", "evaluate", "report", "publish")),
    ):
        text = (REPO / name).read_text()
        assert not re.search(r"\{R\}/|results/|/seed~|/runs/|/eval/|/logs/|/data/|/tokens/|/tokenizer/", text), name
