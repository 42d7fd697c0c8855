"""A real kill: SIGKILL the training job's process after its first periodic checkpoint, rerun the same
Snakemake target, and check that training resumed from that checkpoint and still ends at max_steps."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from workflow_helpers import snakemake, snakemake_popen, tiny_config

pytestmark = pytest.mark.faults  # killed training jobs, then the resume

RUN = "retnet/learning_rate~0.01_embed_dim~32_ffn_dim~64_heads~2_seq_len~32/seed~0"


def train_job_pids(workdir: Path) -> list[int]:
    """Python processes running Snakemake's copy of workflow_scripts/train.py in `workdir`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
            if ".snakemake/scripts/" in cmd and "train.py" in cmd and os.readlink(proc / "cwd") == str(workdir):
                pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids


def wait_for_checkpoint(proc: subprocess.Popen, last: Path, timeout: float = 600) -> None:
    """Wait for the first periodic checkpoint (data stages run first: slow on a loaded machine); on
    failure stop Snakemake and its jobs, so no run is left behind."""
    deadline = time.monotonic() + timeout
    while not last.exists():
        problem = (
            "snakemake ended before the first checkpoint"
            if proc.poll() is not None
            else f"no periodic checkpoint within {timeout:.0f} s"
            if time.monotonic() > deadline
            else None
        )
        if problem:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # started with start_new_session: its jobs too
            raise AssertionError(f"{problem}:\n{proc.communicate()[0][-3000:]}")
        time.sleep(0.05)


def test_sigkilled_training_resumes_from_its_last_checkpoint(tmp_path):
    cfg = tiny_config(
        tmp_path,
        archs=["retnet"],
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
        training={
            "batch_size": 8,
            "max_steps": 400,
            "warmup_steps": 5,
            "val_check_interval": 100,
            "checkpoint_every_n_steps": 20,
            "log_every_n_steps": 20,
            "early_stopping": {"enabled": False},
        },
    )
    target = str(tmp_path / "results/runs" / RUN / "metrics.json")
    last = tmp_path / "results/scratch" / RUN / "last.ckpt"
    first = snakemake_popen(tmp_path, "--cores", "1", target, configfile=cfg, start_new_session=True)
    wait_for_checkpoint(first, last)
    pids = train_job_pids(tmp_path)
    assert pids, "training process not found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    out = first.communicate(timeout=120)[0]
    assert first.returncode != 0, out[-2000:]
    assert not Path(target).exists()  # a killed job leaves no complete-looking output

    snakemake(tmp_path, "--cores", "1", target, configfile=cfg)
    metrics = json.loads(Path(target).read_text())
    assert metrics["resumed_from_step"] >= 20 and metrics["resumed_from_step"] % 20 == 0
    assert metrics["resumed_from_step"] < 400
    assert metrics["global_step"] == 400
    assert metrics["tokens_seen"] == 400 * 8 * 32


@pytest.mark.slow
def test_sigkill_of_snakemake_itself_then_unlock_and_rerun_resumes(tmp_path):
    """A dropped login session or the OOM killer: Snakemake AND its jobs die by SIGKILL. The README's
    recovery: `snakemake --unlock`, then the same command, which resumes training from its checkpoint."""
    cfg = tiny_config(
        tmp_path,
        archs=["retnet"],
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
        training={
            "batch_size": 8,
            "max_steps": 300,
            "warmup_steps": 5,
            "val_check_interval": 100,
            "checkpoint_every_n_steps": 20,
            "log_every_n_steps": 20,
            "early_stopping": {"enabled": False},
        },
    )
    target = str(tmp_path / "results/runs" / RUN / "metrics.json")
    last = tmp_path / "results/scratch" / RUN / "last.ckpt"
    command = ("--cores", "1", target)
    # its own process group, as a login session's
    first = snakemake_popen(tmp_path, *command, configfile=cfg, start_new_session=True)
    wait_for_checkpoint(first, last)
    os.killpg(first.pid, signal.SIGKILL)  # Snakemake and every job it started, no clean-up
    first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL and not Path(target).exists()

    again = snakemake(tmp_path, *command, configfile=cfg, check=False, timeout=300)
    assert again.returncode != 0 and "Directory cannot be locked" in again.stdout + again.stderr
    unlock = snakemake(tmp_path, *command, "--unlock", configfile=cfg, check=False, timeout=300)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    snakemake(tmp_path, "--cores", "1", target, configfile=cfg)  # the same command: resumes
    metrics = json.loads(Path(target).read_text())
    assert 20 <= metrics["resumed_from_step"] < 300 and metrics["resumed_from_step"] % 20 == 0
    assert metrics["global_step"] == 300
