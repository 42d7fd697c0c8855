"""Run the real `snakemake` on this repository's Snakefile from tests (each test in its own directory): every
test builds its command line here (tests/test_tiers.py checks that no test module spells one itself)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"


def tiny_config(tmp_path: Path, **overrides) -> Path:
    """A config for a run that finishes in about a minute: 60 chapters of the default corpus,
    2 architectures x 2 learning rates, 1-layer models of width 32."""
    config = {
        "results": str(tmp_path / "results"),
        "data": {"source": "default", "max_documents": 60},
        "splits": {"train": 0.8, "validation": 0.1, "test": 0.1},
        "tokenizer": {"vocab_size": 512},
        "archs": ["retnet", "transformer"],
        "grid": {"learning_rate": [1.0e-2, 2.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
        "model": {"layers": 1},
        "training": {
            "batch_size": 8,
            "max_steps": 30,
            "warmup_steps": 5,
            "val_check_interval": 10,
            "checkpoint_every_n_steps": 10,
            "log_every_n_steps": 5,
        },
        "eval": {"limit": 8},
        "latency": {"contexts": [16, 64], "new_tokens": 4, "trials": 1, "recompute_max_context": 16},
        "generate": {"max_new_tokens": 8},
    }
    for key, value in overrides.items():
        section, _, sub = key.partition("__")
        if sub:
            config.setdefault(section, {})[sub] = value
        else:
            config[section] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(workdir: Path, *args: str, configfile: Path | list[Path] | None = None) -> list[str]:
    """The command line of the real `snakemake` on this repository's Snakefile, run in ``workdir``.
    ``--configfile`` (it takes several values) comes last, after every target and option."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), *args]
    if configfile is not None:
        cmd += ["--configfile", *map(str, configfile if isinstance(configfile, (list, tuple)) else [configfile])]
    return cmd


def snakemake_env(env: dict | None = None) -> dict:
    """This process' environment, the hub offline, plus ``env``."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}


def snakemake(
    workdir: Path,
    *args: str,
    configfile: Path | list[Path] | None = None,
    check: bool = True,
    timeout: int = 900,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """Run `snakemake` to the end (output captured); ``check``: a failure is an AssertionError with its tail."""
    cmd = snakemake_command(workdir, *args, configfile=configfile)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=snakemake_env(env), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def snakemake_popen(
    workdir: Path, *args: str, configfile: Path | list[Path] | None = None, env: dict | None = None, **popen
) -> subprocess.Popen:
    """Start `snakemake` and return at once (the kill and concurrency tests): its stdout and stderr in one
    text pipe unless ``popen`` says otherwise (e.g. ``stderr=subprocess.PIPE``, ``start_new_session=True``)."""
    cmd = snakemake_command(workdir, *args, configfile=configfile)
    kwargs = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, **popen}
    return subprocess.Popen(cmd, env=snakemake_env(env), **kwargs)


def dry_run_counts(workdir: Path, *args: str, configfile: Path | None = None) -> dict[str, int]:
    """{rule: job count} from the job-stats table of a dry run (empty when nothing is to be done)."""
    proc = snakemake(workdir, *args, "--dry-run", "--quiet", "rules", configfile=configfile)
    counts = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts
