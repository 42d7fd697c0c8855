"""A tiny pipeline through a REAL Slurm (`snakemake --profile profiles/slurm`): every non-local job goes
through sbatch, finishes COMPLETED in sacct with a plugin log, training uses two processes launched by
Lightning inside the Slurm job step, and the outputs have the same structure as a local run's.

Needs a running cluster (.ci/run starts one with .ci/slurm/start.sh); skipped otherwise."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest

from slurm_helpers import FAST, PROFILE, cluster_reason, recorded, recording_sbatch, sbatch_line
from workflow_helpers import SNAKEFILE, dry_run_counts, snakemake, snakemake_popen, tiny_config

pytestmark = [pytest.mark.slurm, pytest.mark.skipif(cluster_reason() is not None, reason=str(cluster_reason()))]


def local_rules() -> set[str]:
    """The rules named in the workflow's `localrules:` blocks (they run on the submitting node)."""
    names = set()
    for path in [SNAKEFILE, *sorted((SNAKEFILE.parent / "rules").glob("*.smk"))]:
        for block in re.findall(r"^localrules:\n((?:[ \t]+\w+,.*\n)+)", path.read_text(), re.M):
            names |= set(re.findall(r"^[ \t]+(\w+),", block, re.M))
    return names


LOCAL_RULES = local_rules()
# One arch, one grid point, 10 steps on CPU with 2 processes (devices: 2), tiny evaluation.
TINY = dict(
    archs=["retnet"],
    grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
    training={
        "batch_size": 8,
        "max_steps": 10,
        "warmup_steps": 2,
        "val_check_interval": 5,
        "checkpoint_every_n_steps": 5,
        "log_every_n_steps": 5,
        "accelerator": "cpu",
        "devices": 2,
    },
    eval={"limit": 4, "batch_size": 4},
    latency={
        "contexts": [16],
        "batch_sizes": [1],
        "new_tokens": 2,
        "trials": 1,
        "warmup": 0,
        "recompute_max_context": 16,
    },
)
# The local cluster has 2 CPUs, ~20 GB and no GPU: small CPUs/memory, no GPUs. On the command line a
# --set-resources replaces the profile's whole list, so every submitted rule is listed again here.
SMALL = [
    "--set-threads",
    *[
        f"{r}=1"
        for r in ("download", "split", "train_tokenizer", "tokenize", "eval_tasks", "harness", "latency", "generate")
    ],
    "train=2",
    "--set-resources",
    *[
        f"{r}:mem_mb=1500"
        for r in (
            "download",
            "split",
            "train_tokenizer",
            "tokenize",
            "eval_tasks",
            "train",
            "harness",
            "latency",
            "generate",
        )
    ],
    *[f"{r}:gpu=0" for r in ("train", "harness", "latency", "generate")],
    "train:slurm_extra='--signal=URG@60'",
]


def _files(root):
    """Relative file paths; TensorBoard event files are named after time and pid, so only their place counts."""
    return {
        re.sub(r"events\.out\.tfevents\..*", "events.out.tfevents.*", str(p.relative_to(root)))
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    work, local = tmp_path_factory.mktemp("slurm_run"), tmp_path_factory.mktemp("local_run")
    cfg, local_cfg = tiny_config(work, **TINY), tiny_config(local, **TINY)
    target, local_target = str(work / "results/report/summary.md"), str(local / "results/report/summary.md")
    expected = {r: n for r, n in dry_run_counts(work, target, configfile=cfg).items() if r not in LOCAL_RULES}
    # The local reference runs meanwhile: the Slurm run mostly waits on status checks.
    local_proc = snakemake_popen(local, local_target, "--cores", "2", configfile=local_cfg)
    env = recording_sbatch(work / "bin", work / "sbatch-calls", forward=_real_sbatch())
    start = time.perf_counter()
    proc = snakemake(work, target, "--profile", str(PROFILE), *FAST, *SMALL, configfile=cfg, check=False, env=env)
    seconds = time.perf_counter() - start
    out = local_proc.communicate(timeout=900)[0]
    assert local_proc.returncode == 0, out[-4000:]
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-8000:]}"
    print(f"\nslurm run: {seconds:.0f} s for {sum(expected.values())} Slurm jobs")
    return work, local, proc.stdout + proc.stderr, expected


def _real_sbatch():
    return shutil.which("sbatch")


def test_every_non_local_job_went_through_sbatch(slurm_run):
    work, _, log, expected = slurm_run
    calls = recorded(work / "sbatch-calls")
    counts = {}
    for call in calls:
        counts[call["rule"]] = counts.get(call["rule"], 0) + 1
    assert counts == expected, (counts, expected)
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", log)
    assert len(submitted) == sum(expected.values())
    ids = ",".join(jobid for jobid, _ in submitted)
    sacct = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", ids, "--format=JobID,State"], capture_output=True, text=True, check=True
    ).stdout
    states = dict(line.split("|") for line in sacct.split())
    assert states == {jobid: "COMPLETED" for jobid, _ in submitted}, states
    for jobid, path in submitted:  # the plugin's per-job log, kept by the profile
        text = (work / path).read_text() if not path.startswith("/") else open(path).read()
        assert "Finished job" in text or "finished" in text.lower(), (jobid, text[-500:])
    print("\n" + "\n".join(f"{c['rule']}: {sbatch_line(c, work)}" for c in calls))


def test_local_rules_ran_on_the_submitting_node(slurm_run):
    work, _, _, _ = slurm_run
    assert not {c["rule"] for c in recorded(work / "sbatch-calls")} & LOCAL_RULES
    assert (work / "results/report/summary.md").stat().st_size > 0


def test_outputs_have_the_structure_of_a_local_run(slurm_run):
    work, local, _, _ = slurm_run
    assert _files(work / "results") == _files(local / "results")


def test_training_ran_two_processes_in_the_slurm_job_step(slurm_run):
    work, _, _, _ = slurm_run
    metrics = next((work / "results/runs/retnet").rglob("metrics.json"))
    m = json.loads(metrics.read_text())
    assert m["world_size"] == 2 and m["global_step"] == 10
