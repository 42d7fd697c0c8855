"""The cause of each failed job, for the Snakefile's ``onerror`` hook: stdlib only.

The hook runs in the Snakemake process after jobs failed, possibly for lack of memory: importing torch
or Lightning there (~400 MB) could fail too and lose the very lines that say why the jobs failed."""

from __future__ import annotations

import contextlib
import os
import re
import sys

# A job's error block in Snakemake's own log names the job's log file(s) on this line.
_JOB_LOGS = re.compile(r"^\s*log: (.+) \(check log file\(s\) for error details\)$")
# The last line of a Python traceback: the exception and its message.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Failure|Exit|Interrupt|Warning)\b.*")


def last_error_line(log_path: str, tail_bytes: int = 1 << 16) -> str | None:
    """The last exception line in a job's log (else its last non-empty line); None if there is none."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(log_path) - tail_bytes))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").replace("\r", "\n").splitlines()]
    except OSError:
        return None
    lines = [ln for ln in lines if ln]
    return next((ln for ln in reversed(lines) if _EXCEPTION_LINE.match(ln)), lines[-1] if lines else None)


def print_causes(snakemake_logs, stream=None) -> None:
    """For the Snakefile's `onerror`: the job scripts send their tracebacks to the job's log, so
    Snakemake itself prints only "check log file(s)". Print each failed job's last error line."""
    stream = stream or sys.stderr
    job_logs: list[str] = []
    for path in [snakemake_logs] if isinstance(snakemake_logs, str) else snakemake_logs or []:
        with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if m := _JOB_LOGS.match(line.rstrip("\n")):
                    job_logs += [p for p in m.group(1).split(", ") if p not in job_logs]
    causes = [(p, last_error_line(p)) for p in job_logs]
    causes = [(p, c) for p, c in causes if c]
    if causes:
        stream.write("Cause of each failed job (the last error line of its log):\n")
        stream.writelines(f"    {path}: {cause}\n" for path, cause in causes)
        stream.flush()
