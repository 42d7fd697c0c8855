"""Two nodes for real (.ci/slurm/start.sh: ab-node1 and ab-node2, each slurmd in its own network and UTS
namespace): `snakemake --profile profiles/slurm` with `training: {num_nodes: 2, devices: 1}` trains ONE
run with one rank per node (gloo over the nodes' private link), and

- its loss curve equals the single-node two-process run of the same settings (same global batch, same
  sampler; a local `snakemake` with devices 2) within 1e-6;
- the per-shard download / split / tokenize jobs of a 2-shard corpus ran on both nodes (sacct);
- SIGKILL of the rank on ab-node2 mid-run fails the job naming that rank and node on the console, with
  nothing complete-looking left, and the rerun resumes from the last checkpoint and ends with the
  uninterrupted run's numbers.

Needs the two-node cluster; skipped otherwise. The data of the fault run is the first run's (same folder)."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from slurm_helpers import FAST, PROFILE, cluster_reason
from workflow_helpers import snakemake_popen, tiny_config

NODES = ("ab-node1", "ab-node2")


def _two_nodes_reason() -> str | None:
    reason = cluster_reason()
    if reason:
        return reason
    names = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True).stdout.split()
    if not set(NODES) <= set(names):
        return f"the cluster has nodes {sorted(set(names))}, not {list(NODES)} (.ci/slurm/start.sh makes them)"
    return None


pytestmark = [pytest.mark.slurm, pytest.mark.skipif(_two_nodes_reason() is not None, reason=str(_two_nodes_reason()))]

# 12 steps of 8 windows (4 per rank), a resumable checkpoint every 4 steps, the loss logged every step.
TRAINING = {
    "batch_size": 4,
    "max_steps": 12,
    "warmup_steps": 2,
    "val_check_interval": 4,
    "checkpoint_every_n_steps": 4,
    "log_every_n_steps": 1,
    "accelerator": "cpu",
    "early_stopping": {"enabled": False},
    "dist_timeout_s": 120,
}
SHARDS = 2  # one per node; each stage's shard jobs run at once, so LLN puts them on different nodes
# One CPU and 1.5 GB per job on the small local cluster; the data jobs take one CPU each anyway.
SMALL = [
    "--set-threads",
    "train=1",
    "train_tokenizer=1",
    "--set-resources",
    *[f"{r}:mem_mb=1500" for r in ("download", "split", "train_tokenizer", "tokenize", "train")],
    "train:slurm_extra='--signal=URG@60'",
]
DATA_RULES = ("download", "split", "tokenize")


def _corpus(folder: Path) -> Path:
    """A JSON-lines corpus of SHARDS files (one shard each) of plain sentences."""
    rng = random.Random(0)
    words = "the a quick brown fox dog jumps over lazy river stone light day night and of to in".split()
    for i in range(SHARDS):
        docs = [" ".join(rng.choice(words) for _ in range(rng.randint(40, 120))) + "." for _ in range(80)]
        (folder / f"part-{i}.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return folder


def _config(work: Path, corpus: Path, **training) -> Path:
    return tiny_config(
        work,
        data={"source": "local", "path": str(corpus)},
        archs=["retnet"],
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
        training={**TRAINING, **training},
        emissions={"enabled": False},
    )


def _snakemake(work: Path, cfg: Path, *extra: str, slurm: bool = True) -> subprocess.Popen:
    how = ["--profile", str(PROFILE), *FAST, *SMALL, *extra] if slurm else ["--cores", "2", *extra]
    return snakemake_popen(work, "--until", "train", *how, configfile=cfg)


def _finish(proc: subprocess.Popen, expect_rc: int = 0) -> str:
    out = proc.communicate(timeout=900)[0]
    assert proc.returncode == expect_rc, out[-8000:]
    return out


def _run_dir(work: Path) -> Path:
    return next((work / "results/runs/retnet").glob("*/seed~0"))


def _curve(run_dir: Path) -> dict[int, float]:
    """{step: train loss} of the run's CSV log."""
    with open(run_dir / "logs/csv/metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train_loss")]
    return {int(r["step"]): float(r["train_loss"]) for r in rows}


def _jobs(log: str) -> dict[str, str]:
    """{Slurm job id: rule} of the jobs a Snakemake run submitted (the plugin's log path names the rule)."""
    return dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+?)/", log))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The two-node run (Slurm) and the single-node two-process run (local) at once; then, in the two-node
    run's folder, its training again with the rank on ab-node2 killed after the step-4 checkpoint, and the rerun."""
    corpus = _corpus(tmp_path_factory.mktemp("corpus"))
    work, local = tmp_path_factory.mktemp("two_nodes"), tmp_path_factory.mktemp("one_node")
    start = time.perf_counter()
    local_proc = _snakemake(
        local, _config(local, corpus, devices=2, num_nodes=1), "--set-threads", "train=1", slurm=False
    )
    two = _snakemake(work, _config(work, corpus, devices=1, num_nodes=2))
    two_log = _finish(two)
    local_log = _finish(local_proc)
    print(f"\ntwo-node run incl. data: {time.perf_counter() - start:.0f} s")
    run = _run_dir(work)
    result = {
        "work": work,
        "log": two_log,
        "curve": _curve(run),
        "metrics": json.loads((run / "metrics.json").read_text()),
        "local_curve": _curve(_run_dir(local)),
        "local_metrics": json.loads((_run_dir(local) / "metrics.json").read_text()),
        "local_log": local_log,
    }

    # The fault: the same run from scratch, its rank 1 (on ab-node2) SIGKILLed once the step-4 checkpoint is in.
    scratch = next((work / "results/scratch/retnet").glob("*/seed~0"))
    shutil.rmtree(run)
    shutil.rmtree(scratch)
    killed = _snakemake(work, work / "config.yaml", "--retries", "0")
    victim = _kill_rank_after_checkpoint(scratch / "last.ckpt", rank=1, node="ab-node2")
    result["killed_log"] = _finish(killed, expect_rc=1)
    result["victim"] = victim
    result["left"] = sorted(str(p.relative_to(work)) for p in run.rglob("*")) if run.exists() else []
    result["rerun_log"] = _finish(_snakemake(work, work / "config.yaml"))
    result["rerun_metrics"] = json.loads((run / "metrics.json").read_text())
    result["rerun_curve"] = _curve(run)
    print(f"two-node runs, fault and rerun: {time.perf_counter() - start:.0f} s")
    return result


def _rank_pid(rank: int, node: str) -> int | None:
    """The training process of `rank` (a `python -m archbench.training.cluster` task that srun started)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            env = dict(kv.split(b"=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        if (
            b"archbench.training.cluster" in cmd
            and not cmd[0].endswith(b"srun")
            and env.get(b"SLURM_PROCID") == str(rank).encode()
            and env.get(b"SLURMD_NODENAME") == node.encode()
        ):
            return int(pid)
    return None


def _kill_rank_after_checkpoint(checkpoint: Path, rank: int, node: str) -> dict:
    deadline = time.time() + 600
    while not checkpoint.exists():
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    pid = _rank_pid(rank, node)
    assert pid, f"rank {rank} on {node} not found"
    host = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"], capture_output=True, text=True).stdout
    os.kill(pid, signal.SIGKILL)
    return {"pid": pid, "hostname": host.strip()}


def test_one_run_trained_with_one_rank_on_each_node(runs):
    m = runs["metrics"]
    assert m["world_size"] == 2 and m["world_sizes"] == [2] and m["global_step"] == 12
    assert m["hparams"]["num_nodes"] == 2 and m["hparams"]["devices"] == 1
    [train_job] = [jobid for jobid, rule in _jobs(runs["log"]).items() if rule == "train"]
    steps = subprocess.run(
        ["sacct", "-n", "-P", "-j", train_job, "--format=JobID,NodeList,NTasks,State"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print("\n" + steps)
    step = [line.split("|") for line in steps.split() if re.match(rf"{train_job}\.0\|", line)]
    assert step == [[f"{train_job}.0", "ab-node[1-2]", "2", "COMPLETED"]], steps


def test_loss_curve_equals_the_single_node_two_process_run(runs):
    two, one = runs["curve"], runs["local_curve"]
    assert sorted(two) == list(range(12)) or sorted(two) == list(range(1, 13)), sorted(two)
    assert sorted(two) == sorted(one)
    print("\nstep  two nodes (1 rank each)  one node (2 processes)")
    for step in sorted(two):
        print(f"{step:4d}  {two[step]:.9f}            {one[step]:.9f}")
    assert all(abs(two[s] - one[s]) <= 1e-6 for s in two), {s: two[s] - one[s] for s in two}
    a, b = runs["metrics"], runs["local_metrics"]
    assert b["world_size"] == 2 and b["hparams"]["num_nodes"] == 1
    assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)
    assert a["test_loss"] == pytest.approx(b["test_loss"], abs=1e-6)


def test_shard_jobs_ran_on_both_nodes(runs):
    jobs = _jobs(runs["log"])
    sacct = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ",".join(jobs), "--format=JobID,NodeList,State"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    where = {}
    for line in sacct.splitlines():
        jobid, nodes, state = line.split("|")
        assert state == "COMPLETED", line
        where.setdefault(jobs[jobid], []).append(nodes)
    print("\n" + "\n".join(f"{rule}: {nodes}" for rule, nodes in sorted(where.items())))
    for rule in DATA_RULES:
        assert len(where[rule]) >= SHARDS, where
    assert {n for rule in DATA_RULES for n in where[rule]} == set(NODES), where


def test_killing_the_rank_on_the_second_node_fails_the_job_naming_it(runs):
    assert runs["victim"]["hostname"] == "ab-node2"
    log = runs["killed_log"]
    assert re.search(r"srun exited with status \d+ \(rank 1 on ab-node2: Killed", log), log[-6000:]
    assert "Error in rule train" in log
    complete_looking = [p for p in runs["left"] if p.endswith("metrics.json") or "/model" in p]
    assert not complete_looking, runs["left"]


def test_the_rerun_resumes_and_ends_with_the_uninterrupted_numbers(runs):
    m, ref = runs["rerun_metrics"], runs["metrics"]
    # killed as soon as the step-4 checkpoint appeared: 4 unless the ranks ran 4 more steps meanwhile
    assert m["resumed_from_step"] in (4, 8) and m["world_sizes"] == [2, 2], m
    print(f"\nresumed from step {m['resumed_from_step']}")
    assert m["global_step"] == 12
    assert m["val_loss"] == pytest.approx(ref["val_loss"], abs=1e-6)
    assert m["test_loss"] == pytest.approx(ref["test_loss"], abs=1e-6)
    curve = runs["rerun_curve"]
    assert sorted(curve) == sorted(runs["curve"])
    assert all(abs(curve[s] - runs["curve"][s]) <= 1e-6 for s in curve)
