"""Issue 32, item 1: one writer per run, whatever was killed.

Fast: the writer lock between real processes (holder line, release at death, ranks), and temporaries
that only their own writer's death frees. Tier `faults`: the exact sequence of the issue on the real
pipeline: kill -9 of Snakemake while `train` runs, `snakemake --unlock`, rerun (refused, naming the
orphan; never a second writer), and once the orphan has ended a rerun that completes the run."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archbench.io import _HOST, atomic_file
from archbench.locks import WriterBusyError, hold_writer, lock_path, one_writer, release_writer
from workflow_helpers import dry_run_counts, snakemake, snakemake_popen

HOLD = (
    "import sys; from archbench.locks import hold_writer; hold_writer(sys.argv[1], 'train'); "
    "print('held', flush=True); sys.stdin.read()"
)


def holder(folder: Path) -> subprocess.Popen:
    """Another process holding `folder`'s train lock until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "held\n"
    return proc


def holder_pattern(pid: int, slurm: str = "no Slurm job") -> str:
    host = re.escape(socket.gethostname())
    return rf"train job on host {host}, pid {pid}, {slurm}, started \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{{4}}"


def test_a_second_writer_is_refused_naming_the_holder_until_it_dies(tmp_path):
    other = holder(tmp_path)
    with pytest.raises(WriterBusyError) as err:
        hold_writer(tmp_path, "train")
    assert re.fullmatch(
        rf"'{re.escape(str(tmp_path))}' is being written by another train job \({holder_pattern(other.pid)}\); "
        r"a second writer would corrupt it: wait for that job to end, or end it \(docs/safety.md\), then rerun",
        str(err.value),
    ), str(err.value)
    other.kill()  # the kernel drops a dead process's lock: no stale lock after kill -9
    other.wait()
    try:
        assert hold_writer(tmp_path, "train") is hold_writer(tmp_path, "train")  # held, and re-entrant
        assert lock_path(tmp_path, "train").read_text().startswith(f"train job on host {socket.gethostname()}, ")
        hold_writer(tmp_path, "harness")  # another job's output in the same folder: its own lock
    finally:
        release_writer(tmp_path, "train")
        release_writer(tmp_path, "harness")


def test_the_holder_line_names_the_slurm_job(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    try:
        hold_writer(tmp_path, "train")
        assert re.fullmatch(
            holder_pattern(os.getpid(), "Slurm job 4242") + "\n", lock_path(tmp_path, "train").read_text()
        )
    finally:
        release_writer(tmp_path, "train")


def test_other_ranks_of_a_job_work_under_its_lock(tmp_path, monkeypatch):
    other = holder(tmp_path)
    try:
        monkeypatch.setenv("LOCAL_RANK", "1")  # a DDP process Lightning started for the holding job
        assert hold_writer(tmp_path, "train") is None
    finally:
        other.stdin.close()
        other.wait()


def test_a_refused_job_script_exits_with_one_line_and_leaves_the_holders_log(tmp_path):
    class Job:
        rule = "train"
        output = [str(tmp_path / "run" / "metrics.json")]
        log = [str(tmp_path / "train.log")]

    Path(Job.log[0]).write_text("step 10 of the running job\n")
    other = holder(tmp_path / "run")
    try:
        with pytest.raises(SystemExit) as done:
            one_writer(Job)
        line = str(done.value.code)
        assert line.startswith(f"archbench: '{tmp_path / 'run'}' is being written by another train job (train job")
        assert f"pid {other.pid}" in line and "\n" not in line
        assert Path(Job.log[0]).read_text() == f"step 10 of the running job\nWriterBusyError: {line[11:]}\n"
    finally:
        other.stdin.close()
        other.wait()
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_temporaries_are_per_writer_and_only_a_dead_writers_are_removed(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, live = int(gone.stdout), os.getppid()
    names = {
        "dead": f".metrics.json.w{dead}-{_HOST}.abcd1234.tmp",
        "live": f".metrics.json.w{live}-{_HOST}.abcd1234.tmp",
        "other_host": f".metrics.json.w{dead}-00000000.abcd1234.tmp",  # another machine's live writer
        "old_other_host": f".metrics.json.w{dead}-00000000.efgh5678.tmp",
        "unnamed": ".metrics.json.ab12cd_9.tmp",  # written before temporaries named their writer
    }
    for name in names.values():
        (tmp_path / name).write_text("partial")
    day_ago = time.time() - 25 * 3600
    os.utime(tmp_path / names["old_other_host"], (day_ago, day_ago))
    with atomic_file(tmp_path / "metrics.json") as tmp:
        assert tmp.name.startswith(f".metrics.json.w{os.getpid()}-{_HOST}.")  # this writer's own name
        tmp.write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["live"], names["other_host"], "metrics.json"])


# ---- the sequence of the issue, on the real pipeline (tier faults) -----------------------------------

POINT = "learning_rate~0.01_embed_dim~32_ffn_dim~64_heads~2_seq_len~32"
RUN = f"retnet/{POINT}/seed~0"
METRICS = f"results/runs/{RUN}/metrics.json"
MAX_STEPS = 120


def orphan_config(workdir: Path) -> None:
    import yaml

    config = {
        "results": "results",
        "data": {"source": "default", "max_documents": 60},
        "splits": {"train": 0.8, "validation": 0.1, "test": 0.1},
        "tokenizer": {"vocab_size": 512},
        "archs": ["retnet"],
        "grid": {"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
        "model": {"layers": 1},
        "training": {
            "batch_size": 8,
            "max_steps": MAX_STEPS,
            "warmup_steps": 5,
            "val_check_interval": 60,
            "checkpoint_every_n_steps": 10,
            "log_every_n_steps": 10,
            "early_stopping": {"enabled": False},
        },
        "emissions": {"enabled": False},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return snakemake(workdir, "--cores", "1", *args, configfile=workdir / "config.yaml", check=False, timeout=None)


def train_jobs(workdir: Path) -> list[int]:
    """Processes running Snakemake's copy of workflow_scripts/train.py in `workdir`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace").rstrip("\0")
            if ".snakemake/scripts/" in cmd and cmd.endswith("train.py") and os.readlink(proc / "cwd") == str(workdir):
                if _state(int(proc.name)) != "Z":
                    pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids


def _state(pid: int) -> str | None:
    """The process state letter (Z: a zombie, i.e. ended), None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[0]


def wait_for(condition, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.faults
def test_kill_9_of_snakemake_unlock_and_rerun_never_makes_two_writers(tmp_path):
    orphan_config(tmp_path)
    log = open(tmp_path / "first.out", "w")  # noqa: SIM115 - the orphan keeps writing to it
    first = snakemake_popen(
        tmp_path, "--cores", "1", METRICS, configfile=tmp_path / "config.yaml", stdout=log, text=False
    )
    scratch = tmp_path / "results" / "scratch" / RUN
    wait_for(lambda: (scratch / "last.ckpt").exists() or first.poll() is not None, "the first checkpoint")
    assert first.poll() is None, (tmp_path / "first.out").read_text()[-3000:]
    (orphan,) = train_jobs(tmp_path)
    os.kill(orphan, signal.SIGSTOP)  # hold the orphan mid-run (alive, lock held) while the rerun tries
    try:
        first.kill()  # kill -9 of Snakemake: the train job lives on, re-parented
        first.wait()
        assert _state(orphan) == "T"
        unlock = run(tmp_path, "--unlock")
        assert unlock.returncode == 0, unlock.stderr[-2000:]
        ckpts = {p.name: p.stat().st_mtime_ns for p in scratch.iterdir()}
        rerun = run(tmp_path, METRICS)
        assert rerun.returncode == 1
        refusal = [ln for ln in rerun.stderr.splitlines() if ln.startswith("archbench: ")]
        assert len(refusal) == 1 and re.fullmatch(
            rf"archbench: 'results/runs/{re.escape(RUN)}' is being written by another train job "
            rf"\({holder_pattern(orphan)}\); a second writer would corrupt it: wait for that job to end, "
            r"or end it \(docs/safety.md\), then rerun",
            refusal[0],
        ), rerun.stderr[-3000:]
        assert train_jobs(tmp_path) == [orphan]  # no second writer was ever started past the lock
        assert {p.name: p.stat().st_mtime_ns for p in scratch.iterdir()} == ckpts  # its state untouched
    finally:
        os.kill(orphan, signal.SIGCONT)
    wait_for(lambda: _state(orphan) in (None, "Z"), "the orphan to end")
    log.close()
    # Snakemake never recorded the orphan's outputs as complete: the rerun (as the refusal says) redoes
    # the run from the orphan's last checkpoint, the one writer now
    final = run(tmp_path, METRICS, "--rerun-incomplete")
    assert final.returncode == 0, final.stderr[-3000:]
    metrics = json.loads((tmp_path / METRICS).read_text())
    assert metrics["global_step"] == MAX_STEPS
    assert (tmp_path / "results" / "runs" / RUN / "model" / "config.json").exists()
    assert not [p for p in (tmp_path / "results" / "runs" / RUN).rglob(".*.tmp")]
    assert dry_run_counts(tmp_path, METRICS, configfile=tmp_path / "config.yaml") == {}  # complete
