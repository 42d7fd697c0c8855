"""The exact `sbatch` command lines the Slurm plugin emits for the GPU and multi-node rule shapes.

The local cluster has no GPU and one node, so these shapes cannot run there. A recording `sbatch` placed
first on PATH captures each command and refuses the submission: the one place where a stand-in is right,
because the object under test IS the command line. (Running jobs are tested on a real Slurm in
test_slurm.py.) The plugin queries the cluster at start-up, so these tests also need a reachable Slurm."""

from __future__ import annotations

import sys

import pytest

from slurm_helpers import FAST, PROFILE, cluster_reason, recorded, recording_sbatch, sbatch_line
from workflow_helpers import snakemake, tiny_config

pytestmark = [pytest.mark.slurm, pytest.mark.skipif(cluster_reason() is not None, reason=str(cluster_reason()))]

RUN = "retnet/learning_rate~0.01_embed_dim~32_ffn_dim~64_heads~2_seq_len~32/seed~0"
MODEL_RUN = RUN.replace("retnet", "transformer")


def _prepare(work, training):
    """Inputs of train (tokens, tokenizer) and of the evaluation of a finished transformer run, upstream
    first, so that exactly train(retnet), harness and latency(transformer) are to be run."""
    work.mkdir(parents=True, exist_ok=True)
    cfg = tiny_config(
        work,
        archs=["retnet", "transformer"],
        training=training,
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
    )
    res = work / "results"
    files = [
        "data/raw/00000-kjv.parquet",
        "data/raw/00000-kjv.json",
        "data/split/stats/00000-kjv.json",
        *[f"data/split/{s}/00000-kjv.parquet" for s in ("train", "validation", "test")],
        "tokenizer/tokenizer.json",
        "tokenizer/tokenizer_config.json",
        *[
            f"tokens/{s}/{f}"
            for s in ("train", "validation", "test")
            for f in ("00000-kjv.bin", "00000-kjv.json", "index.json")
        ],
        *[
            f"eval/tasks/{t}.{ext}"
            for t in ("archbench_ppl", "archbench_cloze", "archbench_lastword")
            for ext in ("yaml", "jsonl")
        ],
        f"runs/{MODEL_RUN}/metrics.json",
        f"runs/{MODEL_RUN}/model/config.json",
    ]
    for rel in files:
        (res / rel).parent.mkdir(parents=True, exist_ok=True)
        (res / rel).write_text("{}")
    return cfg, [
        str(res / f"runs/{RUN}/metrics.json"),
        str(res / f"eval/{MODEL_RUN}/harness.json"),
        str(res / f"eval/{MODEL_RUN}/latency.json"),
    ]


def _capture(tmp_path, training):
    work = tmp_path / "w"
    cfg, targets = _prepare(work, training)
    env = recording_sbatch(tmp_path / "bin", tmp_path / "sbatch-calls", forward=None)
    snakemake(
        work,
        *targets,
        "--profile",
        str(PROFILE),
        *FAST,
        "--retries",
        "1",
        configfile=cfg,
        check=False,
        env=env,
        timeout=600,
    )
    calls = recorded(tmp_path / "sbatch-calls")
    print("\n" + "\n".join(f"{c['rule']}: {sbatch_line(c, work)}" for c in calls))
    by_rule = {}
    for c in calls:
        by_rule.setdefault(c["rule"], []).append(c["flags"])
    assert set(by_rule) == {"train", "harness", "latency"}, by_rule
    return by_rule


def _opts(flags):
    return set(flags[1:])


def test_single_gpu_train_and_gpu_evaluation(tmp_path):
    by_rule = _capture(tmp_path, {"accelerator": "gpu", "devices": 1, "max_steps": 10})
    first, retry = by_rule["train"]
    assert {"--gpus=1", "--cpus-per-gpu=8", "--mem", "64000", "-t", "720", "--requeue", "--signal=URG@300"} <= _opts(
        first
    )
    # no --ntasks / --nodes for a one-node GPU job, no account; `-p` is the cluster's default partition,
    # which the plugin looks up itself (the profile sets none)
    assert not any(f.startswith(("--ntasks", "--nodes", "-A", "--account")) for f in first)
    assert {"--mem", "128000", "-t", "1440"} <= _opts(retry)  # attempt 2 doubles memory and time
    for rule, minutes in (("harness", "120"), ("latency", "60")):
        assert {"--gpus=1", "--cpus-per-gpu=4", "--mem", "32000", "-t", minutes} <= _opts(by_rule[rule][0])


def test_multi_gpu_single_node_train_asks_one_task_with_all_gpus(tmp_path):
    by_rule = _capture(tmp_path, {"accelerator": "gpu", "devices": 4, "max_steps": 10})
    first = _opts(by_rule["train"][0])
    assert {"--gpus=4", "--cpus-per-gpu=8"} <= first  # Lightning spawns the 4 processes in the job
    assert not any(f.startswith(("--ntasks", "--nodes")) for f in first)


def test_multi_node_train_asks_nodes_tasks_and_gpus_per_node(tmp_path):
    by_rule = _capture(tmp_path, {"accelerator": "gpu", "devices": 4, "num_nodes": 2, "max_steps": 10})
    first = _opts(by_rule["train"][0])
    assert {
        "--nodes=2",
        "--ntasks-per-node=4",
        "--gres=gpu:4",
        "--ntasks-per-gpu=1",
        "--cpus-per-gpu=8",
        "--signal=URG@300",
        "--requeue",
    } <= first
    wrap = next(
        a
        for a in next(c["argv"] for c in recorded(tmp_path / "sbatch-calls") if c["rule"] == "train")
        if a.startswith("--wrap=")
    )
    assert "slurm-jobstep" in wrap  # the batch script runs Snakemake, whose shell runs `srun --nodes=2 ...`


def test_multi_node_job_starts_one_rank_per_device_with_srun():
    """The batch script runs the train job, whose adapter starts `srun`: one rank per device, each
    running the multi-node entry point with the same `train_run` arguments."""
    import json

    from archbench.training import cluster

    args = {"arch": "retnet", "seed": 1, "settings": {"devices": 4, "num_nodes": 2}}
    cmd = cluster.launch_command(args)
    assert cmd[:6] == ["srun", "--nodes=2", "--ntasks-per-node=4", sys.executable, "-m", "archbench.training.cluster"]
    assert json.loads(cmd[6]) == args
