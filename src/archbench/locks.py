"""One writer per run: a job that writes a run or an evaluation holds a lock for its whole life.

Snakemake's own lock (``.snakemake/locks``) and the results lock (:func:`archbench.io.lock_results`)
belong to the Snakemake process. ``kill -9`` of Snakemake (or a lost submit node under Slurm) leaves
its jobs running, re-parented to PID 1; after ``snakemake --unlock`` a rerun would start a second job
on the same run folder, and the two would delete each other's temporaries and both write the outputs.

So every job takes an exclusive POSIX record lock (``fcntl.lockf``: honoured over NFS, released by the
kernel when the process dies, so a killed job leaves no stale lock) on ``<folder>/.<job>.lock`` before
it touches anything, and keeps it until the process ends. A second job for the same folder refuses at
once with one line naming the holder (host, pid, Slurm job id): it never waits, so a rerun cannot
silently queue behind an orphan nobody knows about. Only a job's first process takes the lock; the
other ranks of the same job (Lightning's DDP processes, ``srun`` tasks) work under it.

POSIX locks belong to the process and are dropped when ANY descriptor of the file is closed by it,
so the open handle is kept here and the file is never opened a second time by the holder.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

from archbench.errors import ArchbenchError
from archbench.io import open_locked

_HELD: dict[str, object] = {}  # lock file -> its open handle (closing it would release the lock)
_RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


class WriterBusyError(ArchbenchError):
    """Another live job holds the folder's writer lock; the message names it."""


def holder_line(job: str) -> str:
    """Who this process is, as a refused second writer will read it."""
    slurm = os.environ.get("SLURM_JOB_ID")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return (
        f"{job} job on host {socket.gethostname()}, pid {os.getpid()}, "
        f"{f'Slurm job {slurm}' if slurm else 'no Slurm job'}, started {started}"
    )


def _first_process() -> bool:
    return all(os.environ.get(k, "0") == "0" for k in _RANK_VARIABLES)


def lock_path(folder: str | os.PathLike, job: str) -> Path:
    return Path(folder) / f".{job}.lock"


def hold_writer(folder: str | os.PathLike, job: str):
    """Hold ``folder``'s writer lock for ``job`` until this process ends; raise :class:`WriterBusyError`
    naming the holder when another live process holds it. Returns the open lock file (None in a
    job's other ranks). Calling it again from the holding process is a no-op."""
    if not _first_process():
        return None
    path = lock_path(folder, job)
    key = str(path.resolve())
    if key in _HELD:
        return _HELD[key]
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, holder = open_locked(path, "a process that has not written its name yet")
    if holder is not None:
        raise WriterBusyError(
            f"'{folder}' is being written by another {job} job ({holder}); a second writer would corrupt "
            "it: wait for that job to end, or end it (docs/safety.md), then rerun"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(holder_line(job) + "\n")
    handle.flush()
    _HELD[key] = handle
    return handle


def release_writer(folder: str | os.PathLike, job: str) -> None:
    """Give the lock back before the process ends (tests, long-lived callers)."""
    handle = _HELD.pop(str(lock_path(folder, job).resolve()), None)
    if handle is not None:
        handle.close()


def one_writer(smk, folder: str | os.PathLike | None = None) -> None:
    """A job script's first call, before it opens its log: hold the writer lock of the job's output
    folder (default: that of its first output) under the rule's name, or end the job with one line.
    The refusal is appended to the log, which belongs to the running holder (never truncated here)."""
    folder = folder if folder is not None else os.path.dirname(str(smk.output[0]))
    try:
        hold_writer(folder, smk.rule)
    except WriterBusyError as err:
        if smk.log:
            with open(smk.log[0], "a", encoding="utf-8") as fh:
                fh.write(f"{type(err).__name__}: {err}\n")
        sys.exit(f"archbench: {err}")
