"""The question figures, tables and summary sentences from a hand-made results tree: every number in a
sentence is computed from the files (exact values asserted), and the new rules appear in dry runs."""

import json

import pandas as pd
import pytest

from archbench.report.questions import summary_section, write_questions
from archbench.report.scaling import power_law
from workflow_helpers import dry_run_counts, tiny_config

SIZES = {96: 3.7e5, 128: 5.6e5, 192: 1.03e6, 256: 1.64e6, 384: 3.24e6}
TRUTH = {"retnet": (1.6, 300.0, 0.35), "transformer": (1.8, 120.0, 0.3)}


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def _tree(root, seeds=(0,)):
    metrics, length, throughput, recall = [], [], [], []
    for arch, (e, a, alpha) in TRUTH.items():
        for d, n in SIZES.items():
            point = f"learning_rate~0.002/embed_dim~{d}"
            for s in seeds:
                run = f"{arch}/{point}/seed~{s}"
                hp = {"layers": 2, "embed_dim": d, "seq_len": 128, "value_embed_dim": None}
                metrics.append(
                    _write(
                        root / "runs" / run / "metrics.json",
                        {
                            "arch": arch,
                            "seed": s,
                            "hparams": hp,
                            "params_non_embedding": n,
                            "tokens_seen": 2 * n,
                            "test_loss": power_law(n, e, a, alpha) + 0.001 * s,
                        },
                    )
                )
                if d != 384:
                    continue
                entries = [
                    {
                        "multiplier": k,
                        "context": 128 * k,
                        "mean_loss": 3.0 + (0.1 if arch == "retnet" else 0.5) * i,
                        "tail_loss": 3.0,
                        "buckets": [
                            {"start": 0, "end": 1, "loss": 4.0, "n": 4},
                            {"start": 1, "end": 128 * k, "loss": 3.0, "n": 400},
                        ],
                    }
                    for i, k in enumerate([1, 2, 4])
                ]
                length.append(
                    _write(root / "eval" / run / "length.json", {"arch": arch, "seq_len": 128, "entries": entries})
                )
                rows = [
                    {
                        "batch_size": b,
                        "mode": "x",
                        "tokens_per_s": 100.0 * b ** (0.9 if arch == "retnet" else 0.5),
                        "decode_ms_median": 1.0,
                        "state_bytes": (1 if arch == "retnet" else 4) * 2**20 * b,
                    }
                    for b in (1, 4, 16, 64)
                ]
                throughput.append(
                    _write(root / "eval" / run / "throughput.json", {"arch": arch, "context": 256, "rows": rows})
                )
                recall.append(
                    _write(
                        root / "eval" / run / "recall.json",
                        {
                            "arch": arch,
                            "entries": [
                                {
                                    "pairs": p,
                                    "queries": p,
                                    "n_examples": 8,
                                    "n_answers": 8 * p,
                                    "chance": 1 / 128,
                                    "accuracy": (0.9 if arch == "transformer" else 0.6) / p,
                                }
                                for p in (4, 8, 16)
                            ],
                        },
                    )
                )
    return metrics, {"length": length, "throughput": throughput, "recall": recall}


def _outputs(root):
    names = {
        "length": "plots/length.png",
        "length_table": "length.csv",
        "scaling": "plots/scaling.png",
        "scaling_table": "scaling.csv",
        "recall": "plots/recall.png",
        "recall_table": "recall.csv",
        "throughput": "plots/tp.png",
        "throughput_table": "tp.csv",
        "json": "questions.json",
    }
    (root / "report" / "plots").mkdir(parents=True)
    return {k: str(root / "report" / v) for k, v in names.items()}


def test_sentences_are_computed_from_the_files(tmp_path):
    out = _outputs(tmp_path)
    result = write_questions(*_tree(tmp_path), out)
    assert result["length"]["sentence"] == (
        "Length extrapolation (test loss over the whole context at k x the training "
        "length vs 1x): RetNet 3.200 vs 3.000 nats (+0.200) at 4x; "
        "Transformer 4.000 vs 3.000 nats (+1.000) at 4x."
    )
    fits = result["scaling"]["fits"]["params"]["fits"]
    for arch, (_e, _a, alpha) in TRUTH.items():
        assert fits[arch]["alpha"] == pytest.approx(alpha, rel=0.05)
        assert (
            f"{'RetNet' if arch == 'retnet' else 'Transformer'} α = {fits[arch]['alpha']:.3f} (5 sizes, 1 seed(s))"
            in result["scaling"]["sentence"]
        )
    assert "(no interval: fewer than 3 seeds)" in result["scaling"]["sentence"]
    assert result["recall"]["sentence"] == (
        "Associative recall at 16 key-value pairs (best width and learning rate, "
        "chance 0.8%): RetNet 3.8% (d=384); Transformer 5.6% (d=384)."
    )
    assert result["throughput"]["sentence"] == (
        "Decode throughput from batch 1 to 64 at context 256: RetNet 100 → 4,222 tokens/s (×42.2), state 1.00 MiB → "
        "64.00 MiB; Transformer 100 → 800 tokens/s (×8.0), state 4.00 MiB → 256.00 MiB."
    )
    for key in ("length", "scaling", "recall", "throughput"):
        with open(out[key], "rb") as fh:
            assert fh.read(4) == b"\x89PNG"
    table = pd.read_csv(out["length_table"])
    assert table.loc[
        (table["arch"] == "transformer") & (table["multiplier"] == 4), "ratio_to_1x"
    ].item() == pytest.approx(4 / 3)
    assert set(pd.read_csv(out["throughput_table"])["batch_size"]) == {1, 4, 16, 64}
    lines = summary_section(out["json"], str(tmp_path / "report"))
    assert lines[0] == "## The architecture questions" and len([ln for ln in lines if ln.startswith("- ")]) == 4
    assert "([plot](plots/scaling.png))" in "\n".join(lines)


def test_three_seeds_give_bootstrap_intervals_and_a_crossover_with_uncertainty(tmp_path):
    result = write_questions(*_tree(tmp_path, seeds=(0, 1, 2)), _outputs(tmp_path))
    fit = result["scaling"]["fits"]["params"]["fits"]["retnet"]
    assert fit["n_seeds"] == 3 and fit["interval"]["alpha"][0] <= fit["alpha"] <= fit["interval"]["alpha"][1]
    (cross,) = result["scaling"]["fits"]["params"]["crossovers"]
    # 1.6 + 300 N^-0.35 = 1.8 + 120 N^-0.3 has one root (between 1e6 and 1e7); quoted with its interval
    assert cross["crossover"] is not None and "95% bootstrap interval" in result["scaling"]["sentence"]
    n = cross["crossover"]
    assert power_law(n, *TRUTH["retnet"]) == pytest.approx(power_law(n, *TRUTH["transformer"]), abs=0.01)


def test_missing_questions_say_what_to_run(tmp_path):
    metrics = _tree(tmp_path)[0][:2]  # two sizes of one architecture, nothing else
    result = write_questions(metrics, {}, _outputs(tmp_path))
    assert result["length"]["sentence"] == "Length extrapolation was not measured (length.enabled is false)."
    assert result["scaling"]["sentence"].startswith(
        "Scaling: no fit — it needs >= 3 model sizes per architecture, this run has RetNet 2"
    )
    assert "config/presets/mqar.yaml" in result["recall"]["sentence"]
    assert "latency.batch_sweep" in result["throughput"]["sentence"]


def test_dry_run_lists_the_question_rules_per_run(tmp_path):
    counts = dry_run_counts(tmp_path, configfile=tiny_config(tmp_path))
    assert counts["length"] == counts["throughput"] == counts["train"] == 4 and counts["questions"] == 1
    assert "recall" not in counts
    off = tiny_config(tmp_path, length={"enabled": False}, latency={"contexts": [16], "batch_sweep": []})
    counts = dry_run_counts(tmp_path, configfile=off)
    assert "length" not in counts and "throughput" not in counts and counts["questions"] == 1


def test_mqar_dry_run_has_a_recall_job_per_run(tmp_path):
    cfg = tiny_config(
        tmp_path, data={"source": "mqar", "mqar": {"pairs": [2, 4], "seq_len": 32, "vocab_size": 64, "documents": 200}}
    )
    counts = dry_run_counts(tmp_path, configfile=cfg)
    assert counts["recall"] == counts["train"] == 4 and counts["tokenize"] == 3
