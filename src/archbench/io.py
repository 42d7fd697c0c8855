"""Atomic writes: a killed job must never leave a complete-looking output behind.

Outputs are written under a temporary name in the same directory (so the final rename
stays on one filesystem) and moved into place with ``os.replace`` only on success.

Permissions follow the umask, as a plain ``open()`` would: ``tempfile`` creates its files 0600
and directories 0700, which on a shared project directory hides results from the rest of the lab.
A full disk (or quota) fails with the output's path in the message; the temporary is removed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
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


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; move it to ``final`` (mode 0666 & ~umask) if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        with _naming_full_disk(final):
            yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory next to ``final``; rename it to ``final`` (mode 0777 & ~umask) on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        with _naming_full_disk(final):
            yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        if final.exists():  # rename() cannot replace a non-empty directory
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(obj: dict, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value):
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
