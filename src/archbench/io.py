"""Atomic writes: a killed job (or a crashed node) must never leave a complete-looking output behind.

Outputs are written under a hidden temporary name in the same directory (so the final rename
stays on one filesystem) and moved into place with ``os.replace`` only on success. The data is
fsynced before the rename and the folder after it: without that, a node crash can leave the new
name pointing at a truncated file. A directory output is swapped without a moment with no output
(old one renamed aside, new one renamed in, old one removed). Temporaries are per writer: their
names carry the writer's pid and host, and a write removes only those of a writer that is gone (a
dead pid on this host, or untouched for a day), never a live one's (archbench.locks: one writer per run).

Permissions follow the umask, as a plain ``open()`` would: ``tempfile`` creates its files 0600
and directories 0700, and so does safetensors' ``save_file`` (what ``save_pretrained`` writes the
weights with), which on a shared project directory hides results from the rest of the lab.
A full disk (or quota) fails with the output's path in the message; the temporary is removed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_FULL = (errno.ENOSPC, errno.EDQUOT)


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc``), else set and reset."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _naming_full_disk(final: Path):
    """Re-raise a write error with the output it was writing: ``ndarray.tofile`` on a full disk says only
    "N requested and M written" (no errno, no path), others name the temporary file."""
    try:
        yield
    except Exception as err:
        code = getattr(err, "errno", None)
        if not isinstance(code, int) and (os.strerror(errno.ENOSPC) in str(err) or _no_space_left(final.parent)):
            code = errno.ENOSPC  # torch.save and safetensors raise their own error types on a full disk
        if code in _FULL or (isinstance(err, OSError) and err.filename is None):
            reason = os.strerror(code) if code else str(err)
            raise OSError(code, f"{reason} while writing {final}", str(final)) from err
        raise


def _no_space_left(folder: Path) -> bool:
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's data to disk (folders: the names in it, i.e. a rename)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP):  # filesystems without fsync on folders
            raise
    finally:
        os.close(fd)


def _follow_umask(root: Path) -> None:
    """Give ``root`` and, for a folder, everything in it the umask's mode, and flush it to disk."""
    mask = current_umask()
    if root.is_dir():
        for folder, dirs, files in os.walk(root):
            for name in files:
                path = Path(folder, name)
                os.chmod(path, 0o666 & ~mask)
                _fsync(path)
            for name in dirs:
                os.chmod(Path(folder, name), 0o777 & ~mask)
            _fsync(Path(folder))
        os.chmod(root, 0o777 & ~mask)
    else:
        os.chmod(root, 0o666 & ~mask)
        _fsync(root)


STALE_AFTER_S = 24 * 3600  # a temporary lives for one write; untouched this long, its writer is gone
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _prefix(final: Path) -> str:
    """Hidden, and naming its writer (pid, host hash): ``.metrics.json.w123-0a1b2c3d.`` + mkstemp's part."""
    return f".{final.name}.w{os.getpid()}-{_HOST}."


def _writer_gone(entry: os.DirEntry, pid: str | None, host: str | None) -> bool:
    if pid is None:  # a name without its writer (written before names carried one)
        return True
    with contextlib.suppress(OSError):
        if time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S:
            return True
    if host != _HOST:
        return False  # another machine's writer: its pid says nothing here
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _remove_stale_temporaries(final: Path) -> None:
    """Temporaries of ``final`` that a killed earlier writer left; a live writer's are left alone."""
    pattern = re.compile(rf"^\.{re.escape(final.name)}\.(?:w(\d+)-([0-9a-f]{{8}})\.)?[a-z0-9_]{{8}}\.(tmp|old)$")
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(final.parent):
            if (m := pattern.match(entry.name)) and _writer_gone(entry, m.group(1), m.group(2)):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike, keep_previous: str | os.PathLike | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; move it to ``final`` (mode 0666 & ~umask) if the block
    succeeds. With ``keep_previous``, the replaced ``final`` is renamed to that name just before (so
    a kill at any moment leaves the newest complete file under one of the two names)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(final)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(final), suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        with _naming_full_disk(final):
            yield tmp
            _follow_umask(tmp)
        if keep_previous is not None and final.exists():
            os.replace(final, keep_previous)
        os.replace(tmp, final)
        _fsync(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory next to ``final``; on success it replaces ``final`` (every
    file and folder in it with the umask's mode)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(final)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(final), suffix=".tmp", dir=final.parent))
    old = None
    try:
        with _naming_full_disk(final):
            yield tmp
            _follow_umask(tmp)
        if final.exists():  # rename() cannot replace a non-empty directory: move the old one aside first
            old = Path(tempfile.mkdtemp(prefix=_prefix(final), suffix=".old", dir=final.parent))
            os.replace(final, old)  # onto the empty placeholder
        os.replace(tmp, final)
        _fsync(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_json(obj: dict, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value):
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def open_locked(path: str | os.PathLike, unnamed: str):
    """Open ``path`` and take its exclusive POSIX record lock without waiting: (open file, None), or
    (None, the holder's text) when another live process holds it (``unnamed`` if it wrote none yet)."""
    import fcntl

    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open until the process ends
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EAGAIN):
            handle.close()
            raise
        handle.seek(0)
        holder = handle.read().strip() or unnamed
        handle.close()
        return None, holder
    return handle, None


RESULTS_LOCK = ".archbench.lock"
_HELD: dict[str, object] = {}  # results folder -> its open lock file (closing it would release the lock)


def lock_results(results: str | os.PathLike):
    """Hold an exclusive lock on a results folder for this process's lifetime (the open file it returns).

    Snakemake locks the outputs of one project folder (its ``.snakemake/locks``); two projects, or two
    checkouts, pointed at one shared ``results`` would not see each other. A POSIX record lock
    (``lockf``: also honoured over NFSv4) is released by the kernel when the process dies, so a killed
    run leaves no stale lock. The holder's host, pid and folder are written into the file for the message."""
    folder = Path(results)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RESULTS_LOCK
    handle, holder = open_locked(path, "another process")
    if holder is not None:
        from archbench.errors import ArchbenchError

        raise ArchbenchError(
            f"results folder '{folder}' is in use by another run ({holder}); wait for it to finish, or give "
            f"this run its own folder (config key 'results')"
        ) from None
    handle.seek(0)
    handle.truncate()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    handle.write(f"host {socket.gethostname()}, pid {os.getpid()}, project {os.getcwd()}, started {started}\n")
    handle.flush()
    _HELD[str(folder.resolve())] = handle
    return handle
