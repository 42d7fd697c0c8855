"""Readable job logs: logging configured once per job, and progress that suits a log file.

Every workflow script starts with ``job_logging(snakemake)``: the job's stderr goes to the rule's log
file, and every record reads ``2026-01-01 12:00:00 INFO train[arch=retnet learning_rate=0.001 ...
seed=0] archbench.x: ...`` (timestamp, rule and named wildcards, level). Python warnings are logged too.

:func:`progress` is tqdm on a terminal and, in a log file (stderr not a terminal), one log line at most
every ``every_s`` seconds (with elapsed time and ETA) plus one at the end: a progress bar's carriage
returns would fill the log. lm-eval's bars are off in a log (:func:`quiet_harness`).

Third-party messages that tell a reader of a job log nothing are dropped in one place: :data:`NOISE`
(warnings) and :data:`NOISE_RECORDS` / :data:`ONCE_RECORDS` (log records), applied by :func:`configure`.
Stdlib-only at import time (the data jobs import it without torch).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s {job} %(name)s: %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"
log = logging.getLogger("archbench")

# Warnings without information for a job log: (category, regex at the message's start).
NOISE = [
    # torchscale's modules call torch.jit.script_method at import: dozens of identical lines per job
    (FutureWarning, r"`torch\.jit\.\w+` is (deprecated|not supported)"),
]
# Log records without information: message starts. Lightning's advertisement for its cloud logger;
# CodeCarbon's note that parallel trackers are allowed (archbench allows them on purpose: parallel jobs).
NOISE_RECORDS = (
    "💡 Tip: For seamless cloud logging",
    "Multiple instances of codecarbon are allowed",
)
# Records that say the same thing each time they repeat in one job: kept once.
ONCE_RECORDS = ("Seed set to",)
# (lm-eval's `git describe` outside a repository, "fatal: not a git repository", and its progress bars
# are kept out by quiet_harness.)


class _Noise(logging.Filter):
    """Drops :data:`NOISE_RECORDS` and repeats of :data:`ONCE_RECORDS`."""

    def __init__(self):
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(NOISE_RECORDS):
            return False
        if message.startswith(ONCE_RECORDS):
            if message in self._seen:
                return False
            self._seen.add(message)
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (the train job re-points it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it
        pass


def adopt(*names: str) -> None:
    """Route libraries that install their own console handler at import (Lightning, CodeCarbon) through
    the job's handler instead, so each record appears once, in the job's format. Import them first;
    a no-op unless :func:`configure` ran (an interactive session keeps their output)."""
    if not any(isinstance(h, _StderrHandler) for h in logging.getLogger().handlers):
        return
    for name in names:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
            logger.removeHandler(handler)
        logger.propagate = True


class Lines:
    """A text stream that turns a progress bar's carriage returns into line ends (one line per update,
    no empty lines): libraries' tqdm bars (lm-eval's) become readable lines in a log file."""

    def __init__(self, stream):
        self._stream, self._fresh, self._bar = stream, True, False

    def write(self, text: str) -> int:
        out = []
        if text and not self._fresh and self._bar and text[0] not in "\r\n":
            out.append("\n")  # a log record after a bar's line: the bar left its line open
            self._fresh = True
        self._bar = text.startswith("\r") or (self._bar and not text.endswith("\n"))
        for char in text.replace("\r\n", "\n"):
            if char in "\r\n":
                if not self._fresh:
                    out.append("\n")
                self._fresh = True
            else:
                out.append(char)
                self._fresh = False
        return self._stream.write("".join(out)) and len(text)

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


def quiet_progress_bars(every_s: int = 10) -> None:
    """For a job log: no Hugging Face progress bars (transformers' shard writing, hub transfers), and
    other tqdm bars redrawn at most every ``every_s`` seconds. Those libraries read it when imported."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # datasets' "Generating test split"
    os.environ.setdefault("TQDM_MININTERVAL", str(every_s))


def job_name(rule: str, wildcards: dict | None = None) -> str:
    """``rule[name=value ...]``: the rule and its named wildcards (``train[arch=retnet learning_rate=0.001
    ... seed=0]``), so a line read alone says which run it is."""
    values = " ".join(f"{k}={v}" for k, v in (wildcards or {}).items())
    return f"{rule}[{values}]" if values else rule


def configure(job: str = "archbench", level: int | str = "INFO") -> None:
    """Send every logger's records (INFO and above) and Python warnings to stderr, in :data:`FORMAT`."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(FORMAT.format(job=job.replace("%", "%%")), DATEFMT))
    handler.addFilter(_Noise())
    root.addHandler(handler)
    root.setLevel(level)
    for category, message in NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
    logging.captureWarnings(True)


def job_logging(smk, stderr: bool = True) -> logging.Logger:
    """Set up one Snakemake job's logging (call first in a workflow script): with ``stderr``, point the
    process' stderr (file descriptor 2 too, so child processes and native libraries write there) at
    the rule's log; then :func:`configure` with the rule and wildcards. Logs the start with the inputs'
    sizes and, at exit, the end with the elapsed time and the outputs' sizes (or the failure).
    ``stderr=False`` leaves stderr to the caller (the train job: every rank appends to the log)."""
    if stderr and smk.log:
        fh = open(smk.log[0], "w", buffering=1)
        os.dup2(fh.fileno(), 2)
        sys.stderr = Lines(fh)
    quiet_progress_bars()
    wildcards = dict(smk.wildcards.items()) if hasattr(smk.wildcards, "items") else {}
    job = job_name(smk.rule, wildcards)
    configure(job)
    logger = logging.getLogger(f"archbench.job.{smk.rule}")
    if stderr:
        log_start(smk)
    start, failed = time.perf_counter(), []
    previous_hook = sys.excepthook

    def hook(kind, value, tb):
        failed.append(kind.__name__)
        logger.error("failed after %.1f s", time.perf_counter() - start, exc_info=(kind, value, tb))
        if previous_hook is not sys.__excepthook__:
            previous_hook(kind, value, tb)

    def end():
        if not failed:
            logger.info("end: %.1f s; outputs %s", time.perf_counter() - start, files_summary(smk.output))

    sys.excepthook = hook
    atexit.register(end)
    return logger


def log_start(smk) -> None:
    """The job's ``start: inputs N files, SIZE (...)`` line (a job that points stderr at its log itself,
    the train job, calls it once it has)."""
    logging.getLogger(f"archbench.job.{smk.rule}").info("start: inputs %s", files_summary(smk.input))


@contextlib.contextmanager
def quiet_harness():
    """lm-eval inside a job whose stderr is a log: its tqdm bars off (it passes ``disable=`` itself, so
    TQDM_DISABLE cannot), so are transformers' and datasets' (loading weights, preparing the task data)
    even when imported before :func:`quiet_progress_bars`, and its `git describe` (run for the results'
    git_hash, printing "fatal: not a git repository" outside one) silent. On a terminal, all is left as
    it is."""
    if sys.stderr.isatty():
        yield
        return
    import subprocess

    import datasets.utils
    import lm_eval.evaluator  # noqa: F401  (loaded now, so that their names below can be replaced)
    import lm_eval.models.huggingface  # noqa: F401
    import transformers.utils.logging as hf_logging
    from tqdm import std

    class Silent(std.tqdm):  # a class, so that isinstance and subclassing keep working meanwhile
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    def git_hash():
        try:
            done = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() or None

    patched = []
    # lm-eval's modules' own `tqdm`, and the package's for its function-level `from tqdm import tqdm`
    for name, module in list(sys.modules.items()):
        if not (name.startswith("lm_eval") or name in ("tqdm", "tqdm.auto")) or module is None:
            continue
        for attr, value in (("tqdm", Silent), ("get_git_commit_hash", git_hash)):
            old = module.__dict__.get(attr)
            if attr == "tqdm" and not (isinstance(old, type) and issubclass(old, std.tqdm)):
                continue
            if attr == "get_git_commit_hash" and not callable(old):
                continue
            patched.append((module, attr, old))
            setattr(module, attr, value)
    bars = [
        (hf_logging.is_progress_bar_enabled(), hf_logging.disable_progress_bar, hf_logging.enable_progress_bar),
        (datasets.utils.is_progress_bar_enabled(), datasets.disable_progress_bars, datasets.enable_progress_bars),
    ]
    for was_on, off, _ in bars:
        if was_on:
            off()
    try:
        yield
    finally:
        for module, attr, old in patched:
            setattr(module, attr, old)
        for was_on, _, on in bars:
            if was_on:
                on()


def files_summary(paths) -> str:
    """``N files, SIZE`` (the largest three named) of a job's inputs or outputs."""
    sizes = {}
    for path in map(str, paths):
        if os.path.isfile(path):
            sizes[path] = os.path.getsize(path)
        elif os.path.isdir(path):
            sizes[path] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    if not sizes:
        return "none"
    big = sorted(sizes, key=sizes.get, reverse=True)[:3]
    named = ", ".join(f"{os.path.join(*Path(p).parts[-2:])} {human_bytes(sizes[p])}" for p in big)
    files = f"{len(sizes)} file{'s' if len(sizes) > 1 else ''}"
    return f"{files}, {human_bytes(sum(sizes.values()))} ({named}{', ...' if len(sizes) > 3 else ''})"


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def progress(
    iterable: Iterable,
    desc: str,
    total: float | None = None,
    unit: str = "it",
    weight=None,
    every_s: float = 10.0,
    logger: logging.Logger | None = None,
) -> Iterator:
    """Yield from ``iterable`` showing progress: tqdm on a terminal, else a log line every ``every_s``
    seconds and at the end (``desc: 120/400 it (30%), 12.0 it/s``). ``weight(item)`` counts an item as
    that many units (rows of a batch, bytes), default 1."""
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=desc, unit=unit, unit_scale=True) as bar:
            for item in iterable:
                yield item
                bar.update(weight(item) if weight else 1)
        return
    logger = logger or log
    start = last = time.perf_counter()
    done = 0

    def line(final: bool) -> None:
        elapsed = time.perf_counter() - start
        of = f"/{total:g}" if total else ""
        pct = f" ({100 * done / total:.0f}%)" if total else ""
        rate = f", {done / elapsed:.4g} {unit}/s" if elapsed > 0 else ""
        when = f", done in {elapsed:.1f} s" if final else f", {timing(done, total, elapsed)}"
        logger.info("%s: %g%s %s%s%s%s", desc, done, of, unit, pct, rate, when)

    for item in iterable:
        yield item
        done += weight(item) if weight else 1
        now = time.perf_counter()
        if now - last >= every_s:
            last = now
            line(False)
    line(True)


def duration(seconds: float) -> str:
    """45 s, 3 min 05 s, 2 h 10 min."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def timing(done: float, total: float | None, elapsed: float) -> str:
    """``elapsed 1 min 05 s, ETA 2 min 10 s`` for a progress line (no ETA without a total or a rate)."""
    text = f"elapsed {duration(elapsed)}"
    if total and done > 0 and elapsed > 0:
        text += f", ETA {duration((total - done) * elapsed / done)}"
    return text
