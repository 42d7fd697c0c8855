"""The tiny pipeline with all five architectures through the real `snakemake`: a report row and a
comparison against report.baseline for each, matched sizes, and each model's own decoding state."""

import json

import pandas as pd
import pytest

from workflow_helpers import snakemake, tiny_config

ARCHS = ["retnet", "transformer", "longnet", "llama", "mamba2"]
POINT = "learning_rate~0.01_embed_dim~32_ffn_dim~64_heads~2_seq_len~32"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def five(tmp_path_factory):
    work = tmp_path_factory.mktemp("five")
    cfg = tiny_config(
        work,
        archs=ARCHS,
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
        model={
            "layers": 1,
            "match_params": True,
            "block": "retnet",
            "segment_lengths": [16, 32],
            "dilated_ratios": [1, 2],
        },
        report={"baseline": "retnet"},
    )
    snakemake(work, "--cores", "2", configfile=cfg, timeout=3600)
    return work / "results"


def test_a_report_row_and_a_comparison_for_every_arch(five):
    grid = pd.read_csv(five / "report/grid_results.csv")
    assert sorted(grid.arch) == sorted(ARCHS) and (grid.status == "ok").all()
    ref = grid.set_index("arch").params_non_embedding["retnet"]
    for arch, n in grid.set_index("arch").params_non_embedding.items():  # matched to retnet (match_to default)
        assert abs(n - ref) / ref <= 0.02, (arch, n, ref)
    comparison = pd.read_csv(five / "report/comparison.csv")
    assert len(comparison) == 1
    for arch in ARCHS:
        assert comparison[f"test_loss_{arch}"].notna().all(), arch
        if arch != "retnet":  # every other arch against the baseline
            assert comparison[f"diff_retnet_minus_{arch}"].notna().all(), arch
    summary = (five / "report/summary.md").read_text()
    # model.block: retnet gives transformer and longnet RetNet's block: only the mixer differs
    lines = {
        line.split(":")[0]: line for line in summary.splitlines() if line.startswith("- ") and "Compares: " in line
    }
    assert lines["- RetNet − Transformer"].endswith(
        "Compares: same block (RetNet block (GLU FFN, RMSNorm, no biases)), different token mixer: "
        "multi-scale retention vs softmax attention."
    )
    assert "Compares: same block" in lines["- RetNet − LongNet"]
    assert "Compares: different block and mixer" in lines["- RetNet − Transformer++ (Llama)"]
    assert "Compares: different block and mixer" in lines["- RetNet − Mamba-2"]


def test_each_model_decodes_with_its_own_state(five):
    states = {}
    for arch in ARCHS:
        data = json.loads((five / "eval" / arch / POINT / "seed~0/latency.json").read_text())
        cached = [e for e in data["entries"] if e["mode"] != "recompute"]
        states[arch] = {m: [e["state_bytes"] for e in cached if e["mode"] == m] for m in {e["mode"] for e in cached}}
    assert set(states["mamba2"]) == {"recurrent"} and len(set(states["mamba2"]["recurrent"])) == 1
    assert set(states["retnet"]) == {"recurrent"} and len(set(states["retnet"]["recurrent"])) == 1
    for arch in ("llama", "transformer", "longnet"):
        small, large = states[arch]["kv_cache"]
        assert large == 4 * small, arch  # contexts 16 and 64: the KV cache grows with the context
    for arch in ARCHS:
        samples = (five / "eval" / arch / POINT / "seed~0/samples.txt").read_text()
        assert samples.count("## ") == 4, arch
        harness = json.loads((five / "eval" / arch / POINT / "seed~0/harness.json").read_text())
        assert harness["config"]["arch"] == arch
