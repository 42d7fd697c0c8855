"""Where a number came from: one provenance block for every result file, and the fingerprints that
identify a run's inputs (settings, tokenizer, token data).

Everything here is stdlib-only at import time (the Snakefile parse and the report jobs import it);
library versions are read from the installed distributions' metadata, never by importing them.

The fingerprints are also a run's identity for resuming: a checkpoint records them, and a rerun whose
settings, tokenizer or data differ never continues the old state.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# Distributions whose versions a result depends on (distribution names, as pip knows them).
PACKAGES = (
    "torch",
    "lightning",
    "transformers",
    "torchscale",
    "tokenizers",
    "lm_eval",
    "snakemake",
    "numpy",
    "pyarrow",
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value) -> bytes:
    """The byte form that hashes compare: sorted keys, no whitespace, non-JSON values as their str()."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def settings_hash(settings: dict) -> str:
    """sha256 of a run's effective settings (model + training, as the train rule passes them)."""
    return _sha256(canonical_json(settings))


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def tokenizer_sha256(tokenizer_dir: str | os.PathLike) -> str | None:
    """sha256 of the tokenizer's ``tokenizer.json`` (vocabulary, merges, special tokens); None if absent."""
    path = Path(tokenizer_dir) / "tokenizer.json"
    return file_sha256(path) if path.is_file() else None


def data_fingerprint(*index_paths: str | os.PathLike) -> str | None:
    """sha256 over the token-shard index files (each lists its split's shards with their token counts
    and source hashes): changes whenever the token data a run reads changes. None if none exist."""
    h, seen = hashlib.sha256(), False
    for path in index_paths:
        if path and Path(path).is_file():
            h.update(Path(path).read_bytes())
            seen = True
    return h.hexdigest() if seen else None


def token_index_paths(tokens) -> list[str]:
    """The ``index.json`` of each token split a run reads (``tokens``: index.json paths, split folders
    holding one, or ``.bin`` files, which have none): what :func:`data_fingerprint` hashes."""
    out = []
    for t in tokens:
        p = Path(t)
        if p.name == "index.json":
            out.append(str(p))
        elif p.is_dir():
            out.append(str(p / "index.json"))
    return out


# Set by the Snakefile to its own folder (workflow.basedir); the jobs inherit it. The package itself may
# be an installed wheel, far from the checkout whose commit produced a result.
WORKFLOW_ENV = "ARCHBENCH_WORKFLOW"


def git_state(repo: str | os.PathLike | None = None) -> dict:
    """The workflow's git commit and whether the work tree had changes (both None outside a checkout).
    `repo` defaults to the running workflow's folder ($ARCHBENCH_WORKFLOW), else the current directory."""
    repo = Path(repo or os.environ.get(WORKFLOW_ENV) or os.getcwd())
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_info(device=None) -> dict | None:
    """Name, driver and CUDA version of the GPU a result was measured on; None when no CUDA device was
    used. Imports torch only when a CUDA device is named (torch is then loaded anyway)."""
    if device is None or "cuda" not in str(device):
        return None
    import torch

    idx = torch.device(device).index or 0
    driver = None
    try:
        driver = (
            subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader", f"--id={idx}"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        pass
    return {"name": torch.cuda.get_device_name(idx), "driver": driver, "cuda": torch.version.cuda}


# Timing honesty (issues 29 / 34): a timing is flagged "under load" when the 1-minute load average,
# which counts the job's own threads too, exceeds them by more than UNDER_LOAD_MARGIN (the scheduler and
# sampling noise stay below it; one more busy core does not), and "noisy" when its p90 / p10 spread is
# above NOISY_SPREAD (steady decode steps on an idle machine stay well below; the loaded default run
# showed 25x). Under load wins: it names the cause.
UNDER_LOAD_MARGIN = 0.5
NOISY_SPREAD = 1.5
TIMING_FLAGS = ("", "noisy", "under load")


def machine_load() -> dict:
    """The machine's load average over 1, 5 and 15 minutes (None where the OS has none) and its CPU count:
    what a timing's reader needs to tell a busy machine from a slow model."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {"load_avg": load, "cpu_count": os.cpu_count()}


def timing_flag(load_1m: float | None, threads: int | None, p10: float | None = None, p90: float | None = None) -> str:
    """ "under load", "noisy" or "" (clean) for a timing taken with ``threads`` threads while the 1-minute
    load average was ``load_1m``, whose repeated measurements spread from ``p10`` to ``p90``."""
    if load_1m is not None and threads and load_1m > threads + UNDER_LOAD_MARGIN:
        return "under load"
    if p10 and p90 and p90 / p10 > NOISY_SPREAD:
        return "noisy"
    return ""


def worst_flag(flags) -> str:
    """The most severe of several timing flags ("under load" > "noisy" > ""); None / NaN count as ""."""
    seen = {f for f in flags if isinstance(f, str)}
    return next((f for f in reversed(TIMING_FLAGS) if f in seen), "")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def provenance_block(
    *,
    settings: dict | None = None,
    tokenizer_dir: str | os.PathLike | None = None,
    token_indexes: tuple | list = (),
    device=None,
    precision: str | None = None,
    started: str | None = None,
    load: dict | None = None,
) -> dict:
    """The one provenance block of a result file (metrics.json and every evaluation output). ``load``:
    :func:`machine_load` taken when the timed part ended (default: now, as the block is written)."""
    from archbench import __version__

    return {
        "archbench": __version__,
        "git": git_state(),
        "versions": package_versions(),
        "os": platform.platform(),
        "cpu": cpu_model(),
        "threads": _threads(),
        "gpu": gpu_info(device),
        "device": str(device) if device is not None else None,
        "precision": precision,
        "settings_hash": settings_hash(settings) if settings is not None else None,
        "tokenizer_sha256": tokenizer_sha256(tokenizer_dir) if tokenizer_dir else None,
        "data_fingerprint": data_fingerprint(*token_indexes),
        "started": started,
        "finished": now(),
        "load": load or machine_load(),
    }


def _threads() -> int | None:
    """Threads torch uses when torch is loaded (it is in every model-running job), else the usable CPUs."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
