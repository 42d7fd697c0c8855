"""Streaming readers for every input format, and the parquet readers of the later stages.

The bottom layer of ``archbench.data``: it imports no other data module. Data sources
(``archbench.data.sources``) find files and plan shards with :func:`resolve_files` / :func:`name_shards`
and read them with :func:`read_file`; split / tokenizer / tokenize read their parquet shards with
:func:`text_batches` and friends.

Reading is linear in the input and bounded in memory: lines are found with ``bytes.find`` in each
1 MB chunk (never re-splitting a growing buffer), a document longer than ``data.max_document_bytes``
is skipped and counted (or fails, naming file and line) without being held, and batches are cut by
count and by bytes, so no Arrow string array nears its 2 GiB limit.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archbench.errors import DataError

COMPRESSION = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt", ".parquet": "parquet"}
ACCEPTED = "/".join(FORMATS) + " (each also .gz / .zst)"
BATCH_DOCS = 4096  # documents per record batch (~8 MB of C4 text)
BATCH_BYTES = 64 << 20  # ... and at most this much text per batch (Arrow strings: < 2 GiB per array)
DEFAULT_MAX_DOCUMENT_BYTES = 64 << 20  # config/schema.yaml's data.max_document_bytes default
_READ_BYTES = 1 << 20
GROUP_ABOVE_FILES = 1024  # data.min_shard_mb groups files only in corpora of more files than C4's


class Limits:
    """What a reader does with a document longer than ``max_bytes``: skip and count it, or fail."""

    def __init__(self, max_bytes: int | None = DEFAULT_MAX_DOCUMENT_BYTES, on_long: str = "skip"):
        self.max_bytes = max_bytes or DEFAULT_MAX_DOCUMENT_BYTES
        self.fail = on_long == "fail"
        self.n_skipped = 0

    @classmethod
    def from_data(cls, data: dict) -> Limits:
        return cls(data.get("max_document_bytes"), data.get("on_long_document") or "skip")

    def too_long(self, size: int, at: str) -> bool:
        """True (count it) when a document of ``size`` bytes is over the limit; raise when failing."""
        if size <= self.max_bytes:
            return False
        if self.fail:
            raise DataError(
                f"{at}: document of {size} bytes (or more) is longer than data.max_document_bytes "
                f"({self.max_bytes}); set data.on_long_document: skip to skip and count such documents"
            )
        self.n_skipped += 1
        return True


def file_format(path: str) -> tuple[str, str | None]:
    """(format, compression) from a file name: ``c4-train.00000-of-01024.json.gz`` -> ("jsonl", "gzip")."""
    name = os.path.basename(path).lower()
    compression = None
    for suffix, codec in COMPRESSION.items():
        if name.endswith(suffix):
            compression, name = codec, name[: -len(suffix)]
            break
    fmt = FORMATS.get(os.path.splitext(name)[1])
    if fmt is None or (fmt == "parquet" and compression):
        raise DataError(f"unsupported file type {path!r} (data.path accepts {ACCEPTED}; parquet uncompressed)")
    return fmt, compression


def accepted(path: str) -> bool:
    try:
        file_format(path)
        return True
    except DataError:
        return False


def _walk(root: str) -> list[str]:
    """Every file under ``root``, following symlinked folders; a folder reached again through a link
    into one of its own parents (a loop) is one DataError naming both paths."""
    files, on_path = [], {}

    def visit(folder: str) -> None:
        real = os.path.realpath(folder)
        if real in on_path:
            raise DataError(
                f"data.path: symlink loop: {folder} leads back to {on_path[real]} (real path {real}); "
                "remove the link or point data.path below it"
            )
        on_path[real] = folder
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise DataError(f"data.path: symlink loop at {folder} ({e.strerror})") from None
            raise
        for entry in entries:
            if entry.is_dir(follow_symlinks=True):
                visit(entry.path)
            elif entry.is_file(follow_symlinks=True):
                files.append(entry.path)
            elif entry.is_symlink() and not os.path.exists(entry.path):
                _check_link(entry.path)
        del on_path[real]

    visit(root)
    return files


def _check_link(path: str) -> None:
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DataError(f"data.path: symlink loop at {path} ({e.strerror})") from None


def _loop_in(path: str) -> None:
    """A DataError when ``path`` passes through a symlink to one of its own parent folders (as a ``**``
    glob through ``sub/up -> ..`` does: one file reached under ever longer names)."""
    parts = Path(path).parts
    for i in range(1, len(parts)):
        link = os.path.join(*parts[: i + 1])
        if os.path.islink(link):
            target, parent = os.path.realpath(link), os.path.realpath(os.path.dirname(link))
            if parent == target or parent.startswith(target.rstrip(os.sep) + os.sep):
                raise DataError(
                    f"data.path: symlink loop: {link} points to {target}, a folder above it; "
                    "remove the link or point data.path below it"
                )


def resolve_files(path: str) -> list[str]:
    """A file, a directory (searched recursively for accepted files) or a glob -> sorted file list.

    Files reached twice (through symlinks, or a glob through a linked folder) are kept once, under the
    first path in sorted order: a duplicate could otherwise straddle train and test."""
    path = str(path)
    if any(c in path for c in "*?["):
        _check_link(path.split("*")[0].rstrip("/") or ".")
        files = []
        for p in glob.glob(path, recursive=True):
            _check_link(p)
            _loop_in(p)
            if os.path.isfile(p):
                files.append(p)
        if not files:
            raise DataError(f"data.path glob matched no files: {path}")
    elif os.path.isdir(path):
        files = [p for p in _walk(path) if accepted(p)]
        if not files:
            raise DataError(f"data.path directory {path} holds no {ACCEPTED} files")
    elif os.path.exists(path):
        files = [path]
    else:
        _check_link(path)
        raise DataError(f"data.path does not exist: {path}")
    unique = {}
    for f in sorted(files):
        unique.setdefault(os.path.realpath(f), f)
    files = sorted(unique.values())
    for f in files:
        file_format(f)  # one clear error for the first unsupported file
    return files


def stem(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (*COMPRESSION, *FORMATS):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "part"


def slices(path: str, fmt: str, compression, shard_bytes: int | None) -> list[list[int] | None]:
    """Byte ranges (jsonl) or row-group ranges (parquet) of a file; [None] = the whole file."""
    if not shard_bytes or compression or fmt == "txt":
        return [None]
    if fmt == "jsonl":
        size = os.path.getsize(path)
        n = max(1, -(-size // shard_bytes))
        return [None] if n == 1 else [[i * size // n, (i + 1) * size // n] for i in range(n)]
    meta = pq.ParquetFile(path).metadata  # footer only
    ranges, start, acc = [], 0, 0
    for g in range(meta.num_row_groups):
        acc += meta.row_group(g).total_byte_size
        if acc >= shard_bytes and g + 1 < meta.num_row_groups:
            ranges.append([start, g + 1])
            start, acc = g + 1, 0
    ranges.append([start, meta.num_row_groups])
    return [None] if len(ranges) == 1 else ranges


def group_small(files: list[tuple[str, list]], min_bytes: int | None) -> list[tuple[list[str], list]]:
    """``(file, slices)`` pairs -> ``(files, slices)`` entries. A corpus of more than GROUP_ABOVE_FILES
    files has its consecutive whole files smaller than ``min_bytes`` (on disk) read by one shard until it
    holds at least ``min_bytes``, so 100,000 tiny files make a few jobs, not 500,000; a corpus of fewer
    files keeps one shard per file. Corpus order is kept (a shard holds neighbours)."""
    if len(files) <= GROUP_ABOVE_FILES:
        min_bytes = None
    entries, group, size = [], [], 0
    for path, parts in files:
        small = bool(min_bytes) and parts == [None] and os.path.getsize(path) < min_bytes
        if not small:
            if group:
                entries.append((group, [None]))
                group, size = [], 0
            entries.append(([path], parts))
            continue
        group.append(path)
        size += os.path.getsize(path)
        if size >= min_bytes:
            entries.append((group, [None]))
            group, size = [], 0
    if group:
        entries.append((group, [None]))
    return entries


def name_shards(entries: list[tuple], source: str, **extra) -> dict[str, dict]:
    """Shard specs ``NNNNN-<file stem>[.SSSS]`` for ``(file or [files], slices)`` entries in corpus order;
    a shard of several files is named by its first and lists them all under ``files``."""
    width = max(5, len(str(len(entries) - 1)))
    shards = {}
    for i, (paths, parts) in enumerate(entries):
        paths = [paths] if isinstance(paths, str) else list(paths)
        fmt, compression = file_format(paths[0])
        for j, rng in enumerate(parts):
            name = f"{i:0{width}d}-{stem(paths[0])}" + (f".{j:04d}" if len(parts) > 1 else "")
            if len(paths) > 1:
                name += f"-and-{len(paths) - 1}-more"
            shards[name] = {
                "name": name,
                "source": source,
                "path": paths[0],
                "format": fmt,
                "compression": compression,
                "range": rng,
                **({"files": paths} if len(paths) > 1 else {}),
                **extra,
            }
    return dict(sorted(shards.items()))


def shard_files(shard: dict) -> list[dict]:
    """One spec per file a shard reads (several for a group of small files), each with its own format."""
    if "files" not in shard:
        return [shard]
    return [{**shard, "path": f, "format": file_format(f)[0], "compression": file_format(f)[1]} for f in shard["files"]]


# --------------------------------------------------------------------------- input files
def _stream(raw, compression):
    return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), compression) if compression else raw


def decode(raw: bytes) -> tuple[str, int]:
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), 1


def _read(stream, where: str, lineno: int, offset: int) -> bytes:
    try:
        return stream.read(_READ_BYTES)
    except Exception as e:  # zlib / zstd / I/O errors surface here, whatever the library
        raise DataError(
            f"{where}: corrupt or truncated data after line {lineno} (uncompressed byte offset {offset}): {e}"
        ) from None


def lines(stream, where: str, start: int, end: int | None, limits: Limits):
    """(line number, byte offset, raw line) of every line starting in [start, end) of the (decompressed)
    stream, which is positioned at ``max(start - 1, 0)``. Linear in the input: each chunk is scanned
    once; a line longer than the limit is dropped as it streams by (counted, or a DataError). A corrupt
    or truncated stream is one DataError naming the file, the last good line and offset."""
    lineno, offset = 0, max(start - 1, 0)
    parts, size, dropping = [], 0, False  # the line in progress
    skip_first = start > 0  # the line in progress at `start` belongs to the previous slice

    def done(line_parts, line_size, dropped):
        nonlocal lineno, offset, skip_first
        line_offset = offset
        offset += line_size + 1
        if skip_first:
            skip_first = False
            return None
        if end is not None and line_offset >= end:
            return StopIteration
        lineno += 1
        if dropped:
            return None
        return lineno, line_offset, b"".join(line_parts)

    while True:
        chunk = _read(stream, where, lineno, offset)
        if not chunk:
            break
        pos = 0
        while True:
            nl = chunk.find(b"\n", pos)
            piece = chunk[pos:] if nl < 0 else chunk[pos:nl]
            size += len(piece)
            if not dropping and not skip_first:
                if size > limits.max_bytes:
                    limits.too_long(size, f"{where}:{lineno + 1}" if not start else f"{where} (byte offset {offset})")
                    dropping, parts = True, []
                else:
                    parts.append(piece)
            if nl < 0:
                break
            out = done(parts, size, dropping)
            if out is StopIteration:
                return
            if out is not None:
                yield out
            parts, size, dropping, pos = [], 0, False, nl + 1
    if (parts or dropping) and size:
        out = done(parts, size, dropping)
        if out is not None and out is not StopIteration:
            yield out


class _Batcher:
    """Collects documents; full when it holds BATCH_DOCS documents or BATCH_BYTES of text."""

    def __init__(self):
        self.docs, self.replaced, self.size = [], 0, 0

    def add(self, doc: str, size: int) -> bool:
        self.docs.append(doc)
        self.size += size
        return len(self.docs) >= BATCH_DOCS or self.size >= BATCH_BYTES

    def take(self) -> tuple[list[str], int]:
        out = (self.docs, self.replaced)
        self.docs, self.replaced, self.size = [], 0, 0
        return out


def _jsonl_batches(shard: dict, column: str, raw, where: str, limits: Limits) -> Iterator[tuple[list, int]]:
    start, end = shard["range"] or [0, None]
    if start:
        raw.seek(start - 1)
    stream = _stream(raw, shard["compression"])
    batch = _Batcher()
    for lineno, offset, line in lines(stream, where, start, end, limits):
        if not line.strip():
            continue
        at = f"{where}:{lineno}" if not start else f"{where} (byte offset {offset})"
        try:
            record = json.loads(line)
        except UnicodeDecodeError:
            text, _ = decode(line)
            record = json.loads(text)
            batch.replaced += 1
        except json.JSONDecodeError as e:
            hint = (
                "; .json / .jsonl files must be JSON lines (one object per line)" if line.lstrip()[:1] == b"[" else ""
            )
            raise DataError(f"{at}: invalid JSON ({e.msg}){hint}") from None
        if not isinstance(record, dict):
            raise DataError(
                f"{at}: a JSON {type(record).__name__}, not an object; .json / .jsonl files must be "
                f"JSON lines (one object per line)"
            )
        if column not in record:
            raise DataError(f"{at}: no field {column!r} (data.text_column); available: {sorted(record)}")
        value = record[column]
        if value is not None and not isinstance(value, str):
            raise DataError(f"{at}: field {column!r} is {type(value).__name__}, not text")
        if batch.add(value or "", len(line)):
            yield batch.take()
    if batch.docs or batch.replaced:
        yield batch.take()


def _txt_batches(shard: dict, raw, where: str, limits: Limits) -> Iterator[tuple[list, int]]:
    """A ``.txt`` file is one document, streamed in chunks; over the limit it is dropped unread-whole."""
    stream, parts, size = _stream(raw, shard["compression"]), [], 0
    while True:
        chunk = _read(stream, where, 0, size)
        if not chunk:
            break
        size += len(chunk)
        if size > limits.max_bytes:
            limits.too_long(size, where)
            while _read(stream, where, 0, size):  # drain: a truncated tail is still reported
                pass
            return
        parts.append(chunk)
    text, replaced = decode(b"".join(parts))
    yield [text], replaced


def open_parquet(source) -> pq.ParquetFile:
    """A parquet file to stream. pyarrow's default pre-buffering keeps every row group a reader has
    read until it is closed, so streaming a 250 MB shard held all of it (peak RSS 314 vs 178 MB)."""
    return pq.ParquetFile(source, pre_buffer=False)


def _parquet_batches(shard: dict, column: str, raw, where: str, limits: Limits) -> Iterator[tuple[list, int]]:
    try:
        pf = open_parquet(raw)
    except Exception as e:
        raise DataError(f"{where}: not a readable parquet file ({e})") from None
    names = pf.schema_arrow.names
    if column not in names:
        raise DataError(f"{where}: no column {column!r} (data.text_column); available columns: {names}")
    typ = pf.schema_arrow.field(column).type
    binary = pa.types.is_binary(typ) or pa.types.is_large_binary(typ)
    if not (binary or pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise DataError(f"{where}: column {column!r} has type {typ}, not text")
    groups = range(*shard["range"]) if shard["range"] else None
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_DOCS, columns=[column], row_groups=groups):
            sizes = pc.binary_length(batch.column(0)).fill_null(0).to_pylist()
            values = batch.column(0).to_pylist()
            kept, replaced = [], 0
            for i, (value, size) in enumerate(zip(values, sizes)):
                if limits.too_long(size, f"{where} (row {row + i})"):
                    continue
                text, bad = decode(value) if binary and value is not None else (value or "", 0)
                kept.append(text)
                replaced += bad
            row += len(values)
            yield kept, replaced
    except OSError as e:
        raise DataError(f"{where}: corrupt parquet data ({e})") from None


def read_file(shard: dict, raw, where: str, column: str = "text", limits: Limits | None = None):
    """Stream one file shard (``raw``: a binary file object) as batches ``(documents, number with
    invalid UTF-8 replaced)``. JSON lines: one document per line (field ``column``); parquet: one per
    row; ``.txt``: the whole file is one document (splitting paragraphs would break books). Empty
    documents are kept (as ""): the caller drops and counts them."""
    limits = limits or Limits()
    if shard["format"] == "txt":
        yield from _txt_batches(shard, raw, where, limits)
    elif shard["format"] == "jsonl":
        yield from _jsonl_batches(shard, column, raw, where, limits)
    else:
        yield from _parquet_batches(shard, column, raw, where, limits)


# --------------------------------------------------------------------------- the stages' parquet shards
def parquet_files(source) -> list[str]:
    """The parquet files of ``source`` (a file, a directory of ``*.parquet`` or a list), in sorted
    (= corpus) order; a missing path is a DataError naming it."""
    paths = sorted(map(str, source)) if isinstance(source, (list, tuple)) else [str(source)]
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(str(f) for f in Path(p).glob("*.parquet"))
        elif os.path.exists(p):
            files.append(p)
        else:
            raise DataError(f"split directory does not exist: {p}")
    return files


def require_column(path: str, column: str = "text") -> pq.ParquetFile:
    """The parquet file ``path`` opened for streaming; a DataError naming it when ``column`` is missing."""
    pf = open_parquet(path)
    if column not in pf.schema_arrow.names:
        raise DataError(f"{path}: no column {column!r}; available columns: {pf.schema_arrow.names}")
    return pf


def text_batches(source, batch_size: int, column: str = "text") -> Iterator[pa.RecordBatch]:
    """Record batches of ``column`` from every file of ``source`` (:func:`parquet_files`), read one at a
    time. Not ``pyarrow.dataset``: its scanner reads ahead of a slow consumer without bound, so a
    tokenize job's peak RSS grew with the shard (606 MB for a 250 MB shard, 916 MB for 450 MB)."""
    for f in parquet_files(source):
        yield from require_column(f, column).iter_batches(columns=[column], batch_size=batch_size)


def split_texts(source, batch_size: int = 1000, keep_empty: bool = False) -> Iterator[list[str]]:
    """The non-empty documents (every row with ``keep_empty``, null as "") of a split (a parquet file, a
    directory of shards or a list of files), in batches of strings, files in sorted (= corpus) order."""
    for batch in text_batches(source, batch_size):
        texts = batch.column(0).to_pylist()
        yield [t or "" for t in texts] if keep_empty else [t for t in texts if t]


def count_rows(source) -> int:
    """Documents in every file of ``source``, from the footers."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in parquet_files(source))
