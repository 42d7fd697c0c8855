"""Fault suite, run side (marker `faults`): bad config that would write outside `results/`, SIGKILL in
training and in an evaluation job, a truncated checkpoint, a changed setting or tokenizer before a
rerun, a full disk while checkpointing, two Snakemake instances on one results folder. Each case
asserts the exact message and that nothing complete-looking is left.

Training and evaluation run through the real Snakemake on one tiny corpus: the data stages and one
killed training run are built once per module and copied (mtimes and Snakemake's metadata kept) for
every case that reruns from there."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from workflow_helpers import dry_run_counts, snakemake, snakemake_popen

pytestmark = pytest.mark.faults

POINT = "learning_rate~0.01_embed_dim~32_ffn_dim~64_heads~2_seq_len~32"
RUN = f"retnet/{POINT}/seed~0"
METRICS = f"results/runs/{RUN}/metrics.json"
SCRATCH = f"results/scratch/{RUN}"
TRAIN_LOG = f"results/logs/train/{RUN}.log"


def write_config(workdir: Path, **sections) -> Path:
    """A one-run config (RetNet, width 32, 60 chapters), `results` relative to the working directory
    so that a copied working directory is a complete project."""
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
            "max_steps": 200,
            "warmup_steps": 5,
            "val_check_interval": 100,
            "checkpoint_every_n_steps": 10,
            "log_every_n_steps": 10,
            "early_stopping": {"enabled": False},
        },
        "emissions": {"enabled": False},
        "eval": {"limit": 8},
    }
    for section, values in sections.items():
        config[section] = {**config[section], **values} if isinstance(values, dict) else values
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def popen(workdir: Path, *targets: str) -> subprocess.Popen:
    return snakemake_popen(
        workdir, "--cores", "1", *targets, configfile=workdir / "config.yaml", start_new_session=True
    )


def job_pids(workdir: Path, script: str) -> list[int]:
    """Processes running Snakemake's copy of workflow_scripts/`script` in `workdir`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
            if (
                ".snakemake/scripts/" in cmd
                and cmd.rstrip("\0").endswith(script)
                and os.readlink(proc / "cwd") == str(workdir)
            ):
                pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids


def wait_until(proc: subprocess.Popen, ready, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"no {what}:\n{proc.communicate()[0][-3000:]}")
        time.sleep(0.05)


def kill_job(proc: subprocess.Popen, workdir: Path, script: str) -> str:
    """SIGKILL the job's process (not Snakemake); Snakemake then fails the job and exits."""
    pids = job_pids(workdir, script)
    assert pids, f"{script} job not found"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode != 0, out[-2000:]
    return out


def complete_looking(folder: Path) -> list[str]:
    """Non-hidden files under `folder` (temporaries are hidden: `.name.XXXXXXXX.tmp`)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def copy_project(src: Path, dst: Path, **config_changes) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    if config_changes:
        write_config(dst, **config_changes)
    return dst


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> Path:
    """A project whose training job was SIGKILLed after its second periodic checkpoint."""
    workdir = tmp_path_factory.mktemp("killed")
    write_config(workdir)
    proc = popen(workdir, METRICS)
    prev = workdir / SCRATCH / "last.prev.ckpt"
    wait_until(proc, prev.exists, "second periodic checkpoint")
    out = kill_job(proc, workdir, "train.py")
    assert "Error in rule train" in out
    assert not (workdir / METRICS).exists() and not (workdir / f"results/runs/{RUN}/model").exists()
    assert {"last.ckpt", "last.prev.ckpt", "run.json"} <= {p.name for p in (workdir / SCRATCH).iterdir()}
    return workdir


def ckpt_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


# ---- config that would write outside results/ -------------------------------------------------


def test_empty_results_stops_before_any_job(tmp_path):
    write_config(tmp_path, results="")
    out = snakemake(tmp_path, "-n", configfile=tmp_path / "config.yaml", check=False)
    assert out.returncode == 1
    assert (
        "archbench: invalid config: config key 'results': empty (outputs would be written at the filesystem "
        "root); give a folder"
    ) in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake") == ["config.yaml"]


def test_path_escaping_grid_value_stops_before_any_job(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    grid = {"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]}
    write_config(project, grid={**grid, "devices": ["../../../../../outside"]})
    out = snakemake(project, "-n", configfile=project / "config.yaml", check=False)
    assert out.returncode == 1
    assert (
        "archbench: invalid config: config key 'grid.devices[0]': '../../../../../outside' becomes part of an "
        "output folder's name and may only contain letters, digits, '.', '_', '+', '-', '[', ']', ',' and "
        "spaces (not first: '.')"
    ) in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # nothing planned beside it


# ---- training: kill, corrupt checkpoint, changed run ------------------------------------------


def test_sigkill_in_train_resumes_and_a_second_instance_is_refused(killed, tmp_path):
    """Rerun the same command: training resumes from the newest checkpoint. Meanwhile a second
    Snakemake on the same project (same results folder) is refused before it does anything, and so is
    one started from another project folder whose config points at the same results folder."""
    work = copy_project(killed, tmp_path / "p")
    newest = ckpt_step(work / SCRATCH / "last.ckpt")
    first = popen(work)  # the whole run: training, then its evaluations hold the folder a while longer
    wait_until(first, lambda: bool(job_pids(work, "train.py")), "train job")
    other = tmp_path / "other"
    other.mkdir()
    write_config(other, results=str(work / "results"))

    def start(workdir: Path, *targets: str) -> subprocess.Popen:
        return snakemake_popen(
            workdir, "--cores", "1", *targets, configfile=workdir / "config.yaml", stderr=subprocess.PIPE
        )

    # both at once, while the first one runs
    second, third = start(work, METRICS), start(other)
    (_, second_err), (_, third_err) = second.communicate(timeout=300), third.communicate(timeout=300)
    assert first.poll() is None, "the first run ended before the others were refused"
    assert second.returncode == 1 and "Error: Directory cannot be locked." in second_err
    assert third.returncode == 1, third_err[-3000:]
    assert (
        f"archbench: results folder '{work}/results' is in use by another run (host {os.uname().nodename}, "
        f"pid {first.pid}, project {work}, started "
    ) in third_err
    assert sorted(p.name for p in other.iterdir()) == [".snakemake", "config.yaml"]
    assert not job_pids(other, "train.py") and not (other / ".snakemake" / "scripts").exists()
    out = first.communicate(timeout=600)[0]
    assert first.returncode == 0, out[-3000:]
    metrics = json.loads((work / METRICS).read_text())
    assert metrics["resumed_from_step"] == newest and metrics["global_step"] == 200
    assert f"resuming results/runs/{RUN} from {SCRATCH}/last.ckpt" in (work / TRAIN_LOG).read_text()


def test_truncated_last_ckpt_falls_back_to_the_previous_one(killed, tmp_path):
    work = copy_project(killed, tmp_path / "p")
    last, prev = work / SCRATCH / "last.ckpt", work / SCRATCH / "last.prev.ckpt"
    previous_step = ckpt_step(prev)
    assert previous_step < ckpt_step(last)
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a node crash mid-write
    snakemake(work, "--cores", "1", METRICS, configfile=work / "config.yaml")
    log = (work / TRAIN_LOG).read_text()
    last = re.escape(f"{SCRATCH}/last.ckpt")
    assert re.search(  # torch's message goes on after the reason ("This is an internal miniz error...")
        rf"checkpoint {last} cannot be resumed \(PytorchStreamReader failed reading zip archive: "
        rf"failed finding central directory[^\n]*\); renamed to {last}\.rejected$",
        log,
        re.MULTILINE,
    )
    metrics = json.loads((work / METRICS).read_text())
    assert metrics["resumed_from_step"] == previous_step and metrics["global_step"] == 200


def test_changed_weight_decay_never_continues_the_old_state(killed, tmp_path):
    work = copy_project(killed, tmp_path / "p", training={"weight_decay": 0.1})
    old_step = ckpt_step(work / SCRATCH / "last.ckpt")
    snakemake(work, "--cores", "1", METRICS, configfile=work / "config.yaml")
    log = (work / TRAIN_LOG).read_text()
    scratch = SCRATCH
    assert (
        f"not resuming {scratch}: weight_decay 0.01 -> 0.1 changed since its checkpoints were written; "
        f"training starts from step 0 (the old state is in {scratch}.previous)"
    ) in log
    assert log.count("not resuming") == 1 and "resuming results/runs" not in log
    metrics = json.loads((work / METRICS).read_text())
    assert metrics["resumed_from_step"] == 0 and metrics["global_step"] == 200
    assert metrics["hparams"]["weight_decay"] == 0.1
    assert ckpt_step(work / f"{scratch}.previous" / "last.ckpt") == old_step  # kept aside, untouched


def test_retrained_tokenizer_never_continues_the_old_state(killed, tmp_path):
    """The tokenizer is retrained on a smaller sample: the same vocabulary size (the old weights would
    load without error) but other merges, so the old state's token ids mean other text."""
    work = copy_project(killed, tmp_path / "p", tokenizer={"sample_bytes": 60_000})
    tokenizer = work / "results/tokenizer/tokenizer.json"
    before = tokenizer.read_bytes()
    snakemake(work, "--cores", "1", METRICS, configfile=work / "config.yaml")
    assert tokenizer.read_bytes() != before
    assert len(json.loads(tokenizer.read_bytes())["model"]["vocab"]) == len(json.loads(before)["model"]["vocab"])
    log = (work / TRAIN_LOG).read_text()
    assert f"not resuming {SCRATCH}: tokenizer (tokenizer.json sha256)" in log
    assert json.loads((work / METRICS).read_text())["resumed_from_step"] == 0


# ---- evaluation: kill ---------------------------------------------------------------------------


def test_sigkill_in_an_evaluation_job_leaves_no_output_and_reruns(killed, tmp_path):
    work = copy_project(killed, tmp_path / "p", training={"max_steps": 20})  # a short run to evaluate
    snakemake(work, "--cores", "1", METRICS, configfile=work / "config.yaml")
    target = f"results/eval/{RUN}/samples.txt"
    proc = popen(work, target)
    # every evaluation rule runs the registry's one adapter (it dispatches to generate.py by rule name);
    # only the generate job runs here
    wait_until(proc, lambda: bool(job_pids(work, "evaluation.py")), "generate job")
    time.sleep(1.0)  # inside the job: imports, model loading
    out = kill_job(proc, work, "evaluation.py")
    assert "Error in rule generate" in out
    assert complete_looking(work / f"results/eval/{RUN}") == []
    assert dry_run_counts(work, "--cores", "1", target, configfile=work / "config.yaml") == {"generate": 1}


# ---- full disk while checkpointing ---------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MB tmpfs (needs root and mount rights; otherwise skipped, and tests/test_io.py's injected
    ENOSPC test covers the writer)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "--lazy", str(mnt)], check=True)


def test_full_disk_during_checkpointing_names_the_file_and_the_rerun_continues(small_fs, tmp_path, tiny_tokens):
    from archbench.training import train_run
    from test_training import settings

    scratch = small_fs / "scratch"
    kwargs = dict(
        arch="retnet",
        seed=0,
        tokens=tiny_tokens["tokens"],
        tokenizer_dir=tiny_tokens["tokenizer"],
        run_dir=str(tmp_path / "run"),
        scratch_dir=str(scratch),
        emissions={"enabled": False},
        threads=1,
    )
    ballast = small_fs / "ballast"
    ballast.write_bytes(b"\0" * (4 * 2**20 - 200_000))  # room for run.json, not for one checkpoint
    with pytest.raises(OSError) as err:
        train_run(settings=settings(), **kwargs)
    last = scratch / "last.ckpt"
    assert str(err.value) == f"[Errno 28] No space left on device while writing {last}: '{last}'"
    assert complete_looking(scratch) == ["run.json"]  # no checkpoint, whole or partial
    assert not (tmp_path / "run/metrics.json").exists() and not (tmp_path / "run/model").exists()
    ballast.unlink()
    metrics = train_run(settings=settings(), **kwargs)
    assert metrics["global_step"] == 12 and metrics["resumed_from_step"] == 0


# ---- the console shows the cause ------------------------------------------------------------------


def test_a_failed_jobs_cause_is_on_the_console(tmp_path):
    """The job scripts send tracebacks to the job's log; Snakemake alone would print only "check log
    file(s)". A truncated input file fails its download job: its last error line is on the console."""
    import gzip

    corpus = tmp_path / "corpus.jsonl.gz"
    data = gzip.compress(b"".join(json.dumps({"text": f"word {i} " * 40}).encode() + b"\n" for i in range(300)))
    corpus.write_bytes(data[: len(data) // 2])
    write_config(tmp_path, data={"source": "local", "path": str(corpus)})
    out = snakemake(
        tmp_path, "--cores", "1", "results/tokens/train/index.json", configfile=tmp_path / "config.yaml", check=False
    )
    assert out.returncode == 1
    log = "results/logs/download/00000-corpus.log"  # as Snakemake names it (results is relative)
    cause = (
        f"Cause of each failed job (the last error line of its log):\n    {log}: archbench.errors.DataError: {corpus}: "
    )
    assert cause in out.stderr
    last_line = out.stderr.split(cause)[1].splitlines()[0]
    assert last_line and last_line in (tmp_path / log).read_text()  # the exception's message, as logged
    assert complete_looking(tmp_path / "results/data") == []
