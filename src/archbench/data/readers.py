"""Streaming readers for every input format, and the parquet readers of the later stages.

The bottom layer of ``archbench.data``: it imports no other data module. Data sources
(``archbench.data.sources``) find files with :func:`resolve_files` (and plan shards with
``archbench.data.shards``) and read them with :func:`read_file`; split / tokenizer / tokenize read their parquet shards with
:func:`text_batches` and friends.

Reading is linear in the input and bounded in memory: lines are found with ``bytes.find`` in each
1 MB chunk (never re-splitting a growing buffer), a document longer than ``data.max_document_bytes``
(UTF-8 bytes of its text) is skipped and counted (or fails, naming file and line), and batches are cut
by count and by bytes, so no Arrow string array nears its 2 GiB limit. What is held of a long document
before it is skipped, per format, is in docs/inputs.md. Every reader error is one DataError naming the
file and the line (byte offset in a slice; row group and row in parquet); invalid UTF-8 is replaced by
U+FFFD and counted in every format.
"""

from __future__ import annotations

import errno
import fnmatch
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
# A JSON line is dropped unparsed once its bytes, less what its escapes can save, pass the limit by this
# much (other fields of the record); below that it is parsed and its text's UTF-8 bytes are compared.
LINE_SLACK = 64 << 10
PARQUET_BATCH_BYTES = 16 << 20  # parquet batches sized by the row groups' bytes per row (footer)
GLOB_MAGIC = re.compile(r"[*?[]")
_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


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


def _scan(folder: str) -> list[os.DirEntry]:
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DataError(f"data.path: symlink loop at {folder} ({e.strerror})") from None
        raise DataError(f"data.path: cannot list {folder} ({e.strerror})") from None


def _folders(root: str, hidden: bool = True) -> Iterator[str]:
    """``root`` and every folder below it, following symlinked folders but entering each real folder
    once: a link back to a parent (a loop) or a second way into a folder is not walked again, so the
    walk ends and each real file is reached once. ``hidden=False``: not through dot-folders (as a glob's
    ``**``)."""
    seen, stack = set(), [root]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen:
            continue
        seen.add(real)
        yield folder
        subs = [e.path for e in _scan(folder) if e.is_dir(follow_symlinks=True) and (hidden or e.name[:1] != ".")]
        stack.extend(reversed(subs))


def _files_in(folder: str) -> Iterator[str]:
    for entry in _scan(folder):
        if entry.is_file(follow_symlinks=True):
            yield entry.path
        elif entry.is_symlink() and not os.path.exists(entry.path):
            _check_link(entry.path)


def _walk(root: str) -> list[str]:
    """Every file under ``root``, each real folder walked once (see :func:`_folders`)."""
    return [f for folder in _folders(root) for f in _files_in(folder)]


def _check_link(path: str) -> None:
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DataError(f"data.path: symlink loop at {path} ({e.strerror})") from None


def glob_files(pattern: str) -> list[str]:
    """The files a glob names, as ``glob.glob(pattern, recursive=True)`` would (``*`` / ``?`` / ``[...]``
    within a name, ``**`` for any folders, dot-names only when the pattern spells the dot) but bounded:
    each ``**`` walks each real folder once, so links to a parent neither loop nor repeat files."""
    parts = pattern.split(os.sep)
    i = next((k for k, p in enumerate(parts) if GLOB_MAGIC.search(p)), len(parts))
    base = os.sep.join(parts[:i]) or (os.sep if pattern.startswith(os.sep) else "")
    out: list[str] = []

    def join(folder: str, name: str) -> str:
        return os.path.join(folder, name) if folder else name

    def match(folder: str, rest: list[str]) -> None:
        comp, last = rest[0], len(rest) == 1
        if comp == "**":
            for sub in _folders(folder or ".", hidden=False):
                if not folder:  # a relative pattern gives relative names, as glob does
                    sub = "" if sub == "." else sub[2:]
                if last:
                    out.extend(f for f in _files_in(sub or ".") if os.path.basename(f)[:1] != ".")
                else:
                    match(sub, rest[1:])
            return
        if not GLOB_MAGIC.search(comp):
            path = join(folder, comp)
            if last and os.path.isfile(path):
                out.append(path)
            elif not last and os.path.isdir(path):
                match(path, rest[1:])
            return
        if not os.path.isdir(folder or "."):
            return
        for entry in _scan(folder or "."):
            if not fnmatch.fnmatchcase(entry.name, comp) or (entry.name[:1] == "." and comp[:1] != "."):
                continue
            path = join(folder, entry.name)
            if last and entry.is_file(follow_symlinks=True):
                out.append(path)
            elif not last and entry.is_dir(follow_symlinks=True):
                match(path, rest[1:])

    if i == len(parts):
        return [pattern] if os.path.isfile(pattern) else []
    match(base, parts[i:])
    return out


def resolve_files(path: str) -> list[str]:
    """A file, a directory (searched recursively for accepted files) or a glob -> sorted file list.

    An existing path is taken literally (a folder ``brack[1]`` is that folder, not a glob). Files
    reached twice (through symlinks, or a glob through a linked folder) are kept once, under the first
    path in sorted order: a duplicate could otherwise straddle train and test."""
    path = str(path)
    if os.path.isdir(path):
        files = [p for p in _walk(path) if accepted(p)]
        if not files:
            raise DataError(f"data.path directory {path} holds no {ACCEPTED} files")
    elif os.path.exists(path):
        files = [path]
    elif GLOB_MAGIC.search(path):
        files = glob_files(path)
        if not files:
            raise DataError(f"data.path glob matched no files: {path}")
    else:
        _check_link(path)
        raise DataError(f"data.path does not exist: {path}")
    unique = {}
    for f in sorted(files):
        unique.setdefault(os.path.realpath(f), f)
    files = sorted(unique.values())
    for f in files:
        file_format(f)  # one clear error for the first unsupported file
        if COMPRESSION.get(os.path.splitext(f)[1].lower()) and os.path.getsize(f) == 0:
            raise DataError(empty_compressed(f))
    return files


def empty_compressed(where: str) -> str:
    return (
        f"{where}: empty file (0 bytes), not a valid compressed stream (an interrupted copy?); "
        "copy it again or remove it"
    )


# --------------------------------------------------------------------------- input files
class _Counted:
    """A file object that counts the bytes read from it (a decompressor's input): none at all at the
    end of the stream means a zero-byte file, which pyarrow's decompressors read as empty."""

    def __init__(self, raw):
        self.raw, self.n = raw, 0

    def read(self, n=-1):
        data = self.raw.read(n)
        self.n += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self.raw, name)


class _Stream:
    """The (decompressed) bytes of one input file, read in chunks; every failure one DataError naming
    the file and where reading stopped."""

    def __init__(self, raw, compression, where: str, start: int = 0):
        self.where, self.first = where, start == 0
        self.counted = _Counted(raw) if compression else None
        self.stream = (
            pa.CompressedInputStream(pa.PythonFile(self.counted, mode="r"), compression) if compression else raw
        )

    def read(self, lineno: int, offset: int) -> bytes:
        try:
            chunk = self.stream.read(_READ_BYTES)
        except Exception as e:  # zlib / zstd / I/O errors surface here, whatever the library
            raise DataError(
                f"{self.where}: corrupt or truncated data after line {lineno} (uncompressed byte offset "
                f"{offset}): {_one_line(e)}"
            ) from None
        if self.first:
            self.first = False
            chunk = _check_encoding(chunk, self.where)
            if not chunk and self.counted is not None and self.counted.n == 0:
                raise DataError(empty_compressed(self.where))
        return chunk


def _one_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _check_encoding(head: bytes, where: str) -> bytes:
    """The file's first chunk without a UTF-8 byte-order mark; a UTF-16 / UTF-32 file (by its mark) is
    one DataError: read as UTF-8 it would be all replacement characters."""
    if head.startswith(b"\xef\xbb\xbf"):
        return head[3:]
    for bom, name in _BOMS.items():
        if head.startswith(bom):
            raise DataError(
                f"{where}: the file is {name} (byte-order mark {bom.hex(' ')}), not UTF-8; convert it, "
                f"e.g. iconv -f {name} -t UTF-8"
            )
    return head


def decode(raw: bytes) -> tuple[str, int]:
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), 1


def _escape_saving(piece: bytes) -> int:
    r"""At least what the JSON escapes in ``piece`` save against the text's UTF-8 bytes (``\uXXXX``: 6
    bytes for 1 to 3; ``\n``: 2 for 1), so no line whose text fits is dropped for its escapes."""
    return 5 * piece.count(b"\\u") + piece.count(b"\\")


def lines(stream: _Stream, where: str, start: int, end: int | None, limits: Limits, escapes: bool = False):
    """(line number, byte offset, raw line) of every line starting in [start, end) of the (decompressed)
    stream, which is positioned at ``max(start - 1, 0)``. Linear in the input: each chunk is scanned
    once; a line longer than the limit (``escapes``: than the limit plus what its JSON escapes save and
    LINE_SLACK) is dropped as it streams by (counted, or a DataError). A corrupt or truncated stream is
    one DataError naming the file, the last good line and offset."""
    lineno, offset = 0, max(start - 1, 0)
    parts, size, saved, dropping = [], 0, None, False  # the line in progress
    skip_first = start > 0  # the line in progress at `start` belongs to the previous slice
    slack = LINE_SLACK if escapes else 0

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
        chunk = stream.read(lineno, offset)
        if not chunk:
            break
        pos = 0
        while True:
            nl = chunk.find(b"\n", pos)
            piece = chunk[pos:] if nl < 0 else chunk[pos:nl]
            size += len(piece)
            if not dropping and not skip_first:
                parts.append(piece)
                if size > limits.max_bytes:
                    if escapes:
                        saved = sum(map(_escape_saving, parts)) if saved is None else saved + _escape_saving(piece)
                    # at most 2/3 saved (ensure_ascii's CJK, accents and emoji are 2-3x their UTF-8):
                    # a line held is never more than 3x the limit, whatever its backslashes
                    text_max = size - min(saved or 0, size * 2 // 3)
                    if text_max > limits.max_bytes + slack:
                        at = f"{where}:{lineno + 1}" if not start else f"{where} (byte offset {offset})"
                        limits.too_long(text_max, at)
                        dropping, parts = True, []
            if nl < 0:
                break
            out = done(parts, size, dropping)
            if out is StopIteration:
                return
            if out is not None:
                yield out
            parts, size, saved, dropping, pos = [], 0, None, False, nl + 1
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


class _BigInt(str):
    """A JSON integer of more digits than Python's int() accepts (4,300): kept as its digits, so such a
    value in another field does not stop reading (as the text field it is refused as not text)."""


def _parse_int(digits: str):
    return int(digits) if len(digits) <= 4000 else _BigInt(digits)


_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_size(text: str) -> tuple[str, int, int]:
    r"""(text, its UTF-8 bytes, 1 when lone surrogates (JSON ``"\ud83d"``) were replaced by U+FFFD)."""
    if text.isascii():
        return text, len(text), 0
    try:
        return text, len(text.encode("utf-8")), 0
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
        return text, len(text.encode("utf-8")), 1


def _json_record(line: bytes, at: str) -> tuple[object, int]:
    text, replaced = decode(line)
    try:
        return json.loads(text, parse_int=_parse_int), replaced
    except json.JSONDecodeError as e:
        if line.lstrip()[:1] == b"[":
            hint = "; .json / .jsonl files must be JSON lines (one object per line)"
        elif b"\x00" in line:
            hint = "; the line holds NUL bytes: is the file UTF-16? convert it to UTF-8"
        else:
            hint = ""
        raise DataError(f"{at}: invalid JSON at column {e.colno} ({e.msg}){hint}") from None
    except RecursionError:
        raise DataError(f"{at}: invalid JSON (nested deeper than the JSON parser allows)") from None
    except ValueError as e:
        raise DataError(f"{at}: invalid JSON ({_one_line(e)})") from None


def _jsonl_batches(shard: dict, column: str, raw, where: str, limits: Limits) -> Iterator[tuple[list, int]]:
    start, end = shard["range"] or [0, None]
    if start:
        raw.seek(start - 1)
    stream = _Stream(raw, shard["compression"], where, start)
    batch = _Batcher()
    for lineno, offset, line in lines(stream, where, start, end, limits, escapes=True):
        if not line.strip():
            continue
        at = f"{where}:{lineno}" if not start else f"{where} (byte offset {offset})"
        record, replaced = _json_record(line, at)
        if not isinstance(record, dict):
            raise DataError(
                f"{at}: a JSON {type(record).__name__}, not an object; .json / .jsonl files must be "
                f"JSON lines (one object per line)"
            )
        if column not in record:
            raise DataError(f"{at}: no field {column!r} (data.text_column); available: {sorted(record)}")
        value = record[column]
        if value is not None and type(value) is not str:
            kind = "int" if isinstance(value, (_BigInt, int)) else type(value).__name__
            raise DataError(f"{at}: field {column!r} is {kind}, not text")
        value, size, surrogates = utf8_size(value or "")
        if limits.too_long(size, at):  # the text's own UTF-8 bytes, not the escaped line's
            continue
        batch.replaced += replaced or surrogates
        if batch.add(value, size):
            yield batch.take()
    if batch.docs or batch.replaced:
        yield batch.take()


def _txt_batches(shard: dict, raw, where: str, limits: Limits) -> Iterator[tuple[list, int]]:
    """A ``.txt`` file is one document, streamed in chunks; over the limit it is dropped unread-whole."""
    stream, parts, size = _Stream(raw, shard["compression"], where), [], 0
    while True:
        chunk = stream.read(0, size)
        if not chunk:
            break
        size += len(chunk)
        if size > limits.max_bytes:
            limits.too_long(size, where)
            while stream.read(0, size):  # drain: a truncated tail is still reported
                pass
            return
        parts.append(chunk)
    text, replaced = decode(b"".join(parts))
    yield [text], replaced


def open_parquet(source, **kw) -> pq.ParquetFile:
    """A parquet file to stream. pyarrow's default pre-buffering keeps every row group a reader has
    read until it is closed, so streaming a 250 MB shard held all of it (peak RSS 314 vs 178 MB)."""
    return pq.ParquetFile(source, pre_buffer=False, **kw)


def parquet_footer(path: str):
    """The footer (metadata) of an input parquet file; a truncated or non-parquet file (an HTML error
    page saved as ``.parquet``) is one DataError naming it."""
    try:
        return pq.ParquetFile(path).metadata
    except Exception as e:
        raise DataError(f"{path}: not a readable parquet file ({_one_line(e)})") from None


_TEXT_TYPES = ("is_string", "is_large_string", "is_string_view", "is_binary", "is_large_binary", "is_binary_view")


def _is_text_type(typ) -> bool:
    return any(getattr(pa.types, t, lambda _: False)(typ) for t in _TEXT_TYPES)


def _column_bytes(meta, g: int, column: str) -> int:
    rg = meta.row_group(g)
    for j in range(rg.num_columns):
        if rg.column(j).path_in_schema == column:
            return rg.column(j).total_uncompressed_size
    return rg.total_byte_size


def _texts(arr: pa.Array, binary: bool) -> tuple[list[str], int]:
    """Python strings of a text array; invalid UTF-8 (in a binary column, or a string column written
    without validation) replaced by U+FFFD and counted."""
    if not binary:
        try:
            arr.validate(full=True)  # UTF-8 checked in C++; the common case converts directly
            return [t or "" for t in arr.to_pylist()], 0
        except pa.ArrowInvalid:
            arr = arr.cast(pa.large_binary())
    texts, replaced = [], 0
    for value in arr.to_pylist():
        text, bad = decode(value) if value is not None else ("", 0)
        texts.append(text)
        replaced += bad
    return texts, replaced


def _dictionary_encoded(meta, g: int, column: str) -> bool:
    rg = meta.row_group(g)
    for j in range(rg.num_columns):
        if rg.column(j).path_in_schema == column:
            return rg.column(j).has_dictionary_page
    return False


def _by_bytes(arr: pa.Array, sizes: pa.Array) -> Iterator[tuple[int, pa.Array]]:
    """(offset, slice) of ``arr`` of at most PARQUET_BATCH_BYTES each (one row at least)."""
    start, acc = 0, 0
    for i, size in enumerate(sizes.to_pylist()):
        if acc and acc + size > PARQUET_BATCH_BYTES:
            yield start, arr.slice(start, i - start)
            start, acc = i, 0
        acc += size
    if start < len(arr):
        yield start, arr.slice(start)


def _parquet_batches(shard: dict, column: str, raw, where: str, limits: Limits) -> Iterator[tuple[list, int]]:
    """Rows of one parquet file (or row-group range) in batches of at most PARQUET_BATCH_BYTES of text:
    sized by the footer's bytes per row, and a dictionary-encoded column chunk (one 128 KB value in
    4,096 rows is a 67 KB file) read as a dictionary and decoded in slices of that many bytes. A
    document over the limit is dropped as an Arrow value, never made a Python string; pyarrow still
    decompresses the page holding it."""
    try:
        pf = open_parquet(raw)
        schema, meta = pf.schema_arrow, pf.metadata
        as_dict = open_parquet(raw, read_dictionary=[column]) if column in schema.names else None
    except Exception as e:
        raise DataError(f"{where}: not a readable parquet file ({_one_line(e)})") from None
    names = schema.names
    if column not in names:
        raise DataError(f"{where}: no column {column!r} (data.text_column); available columns: {names}")
    typ = schema.field(column).type
    value_type = typ.value_type if pa.types.is_dictionary(typ) else typ  # pandas category: dictionary
    if not _is_text_type(value_type):
        raise DataError(f"{where}: column {column!r} has type {typ}, not text")
    binary = not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type))
    groups = range(*shard["range"]) if shard["range"] else range(meta.num_row_groups)
    row = sum(meta.row_group(g).num_rows for g in range(groups.start))
    for g in groups:
        per_row = _column_bytes(meta, g, column) / max(meta.row_group(g).num_rows, 1)
        rows = int(min(BATCH_DOCS, max(1, PARQUET_BATCH_BYTES // max(per_row, 1))))
        # The footer undercounts a dictionary chunk of repeated values (4,096 rows of one 128 KB text:
        # 131 KB): read a small one as a dictionary, decoded by slices of bytes. A big chunk's bytes are
        # mostly its rows' own (the estimate holds), and pyarrow re-hashes a big dictionary (slow).
        small = _column_bytes(meta, g, column) <= 4 * PARQUET_BATCH_BYTES
        reader = as_dict if rows > 1 and small and _dictionary_encoded(meta, g, column) else pf
        batches = reader.iter_batches(batch_size=rows, columns=[column], row_groups=[g], use_threads=False)
        while True:
            try:  # corrupt pages fail here: in decompression, or as dictionary indices out of range
                batch = next(batches, None)
                if batch is None:
                    break
                arr = batch.column(0)
                if pa.types.is_dictionary(arr.type):  # sizes from the dictionary, values decoded by slices
                    sizes = pc.take(pc.binary_length(arr.dictionary), arr.indices).fill_null(0)
                else:
                    sizes = pc.binary_length(arr).fill_null(0)
            except (OSError, pa.ArrowException) as e:
                raise DataError(f"{where} (row group {g}, row {row}): corrupt parquet data ({_one_line(e)})") from None
            for offset, part in _by_bytes(arr, sizes):
                part_sizes = sizes.slice(offset, len(part))
                long = pc.greater(part_sizes, limits.max_bytes)
                if pc.any(long).as_py():
                    for i in pc.indices_nonzero(long).to_pylist():
                        limits.too_long(part_sizes[i].as_py(), f"{where} (row group {g}, row {row + offset + i})")
                    part = part.filter(pc.invert(long))
                if pa.types.is_dictionary(part.type):
                    part = part.dictionary_decode()
                yield _texts(part, binary)
            row += batch.num_rows


def read_file(shard: dict, raw, where: str, column: str = "text", limits: Limits | None = None):
    """Stream one file shard (``raw``: a binary file object) as batches ``(documents, number with
    invalid UTF-8 replaced)``. JSON lines: one document per line (field ``column``); parquet: one per
    row; ``.txt``: the whole file is one document (splitting paragraphs would break books). Empty
    documents are kept (as ""): the caller drops and counts them. Every error is a DataError naming
    the file and the line (byte offset in a slice; row group and row in parquet)."""
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
