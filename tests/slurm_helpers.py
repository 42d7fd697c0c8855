"""Helpers of the Slurm tests: is a cluster reachable, the profile's command line, a recording `sbatch`."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

from workflow_helpers import REPO

PROFILE = REPO / "profiles" / "slurm"
# Test-only overrides: status checks start after 2 s instead of 40 s (notes/slurm.md).
FAST = ["--slurm-init-seconds-before-status-checks", "2"]


def cluster_reason() -> str | None:
    """None when a Slurm controller answers, else why the Slurm tests are skipped."""
    if not shutil.which("sbatch") or not shutil.which("sacct"):
        return "no Slurm client on PATH (.ci/run starts a local cluster: .ci/slurm/start.sh)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"scontrol ping failed: {err}"
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return "no Slurm controller reachable (scontrol ping); .ci/run starts a local cluster"
    return None


def recording_sbatch(bin_dir: Path, record: Path, forward: str | None) -> dict:
    """An `sbatch` that writes its argv (JSON) as one new file in the folder `record`, then runs the real
    `forward` sbatch, or fails when there is none (so no job runs). The returned env puts it first on
    PATH. One file per call: parallel submissions appending long lines to one file can interleave."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    record.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "sbatch"
    tail = f'exec {shlex.quote(forward)} "$@"' if forward else 'echo "recording sbatch: not submitted" >&2; exit 1'
    writer = (
        "import json, os, sys, time; "
        "open(os.path.join(sys.argv[1], f'{time.time_ns()}-{os.getpid()}.json'), 'w')"
        ".write(json.dumps(sys.argv[2:]))"
    )
    script.write_text(f'#!/bin/sh\npython3 -c {shlex.quote(writer)} {shlex.quote(str(record))} "$@"\n{tail}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def recorded(record: Path) -> list[dict]:
    """Each recorded submission, in order: rule, the flags (without the --wrap'ed command) and argv."""
    calls = []
    for path in sorted(record.glob("*.json"), key=lambda p: int(p.name.split("-")[0])) if record.exists() else []:
        argv = json.loads(path.read_text())
        comment = argv[argv.index("--comment") + 1]
        flags = [a for a in argv if not a.startswith("--wrap=")]
        calls.append({"rule": comment.removeprefix("rule_").split("_wildcards_")[0], "flags": flags, "argv": argv})
    return calls


def sbatch_line(call: dict, workdir: Path) -> str:
    """A readable form of one recorded sbatch command (paths relative to the workdir)."""
    return shlex.join(call["flags"]).replace(str(workdir) + "/", "").replace(str(workdir), ".") + " --wrap=..."
