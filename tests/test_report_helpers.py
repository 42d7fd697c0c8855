"""Hand-made results trees for the report tests: metrics.json, logs/csv/metrics.csv, harness.json and
latency.json shaped like the files the train and evaluation stages write (no training needed).
(A helper module: it holds no tests.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

GRID = {"learning_rate": [0.001, 0.0005], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]}
PARAMS = {"retnet": 120_000, "transformer": 100_000, "longnet": 101_000}


def point_path(point: dict) -> str:
    """The Paramspace instance pattern of rules/common.smk (filename_params="*": one directory)."""
    return "_".join(f"{k}~{v}" for k, v in point.items())


def points(grid=GRID) -> list[dict]:
    import itertools

    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def metrics_json(arch: str, seed: int, point: dict, test_loss: float) -> dict:
    """The keys archbench.training.run.train_run writes (values made up)."""
    return {
        "arch": arch,
        "seed": seed,
        "hparams": {**point, "layers": 1, "batch_size": 8, "max_steps": 30, "betas": [0.9, 0.98]},
        "model_config": {"embed_dim": point["embed_dim"], "ffn_dim": point["ffn_dim"] + (8 if arch != "retnet" else 0)},
        "params_total": PARAMS[arch],
        "params_non_embedding": PARAMS[arch] - 16_000,
        "global_step": 30,
        "resumed_from_step": 0,
        "epochs_completed": 1,
        "early_stopped": False,
        "tokens_seen": 7680,
        "train_time_s": 10.0 + seed,
        "tokens_per_s": 768.0 - seed,
        "val_loss": test_loss + 0.01,
        "val_ppl": math.exp(test_loss + 0.01),
        "best_val_loss": test_loss + 0.01,
        "test_loss": test_loss,
        "test_ppl": math.exp(test_loss),
        "uniform_loss": math.log(512),
        "best_checkpoint": None,
        "device": "cpu",
        "world_size": 1,
        "threads": 2,
        "emissions_kg": 1e-6 * (1 + seed),
        "energy_kwh": 2e-6 * (1 + seed),
        "emissions_duration_s": 10.0,
        "train_flops_per_token": 6.0 * (PARAMS[arch] - 16_000),
        "provenance": provenance_block(),
    }


def provenance_block(commit: str = "abc1234", gpu: str | None = None, torch: str = "2.9.0") -> dict:
    """The keys of archbench.provenance.provenance_block (values made up)."""
    return {
        "archbench": "0.1.0",
        "git": {"commit": commit, "dirty": False},
        "versions": {"python": "3.12.0", "torch": torch},
        "os": "Linux",
        "cpu": "Test CPU",
        "threads": 2,
        "gpu": {"name": gpu, "driver": "1", "cuda": "12"} if gpu else None,
        "device": "cpu",
        "precision": "32-true",
        "settings_hash": "f00d",
        "tokenizer_sha256": "beef",
        "data_fingerprint": "cafe",
        "started": "2026-12-05T10:00:00Z",
        "finished": "2026-12-05T10:05:00Z",
    }


def curve_csv(test_loss: float) -> str:
    """Lightning CSVLogger layout: train rows and validation rows interleaved, blanks elsewhere."""
    lines = ["epoch,lr,step,train_loss,val_loss"]
    for step in range(5, 31, 5):
        lines.append(f"0,0.001,{step - 1},{test_loss + 3.0 / step},")
        if step % 10 == 0:
            lines.append(f"0,,{step - 1},,{test_loss + 2.0 / step}")
    return "\n".join(lines) + "\n"


def latency_json(arch: str) -> dict:
    """archbench.evaluation.latency's schema: entries per mode x context x batch size, plus a summary."""
    mode = "recurrent" if arch == "retnet" else "kv_cache"
    entries = []
    for context in (64, 256, 1024):
        for batch in (1, 4):
            ms = 2.0 if arch == "retnet" else 2.0 + context / 100
            state = 4096 if arch == "retnet" else 64 * context
            entries.append(
                {
                    "arch": arch,
                    "mode": mode,
                    "context": context,
                    "batch_size": batch,
                    "decode_ms_median": ms * batch,
                    "state_bytes": state * batch,
                    "beyond_trained_length": False,
                }
            )
        if context <= 256:  # the original study's method: no state carried
            entries.append(
                {
                    "arch": arch,
                    "mode": "recompute",
                    "context": context,
                    "batch_size": 1,
                    "decode_ms_median": 5.0 * context,
                    "state_bytes": None,
                }
            )
    entries.append({"arch": arch, "mode": mode, "context": 4096, "batch_size": 1, "skipped": "beyond max_seq_len"})
    return {"entries": entries, "summary": {"arch": arch, "decode_growth": {mode: 1.0}}}


def harness_json() -> dict:
    """archbench.evaluation.harness's schema (",none" already dropped, non-finite values null)."""
    return {
        "results": {
            "lambada_local": {
                "alias": "lambada_local",
                "acc": 0.25,
                "acc_stderr": 0.01,
                "perplexity": 120.5,
                "word_perplexity": None,
            }
        },
        "config": {"arch": "retnet", "limit": 40},
    }


def make_tree(root: Path, losses: dict, grid=GRID, eval_files: bool = True, skip=()) -> list[dict]:
    """Write results/runs (+ results/eval) for `losses[(arch, point_index, seed)] = test_loss`.
    Runs in `skip` get no files (a missing run). Returns every expected run's record (as
    rules/common.smk's run_records builds them; harness / latency files only with `eval_files`)."""
    from archbench.report.collect import run_record

    records = []
    pts = points(grid)
    for (arch, index, seed), loss in losses.items():
        rel = f"{arch}/{point_path(pts[index])}/seed~{seed}"
        run = root / "runs" / rel
        ev = root / "eval" / rel
        files = {"metrics": str(run / "metrics.json")}
        if eval_files:
            files.update(harness=str(ev / "harness.json"), latency=str(ev / "latency.json"))
        records.append(run_record(arch, seed, point_path(pts[index]), pts[index], **files))
        if (arch, index, seed) in skip:
            continue
        (run / "logs" / "csv").mkdir(parents=True, exist_ok=True)
        (run / "model").mkdir(exist_ok=True)
        (run / "model" / "config.json").write_text("{}")
        (run / "metrics.json").write_text(json.dumps(metrics_json(arch, seed, pts[index], loss)))
        (run / "logs" / "csv" / "metrics.csv").write_text(curve_csv(loss))
        if eval_files:
            ev.mkdir(parents=True, exist_ok=True)
            (ev / "latency.json").write_text(json.dumps(latency_json(arch)))
            (ev / "harness.json").write_text(json.dumps(harness_json()))
    return records
