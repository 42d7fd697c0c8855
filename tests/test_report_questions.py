"""The question figures, tables and summary sentences from a hand-made results tree: every number in a
sentence is computed from the files (exact values asserted), and the new rules appear in dry runs."""

import json

import pandas as pd
import pytest

from archbench.config import load_schema
from archbench.report.questions import Inputs, summary_section, write_questions
from archbench.report.scaling import power_law
from workflow_helpers import dry_run_counts, tiny_config

# the config's report block as the schema fills it (its one home of defaults)
REPORT = {key: spec["default"] for key, spec in load_schema()["properties"]["report"]["properties"].items()}
SIZES = {96: 3.7e5, 128: 5.6e5, 192: 1.03e6, 256: 1.64e6, 384: 3.24e6}
TRUTH = {"retnet": (1.6, 300.0, 0.35), "transformer": (1.8, 120.0, 0.3)}


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def provenance(commit="abc123", cpu="Test CPU", torch="2.9.0"):
    """The keys of archbench.provenance.provenance_block (values made up)."""
    return {
        "archbench": "0.1.0",
        "git": {"commit": commit, "dirty": False},
        "versions": {"python": "3.12.0", "torch": torch, "lightning": "2.5.0"},
        "os": "Linux",
        "cpu": cpu,
        "threads": 2,
        "gpu": None,
        "device": "cpu",
        "precision": "32-true",
        "settings_hash": "s" * 8,
        "tokenizer_sha256": "t" * 8,
        "data_fingerprint": "d" * 8,
        "started": "2026-12-05T10:00:00Z",
        "finished": "2026-12-05T10:05:00Z",
    }


# learning rate -> (validation-loss offset, test-loss offset, eval offset): one point by default
ONE_LR = {0.002: (0.0, 0.0, 0.0)}


def _tree(root, seeds=(0,), lrs=ONE_LR):
    metrics, length, throughput, recall = [], [], [], []
    for arch, (e, a, alpha) in TRUTH.items():
        for d, n in SIZES.items():
            for lr, (val_off, test_off, ev) in lrs.items():
                point = f"learning_rate~{lr}/embed_dim~{d}"
                for s in seeds:
                    run = f"{arch}/{point}/seed~{s}"
                    hp = {"layers": 2, "embed_dim": d, "seq_len": 128, "learning_rate": lr}
                    loss = power_law(n, e, a, alpha) + 0.001 * s
                    metrics.append(
                        _write(
                            root / "runs" / run / "metrics.json",
                            {
                                "arch": arch,
                                "seed": s,
                                "hparams": hp,
                                "params_non_embedding": n,
                                "tokens_seen": 2 * n,
                                "train_flops_per_token": 6.0 * n + 1000.0,
                                "val_loss": loss + 0.01 + val_off,
                                "test_loss": loss + test_off,
                                "provenance": provenance(),
                            },
                        )
                    )
                    if d != 384:
                        continue
                    slope = 0.1 if arch == "retnet" else 0.5
                    entries = [
                        {
                            "multiplier": k,
                            "context": 128 * k,
                            "mean_loss": 3.0 + slope * i / 4 + ev,  # diluted by the trained positions
                            "tail_loss": 3.0 + ev,
                            "buckets": [
                                {"start": 0, "end": 1, "loss": 4.0, "n": 4},
                                {"start": 1, "end": 128, "loss": 3.0 + ev, "n": 400},
                            ]
                            + (
                                [{"start": 128, "end": 128 * k, "loss": 3.0 + slope * i + ev, "n": 400}]
                                if k > 1
                                else []
                            ),
                            # the same targets at kx and 1x: retnet gains from the context, the
                            # transformer's windows scatter around 0 (no effect); controls read 0
                            **(
                                {
                                    "same_targets": {
                                        "n_windows": 4,
                                        "aligned": True,
                                        "targets": 128,
                                        "far": [
                                            3.0 + x + ev
                                            for x in (
                                                [-0.05, -0.04, -0.06, -0.05]
                                                if arch == "retnet"
                                                else [0.02, -0.03, 0.01, -0.01]
                                            )
                                        ],
                                        "near": [3.0 + ev] * 4,
                                        "control": {"unigram": [0.0] * 4, "bigram": [0.0] * 4},
                                    }
                                }
                                if k > 1
                                else {}
                            ),
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
                            "tokens_per_s": 100.0 * b ** (0.9 if arch == "retnet" else 0.5) + ev,
                            "decode_ms_median": 1.0,
                            "state_bytes": (1 if arch == "retnet" else 4) * 2**20 * b,
                        }
                        for b in (1, 4, 16, 64)
                    ]
                    throughput.append(
                        _write(root / "eval" / run / "throughput.json", {"arch": arch, "context": 256, "rows": rows})
                    )
                    acc = (0.9 if arch == "transformer" else 0.6) + ev
                    recall.append(
                        _write(
                            root / "eval" / run / "recall.json",
                            {
                                "arch": arch,
                                "state_bytes": 4096 if arch == "retnet" else 6144,
                                "generator": {
                                    "power_a": 0.01,
                                    "random_fillers": True,
                                    "answers_in_input": False,
                                    "vocab_size": 256,
                                    "pairs": [4, 8],
                                    "seq_len": 128,
                                },
                                "validation": {str(p): acc / p - val_off for p in (4, 8, 16)},
                                "entries": [
                                    {
                                        "pairs": p,
                                        "queries": p,
                                        "n_examples": 8,
                                        "n_answers": 8 * p,
                                        "chance": 1 / 128,
                                        "accuracy": acc / p,
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
        "compute": "plots/compute.png",
        "compute_table": "compute.csv",
        "json": "questions.json",
    }
    (root / "report" / "plots").mkdir(parents=True)
    return {k: str(root / "report" / v) for k, v in names.items()}


def test_recall_names_every_deviation_of_the_mqar_preset_from_zoology():
    from archbench.report.questions.recall import deviations

    preset = {"power_a": 0.01, "random_fillers": True, "answers_in_input": True, "vocab_size": 128}
    assert deviations({**preset, "seq_len": 64, "pairs": [2, 4, 8]}) == (
        "differs from Zoology's MQAR in: random non-query tokens drawn from the value words only (Zoology: any "
        "word); answers visible in the input after each query (Zoology: only in the targets); a 128-word "
        "vocabulary (Zoology 8192); training on 2, 4, 8 key-value pairs in 64-token sequences (Zoology: 64-512 "
        "tokens, 4-64 pairs)"
    )
    assert "key-value pairs" not in deviations({**preset, "seq_len": 256, "pairs": [16, 32, 64]})


def test_sentences_are_computed_from_the_files(tmp_path):
    out = _outputs(tmp_path)
    result = write_questions(*_tree(tmp_path), out, REPORT)
    # the same targets read at 4x and at 1x, bootstrapped over windows, beside the position-free control
    assert result["length"]["sentence"] == (
        "Length extrapolation (the same target tokens, the last training-length of windows inside one document, "
        "read with k x the training length of context minus with 1x; nats/token, 95% bootstrap interval over "
        "windows; position-free control on the same windows: unigram +0.000, bigram +0.000; grid point selected "
        "on validation loss): RetNet -0.050 [-0.057, -0.042] nats at 4x (4 windows, 1 seed(s)); Transformer: no "
        "effect detectable at 4x (-0.002 [-0.020, +0.015] nats; 4 windows, 1 seed(s))."
    )
    fits = result["scaling"]["fits"]["params"]["fits"]
    for arch, (_e, _a, alpha) in TRUTH.items():
        assert fits[arch]["alpha"] == pytest.approx(alpha, rel=0.05)
        assert fits[arch]["interval"] == {}  # 1 seed: no exponent interval
        assert (
            f"{'RetNet' if arch == 'retnet' else 'Transformer'} α = {fits[arch]['alpha']:.3f} "
            "(no interval: needs ≥ 3 seeds) (5 sizes, 1 seed(s))" in result["scaling"]["sentence"]
        )
        h = fits[arch]["heldout"]
        assert (
            f"{'RetNet' if arch == 'retnet' else 'Transformer'} predicted {h['predicted']:.3f} vs measured "
            f"{h['measured']:.3f} at 3.24M (no interval: 1 seed(s), needs ≥ 3)" in result["scaling"]["sentence"]
        )
    sentence = result["scaling"]["sentence"]
    assert sentence.startswith(
        "Scaling (grid point per size selected on validation loss; test loss reported): RetNet − Transformer test loss "
    )
    assert "(no interval: needs ≥ 3 seeds, has 1)" in sentence and "no crossover is supported by the data" in sentence
    assert "Fitted exponents (descriptive: fewer than 8 sizes; 95% intervals include fit uncertainty)" in sentence
    # the FLOPs axis: metrics.json's train_flops_per_token x tokens_seen
    flops = result["scaling"]["fits"]["flops"]["fits"]["retnet"]["sizes"]
    assert flops == pytest.approx([(6.0 * n + 1000.0) * 2 * n for n in sorted(SIZES.values())])
    assert result["recall"]["sentence"] == (
        "Associative recall at 16 key-value pairs (training saw 4, 8 pairs (16 is a count it never saw); searched "
        "learning rate 0.002, width d = 384, seed 0; one setting, nothing selected; "
        "test accuracy reported; chance 0.8%): RetNet 3.8% (d=384, state 4.0 KiB); Transformer 5.6% (d=384, "
        "state 6.0 KiB). Matching knob (model.match_params): RetNet ffn_dim, Transformer ffn_dim. The generator "
        "differs from Zoology's MQAR in: random non-query tokens drawn from the value words only (Zoology: any "
        "word); a 256-word vocabulary (Zoology 8192)."
    )
    recall_csv = pd.read_csv(out["recall_table"])
    assert set(recall_csv["state_bytes"]) == {4096, 6144} and "validation_accuracy" in recall_csv
    assert result["throughput"]["sentence"] == (
        "Decode throughput from batch 1 to 64 at context 256 (median per-token time over every timed step): "
        "RetNet 100 → 4,222 tokens/s (×42.2), state 1.00 MiB → "
        "64.00 MiB; Transformer 100 → 800 tokens/s (×8.0), state 4.00 MiB → 256.00 MiB."
    )
    for key in ("length", "scaling", "recall", "throughput", "compute"):
        with open(out[key], "rb") as fh:
            assert fh.read(4) == b"\x89PNG"
        assert "<svg" in open(out[key].removesuffix(".png") + ".svg").read()[:500]
    table = pd.read_csv(out["length_table"])
    row = table.loc[(table["arch"] == "transformer") & (table["multiplier"] == 4)]
    assert row["ratio_to_1x"].item() == pytest.approx(3.25 / 3) and row["beyond_loss"].item() == pytest.approx(4.0)
    assert set(pd.read_csv(out["throughput_table"])["batch_size"]) == {1, 4, 16, 64}
    lines = summary_section(out["json"], str(tmp_path / "report"))
    assert lines[0] == "## The architecture questions" and len([ln for ln in lines if ln.startswith("- ")]) == 5
    assert "([plot](plots/scaling.png))" in "\n".join(lines)


# lr 0.002: lowest validation loss, worst test loss and eval numbers offset by +0.01; lr 0.001 the reverse
TWO_LRS = {0.002: (0.0, 0.5, 0.01), 0.001: (0.3, -0.5, 0.0)}


def test_every_question_reports_the_point_selected_on_validation(tmp_path):
    result = write_questions(*_tree(tmp_path, lrs=TWO_LRS), _outputs(tmp_path), {**REPORT, "headline_multiplier": 2})
    # the sentence and the figure at the configured multiplier (measured here), not a hard-coded 4x
    assert result["length"]["archs"]["retnet"]["headline"]["multiplier"] == 2
    assert " at 2x (" in result["length"]["sentence"] and " at 4x" not in result["length"]["sentence"]
    for question in ("length", "throughput", "recall"):
        for arch in TRUTH:
            assert result[question]["archs"][arch]["point"] == "embed_dim=384, learning_rate=0.002", question
    assert result["length"]["archs"]["retnet"]["beyond_loss"][4] == pytest.approx(3.21)
    assert result["throughput"]["archs"]["retnet"]["tokens_per_s"][0] == pytest.approx(100.01)
    assert result["recall"]["archs"]["transformer"]["accuracy"] == pytest.approx(0.91 / 16)
    fits = result["scaling"]["fits"]["params"]["fits"]["retnet"]
    assert set(fits["points"]) == {f"embed_dim={d}, learning_rate=0.002" for d in SIZES}


def test_recall_falls_back_to_validation_loss_never_test(tmp_path):
    metrics, files = _tree(tmp_path, lrs=TWO_LRS)
    for path in files["recall"]:
        data = json.loads(open(path).read())
        del data["validation"], data["generator"], data["state_bytes"]
        open(path, "w").write(json.dumps(data))
    result = write_questions(metrics, files, _outputs(tmp_path), REPORT)
    assert result["recall"]["selected_on"] == "validation loss"
    assert result["recall"]["archs"]["transformer"]["point"] == "embed_dim=384, learning_rate=0.002"
    assert "(d=384, state unknown)" in result["recall"]["sentence"]
    assert result["recall"]["sentence"].endswith("deviations from Zoology unknown).")


def test_three_seeds_give_paired_intervals_and_no_unsupported_crossover(tmp_path):
    result = write_questions(*_tree(tmp_path, seeds=(0, 1, 2)), _outputs(tmp_path), REPORT)
    fit = result["scaling"]["fits"]["params"]["fits"]["retnet"]
    assert fit["n_seeds"] == 3 and fit["interval"]["alpha"][0] <= fit["alpha"] <= fit["interval"]["alpha"][1]
    (cross,) = result["scaling"]["fits"]["params"]["crossovers"]
    # retnet - transformer (seed offsets cancel in the pair): exact differences, zero-width intervals
    n = sorted(SIZES.values())
    diffs = [power_law(x, *TRUTH["retnet"]) - power_law(x, *TRUTH["transformer"]) for x in n]
    assert [p["mean"] for p in cross["paired"]] == pytest.approx(diffs)
    assert [p["high"] - p["low"] for p in cross["paired"]] == pytest.approx([0.0] * 5)
    # both ends favour the Transformer (+0.61, +0.04): the fits meet just beyond the largest size (listed as
    # extrapolated in the table) but no crossover is claimed
    assert diffs[0] > 0 and diffs[-1] > 0 and cross["supported"] is False and cross["crossover"] is None
    assert cross["fit_crossover"] > max(n) and cross["fit_crossover_extrapolated"] is True
    assert "no crossover is supported by the data" in result["scaling"]["sentence"]


def test_missing_questions_say_what_to_run(tmp_path):
    metrics = _tree(tmp_path)[0][:2]  # two sizes of one architecture, nothing else
    out = _outputs(tmp_path)
    result = write_questions(metrics, {}, out, REPORT)
    assert result["length"]["sentence"] == "Length extrapolation was not measured (length.enabled is false)."
    assert result["scaling"]["sentence"].startswith(
        "Scaling: no fit — it needs >= 3 model sizes per architecture, this run has RetNet 2"
    )
    assert "config/presets/mqar.yaml" in result["recall"]["sentence"]
    assert "latency.batch_sweep" in result["throughput"]["sentence"]
    # summary.md links no placeholder figure of a question that was not measured
    lines = [ln for ln in summary_section(out["json"], str(tmp_path / "report")) if ln.startswith("- ")]
    assert len(lines) == 5  # compute (measured: any run has its FLOPs) and the four above
    assert [ln for ln in lines if "[plot]" in ln] == [ln for ln in lines if "training FLOPs" in ln]


def test_dry_run_lists_the_question_rules_per_run(tmp_path):
    counts = dry_run_counts(tmp_path, configfile=tiny_config(tmp_path))
    assert counts["length"] == counts["train"] == 4 and counts["questions"] == 1
    assert counts["throughput"] == 2  # timed once per architecture x shape, not per learning rate
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


def test_evaluation_files_join_their_run_by_folder_without_parsing_it(tmp_path):
    from archbench.report.questions.runs import run_of, runs_frame

    metrics, _ = _tree(tmp_path)
    runs = runs_frame(metrics)
    tail = "transformer/learning_rate~0.002/embed_dim~128/seed~0"
    assert run_of(str(tmp_path / "eval" / tail / "x.json"), runs)["run_dir"] == str(tmp_path / "runs" / tail)
    # an evaluation folder inside the run folder (one run layout) joins too
    assert run_of(str(tmp_path / "runs" / tail / "eval" / "x.json"), runs)["arch"] == "transformer"
    with pytest.raises(ValueError, match=r"other/x\.json: no run's metrics\.json shares its folder"):
        run_of(str(tmp_path / "other" / "x.json"), runs)


def test_runs_without_provenance_or_flops_still_get_every_answer(tmp_path):
    metrics, files = _tree(tmp_path)
    for path in metrics:  # metrics.json of an older run
        data = json.loads(open(path).read())
        del data["provenance"], data["train_flops_per_token"]
        open(path, "w").write(json.dumps(data))
    result = write_questions(metrics, files, _outputs(tmp_path), REPORT)
    assert (
        result["scaling"]["fits"]["flops"]["fits"] == {}
        and "alpha" in result["scaling"]["fits"]["params"]["fits"]["retnet"]
    )
    assert result["length"]["sentence"].endswith(
        "Transformer: no effect detectable at 4x (-0.002 [-0.020, +0.015] nats; 4 windows, 1 seed(s))."
    )


def test_throughput_sentence_uses_clean_measurements_only_and_says_what_was_dropped(tmp_path):
    metrics, files = _tree(tmp_path)
    for path in files["throughput"]:
        data = json.loads(open(path).read())
        if data["arch"] == "transformer":  # batch 64 taken on a busy machine, batch 16 spread p10 1 ms .. p90 9 ms
            data["rows"][-1]["timing_flag"] = "under load"
            data["rows"][-2]["timing_flag"] = "noisy"
            open(path, "w").write(json.dumps(data))
    from archbench.report.questions import runs_frame, throughput

    out = _outputs(tmp_path)
    inputs = Inputs({"throughput": files["throughput"]}, runs_frame(metrics), REPORT)
    result = {"throughput": throughput.QUESTION.answer(inputs, out["throughput"], out["throughput_table"])}
    sentence = result["throughput"]["sentence"]
    assert "Transformer 100 → 200 tokens/s (batch 1–4) (×2.0)" in sentence
    assert "RetNet 100 → 4,222 tokens/s (×42.2)" in sentence
    assert sentence.endswith(
        "Left out as noisy (p90/p10 > 1.5) or taken under load: 2 measurements (Transformer batch 16 (noisy), "
        "Transformer batch 64 (under load))."
    )
    table = pd.read_csv(out["throughput_table"], keep_default_na=False)
    assert sorted(table.loc[table["arch"] == "transformer", "timing_flag"]) == ["", "", "noisy", "under load"]


# Every built-in question's table -> select -> sentence, in a process where importing matplotlib fails.
NO_MATPLOTLIB = """
import json, sys
sys.modules["matplotlib"] = None
from archbench.report.questions import QUESTIONS, Inputs, ordered, runs_frame
args = json.loads(sys.argv[1])
runs, answers = runs_frame(args["metrics"]), {}
for q in ordered():
    inputs = Inputs({e: args["files"].get(e, []) for e in q.evaluations}, runs, args["report"],
                    answers=dict(answers) if q.reads_answers else {})
    answers[q.name] = q.sentence(q.select(q.table(inputs), inputs))
print(json.dumps({name: a["sentence"] for name, a in answers.items()}))
"""


def test_every_question_but_its_plot_runs_without_matplotlib(tmp_path):
    import subprocess
    import sys

    from archbench.report.questions import QUESTIONS

    metrics, files = _tree(tmp_path)
    out = _outputs(tmp_path)
    for name in ("retrieval", "hybrid", "reproduction"):
        out[name], out[f"{name}_table"] = str(tmp_path / f"{name}.png"), str(tmp_path / f"{name}.csv")
    drawn = write_questions(metrics, files, out, REPORT)
    payload = json.dumps({"metrics": metrics, "files": files, "report": REPORT})
    proc = subprocess.run([sys.executable, "-c", NO_MATPLOTLIB, payload], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sentences = json.loads(proc.stdout)
    assert set(sentences) == set(QUESTIONS)
    assert sentences == {name: drawn[name]["sentence"] for name in sentences}
