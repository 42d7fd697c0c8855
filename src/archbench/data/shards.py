"""Shards: the unit of work of the data stages, and streaming readers for every input format.

A shard is one input file, or a slice of a big one (``data.shard_size_mb``): uncompressed JSON lines
are sliced at line boundaries by byte range, parquet files by row groups. Compressed files cannot be
seeked, so each is one shard (C4 ships 1024 of ~318 MB; they are already the publisher's shards).

The shard list is planned when Snakemake parses the workflow (:func:`plan_shards`), so every per-shard
job is in the DAG, in dry runs and under Slurm. Shard names are ``NNNNN-<file stem>[.SSSS]``: the
zero-padded position in the sorted file list first, so sorted names == corpus order and the token
stream of a split (shards concatenated in name order) is the same however the corpus was sharded.

Readers stream record batches (:func:`iter_texts`): a job holds one batch, never a whole shard.
"""

from __future__ import annotations

import fnmatch
import glob
import itertools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from archbench.errors import ConfigError, DataError

COMPRESSION = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt", ".parquet": "parquet"}
ACCEPTED = "/".join(FORMATS) + " (each also .gz / .zst)"
BATCH_DOCS = 4096  # documents per record batch (~8 MB of C4 text)
_READ_BYTES = 1 << 20
_SHARD_RE = r"\d+-[A-Za-z0-9._-]*"  # Snakemake wildcard constraint; never matches "index"


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


def _accepted(path: str) -> bool:
    try:
        file_format(path)
        return True
    except DataError:
        return False


def resolve_files(path: str) -> list[str]:
    """A file, a directory (searched recursively for accepted files) or a glob -> sorted file list."""
    path = str(path)
    if any(c in path for c in "*?["):
        files = [p for p in glob.glob(path, recursive=True) if os.path.isfile(p)]
        if not files:
            raise DataError(f"data.path glob matched no files: {path}")
    elif os.path.isdir(path):
        files = [str(p) for p in Path(path).rglob("*") if p.is_file() and _accepted(str(p))]
        if not files:
            raise DataError(f"data.path directory {path} holds no {ACCEPTED} files")
    elif os.path.exists(path):
        files = [path]
    else:
        raise DataError(f"data.path does not exist: {path}")
    for f in files:
        file_format(f)  # one clear error for the first unsupported file
    return sorted(files)


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (*COMPRESSION, *FORMATS):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "part"


def _slices(path: str, fmt: str, compression, shard_bytes: int | None) -> list[list[int] | None]:
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


def _name_shards(files: list[tuple[str, list]], source: str, **extra) -> dict[str, dict]:
    width = max(5, len(str(len(files) - 1)))
    shards = {}
    for i, (path, slices) in enumerate(files):
        fmt, compression = file_format(path)
        for j, rng in enumerate(slices):
            name = f"{i:0{width}d}-{_stem(path)}" + (f".{j:04d}" if len(slices) > 1 else "")
            shards[name] = {
                "name": name,
                "source": source,
                "path": path,
                "format": fmt,
                "compression": compression,
                "range": rng,
                **extra,
            }
    return dict(sorted(shards.items()))


def plan_shards(data: dict, results: str = "results") -> dict[str, dict]:
    """{shard name: spec} for the config's ``data`` section, in corpus (= sorted name) order.

    A spec is JSON-able: name, source, path, format, compression, range. Cheap enough to run at every
    parse: a glob and a stat per local file (plus a parquet footer when slicing parquet).
    """
    source = data.get("source", "default")
    if source == "default":
        return {
            "00000-kjv": {
                "name": "00000-kjv",
                "source": "default",
                "path": None,
                "format": "default",
                "compression": None,
                "range": None,
            }
        }
    if source == "local":
        if not data.get("path"):
            raise ConfigError("data.source is 'local' but data.path is not set")
        mb = data.get("shard_size_mb")
        shard_bytes = int(mb * 2**20) if mb else None
        files = resolve_files(data["path"])
        return _name_shards([(f, _slices(f, *file_format(f), shard_bytes)) for f in files], "local")
    if source == "hub":
        hub = data.get("hub") or {}
        if not hub.get("name"):
            raise ConfigError("data.source is 'hub' but data.hub.name is not set")
        files = hub_files(hub, results)
        return _name_shards([(f, [None]) for f in files], "hub", repo=hub["name"], revision=hub.get("revision"))
    if source == "mqar":  # synthetic recall documents, generated in one job (archbench.data.mqar)
        return {
            "00000-mqar": {
                "name": "00000-mqar",
                "source": "mqar",
                "path": None,
                "format": "mqar",
                "compression": None,
                "range": None,
            }
        }
    raise ConfigError(f"data.source must be 'default', 'local', 'hub' or 'mqar', got {source!r}")


# --------------------------------------------------------------------------- hub file selection
def expand_classes(pattern: str) -> list[str] | None:
    """All names a glob made only of literals and ``[...]`` classes can match, or None when it has
    ``*`` / ``?`` (then only a listing of the repository can say). ``c4-train.0000[0-2]`` -> 3 names."""
    if "*" in pattern or "?" in pattern:
        return None
    parts, i = [], 0
    for m in re.finditer(r"\[([^\]]+)\]", pattern):
        parts.append([pattern[i : m.start()]])
        body, chars = m.group(1), []
        if body.startswith(("!", "^")):
            return None
        k = 0
        while k < len(body):
            if k + 2 < len(body) and body[k + 1] == "-":
                chars += [chr(c) for c in range(ord(body[k]), ord(body[k + 2]) + 1)]
                k += 3
            else:
                chars.append(body[k])
                k += 1
        parts.append(sorted(set(chars)))
        i = m.end()
    parts.append([pattern[i:]])
    return ["".join(p) for p in itertools.product(*parts)]


def _hub_fs():
    from huggingface_hub import HfFileSystem  # only the hub source needs it

    return HfFileSystem()


def hub_files(hub: dict, results: str) -> list[str]:
    """Repository paths of the hub dataset's data files selected by ``data.hub.files``.

    A pattern of literals and ``[...]`` classes (C4's ``en/c4-train.0000[0-7]-of-01024.json.gz``) expands
    without the network, so dry runs work offline. A ``*`` / ``?`` pattern needs the repository's file
    list: it is fetched once at parse time and kept in ``{results}/data/hub_listing.json`` (the shard
    list must be known when the DAG is built; a checkpoint would hide every per-shard job from dry runs
    and Slurm job counts, and a kept listing also pins the shard list if the repository grows later).
    Delete that file to list again. ``data.hub.files`` null means ``{subset}/*{split}*``.
    """
    patterns = hub.get("files")
    if not patterns:
        split = hub.get("split") or "train"
        patterns = f"{hub['subset']}/*{split}*" if hub.get("subset") else f"*{split}*"
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    expanded = [expand_classes(p) for p in patterns]
    if all(e is not None for e in expanded):
        files = sorted({f for e in expanded for f in e})
    else:
        listing = _hub_listing(hub, results)
        files = sorted({f for f in listing if any(fnmatch.fnmatchcase(f, p) for p in patterns)})
        if not files:
            raise DataError(
                f"data.hub.files {patterns} matched none of the {len(listing)} files of "
                f"{hub['name']} (listing kept in {results}/data/hub_listing.json)"
            )
    for f in files:
        file_format(f)
    return files


def _hub_listing(hub: dict, results: str) -> list[str]:
    from archbench.io import write_json

    path = Path(results) / "data" / "hub_listing.json"
    key = {"name": hub["name"], "revision": hub.get("revision")}
    if path.is_file():
        kept = json.loads(path.read_text())
        if {k: kept.get(k) for k in key} == key:
            return kept["files"]
    from archbench.data.sources import check_hub_reachable

    check_hub_reachable()
    root = f"datasets/{hub['name']}" + (f"@{hub['revision']}" if hub.get("revision") else "")
    try:
        found = _hub_fs().find(root)
    except Exception as e:  # auth, unknown repository: user-facing
        raise DataError(f"cannot list the files of hub dataset {hub['name']!r}: {e}") from e
    files = sorted(f[len(root) + 1 :] for f in found if _accepted(f))
    write_json({**key, "files": files}, path)
    return files


# --------------------------------------------------------------------------- streaming readers
def _where(shard: dict) -> str:
    return shard["path"] if shard["source"] != "hub" else f"hf://datasets/{shard['repo']}/{shard['path']}"


def _open_raw(shard: dict):
    """A binary file object for the shard's file (local path or hub file, streamed)."""
    if shard["source"] == "hub":
        return _hub_fs().open(
            f"datasets/{shard['repo']}/{shard['path']}", "rb", revision=shard.get("revision"), block_size=8 << 20
        )
    if not os.path.isfile(shard["path"]):
        raise DataError(f"input file not found: {shard['path']}")
    return open(shard["path"], "rb")


def _stream(raw, compression):
    return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), compression) if compression else raw


def _decode(raw: bytes) -> tuple[str, int]:
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), 1


def _lines(stream, where: str, start: int, end: int | None):
    """(line number, byte offset, raw line) of every line starting in [start, end) of the (decompressed)
    stream, which is positioned at ``max(start - 1, 0)``. A corrupt or truncated stream is one DataError
    naming the file, the last good line and offset."""
    lineno, offset, buf = 0, max(start - 1, 0), b""
    skip_first = start > 0  # the line in progress at `start` belongs to the previous slice
    while True:
        try:
            chunk = stream.read(_READ_BYTES)
        except Exception as e:  # zlib / zstd / I/O errors surface here, whatever the library
            raise DataError(
                f"{where}: corrupt or truncated data after line {lineno} (uncompressed byte offset {offset}): {e}"
            ) from None
        if not chunk:
            break
        buf += chunk
        *complete, buf = buf.split(b"\n")
        for line in complete:
            if skip_first:
                skip_first = False
            else:
                if end is not None and offset >= end:
                    return
                lineno += 1
                yield lineno, offset, line
            offset += len(line) + 1
    if buf and not skip_first and (end is None or offset < end):
        yield lineno + 1, offset, buf


def _jsonl_batches(shard: dict, column: str, raw) -> Iterator[tuple[list, int]]:
    where, rng = _where(shard), shard["range"]
    start, end = rng or [0, None]
    if start:
        raw.seek(start - 1)
    stream = _stream(raw, shard["compression"])
    docs, replaced = [], 0
    for lineno, offset, line in _lines(stream, where, start, end):
        if not line.strip():
            continue
        at = f"{where}:{lineno}" if not start else f"{where} (byte offset {offset})"
        try:
            record = json.loads(line)
        except UnicodeDecodeError:
            text, _ = _decode(line)
            record, replaced = json.loads(text), replaced + 1
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
        docs.append(value or "")
        if len(docs) >= BATCH_DOCS:
            yield docs, replaced
            docs, replaced = [], 0
    if docs or replaced:
        yield docs, replaced


def open_parquet(source) -> pq.ParquetFile:
    """A parquet file to stream. pyarrow's default pre-buffering keeps every row group a reader has
    read until it is closed, so streaming a 250 MB shard held all of it (peak RSS 314 vs 178 MB)."""
    return pq.ParquetFile(source, pre_buffer=False)


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


def text_batches(source, batch_size: int, column: str = "text") -> Iterator[pa.RecordBatch]:
    """Record batches of ``column`` from every file of ``source`` (:func:`parquet_files`), read one at a
    time. Not ``pyarrow.dataset``: its scanner reads ahead of a slow consumer without bound, so a
    tokenize job's peak RSS grew with the shard (606 MB for a 250 MB shard, 916 MB for 450 MB)."""
    for f in parquet_files(source):
        yield from require_column(f, column).iter_batches(columns=[column], batch_size=batch_size)


def require_column(path: str, column: str = "text") -> pq.ParquetFile:
    """The parquet file ``path`` opened for streaming; a DataError naming it when ``column`` is missing."""
    pf = open_parquet(path)
    if column not in pf.schema_arrow.names:
        raise DataError(f"{path}: no column {column!r}; available columns: {pf.schema_arrow.names}")
    return pf


def count_rows(source) -> int:
    """Documents in every file of ``source``, from the footers."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in parquet_files(source))


def _parquet_batches(shard: dict, column: str, raw) -> Iterator[tuple[list, int]]:
    where = _where(shard)
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
    try:
        for batch in pf.iter_batches(batch_size=BATCH_DOCS, columns=[column], row_groups=groups):
            values = batch.column(0).to_pylist()
            if binary:
                pairs = [_decode(b) if b is not None else ("", 0) for b in values]
                yield [t for t, _ in pairs], sum(r for _, r in pairs)
            else:
                yield [t or "" for t in values], 0
    except OSError as e:
        raise DataError(f"{where}: corrupt parquet data ({e})") from None


def iter_texts(shard: dict, column: str = "text") -> Iterator[tuple[list[str], int]]:
    """Stream a shard as batches ``(documents, number with invalid UTF-8 replaced)``.

    JSON lines: one document per line (text in field ``column``); parquet: one per row; ``.txt``: the
    whole file is one document (splitting paragraphs would break books). Empty documents are kept
    (as ""): the caller drops and counts them.
    """
    if shard["format"] == "default":
        from archbench.data.sources import default_documents

        yield default_documents(), 0
        return
    with _open_raw(shard) as raw:
        if shard["format"] == "txt":
            stream = _stream(raw, shard["compression"])
            try:
                data = stream.read()
            except Exception as e:
                raise DataError(f"{_where(shard)}: corrupt or truncated {shard['compression']} data ({e})") from None
            text, replaced = _decode(data)
            yield [text], replaced
        elif shard["format"] == "jsonl":
            yield from _jsonl_batches(shard, column, raw)
        else:
            yield from _parquet_batches(shard, column, raw)
