"""The ``download`` stage: each shard of the corpus normalised into one parquet file with a ``text``
column, streamed one record batch at a time; its source (``archbench.data.sources``) reads it.

:func:`download_shard` is the per-shard Snakemake job; :func:`load_documents` / :func:`download` read a
whole (small) corpus in one process, for tests and tools.
"""

from __future__ import annotations

import logging
import time
import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from archbench.data.readers import Limits
from archbench.data.sources import plan_shards, read_shard
from archbench.errors import DataError
from archbench.io import atomic_file, write_json
from archbench.logs import progress

log = logging.getLogger(__name__)

SCHEMA = pa.schema([("text", pa.string())])


def _normalise(shard: dict, data: dict, limits: Limits):
    """Yield (non-empty documents, counts) per record batch of one shard."""
    for docs, replaced in read_shard(shard, data, limits):
        kept = [d for d in docs if d.strip()]
        yield kept, {"n_read": len(docs), "n_dropped_empty": len(docs) - len(kept), "n_replaced_utf8": replaced}


def download_shard(shard: dict, data_cfg: dict, out_parquet: str, out_stats: str) -> dict:
    """Run the ``download`` stage for one shard: stream its records into ``out_parquet`` (column ``text``,
    one row group per batch) and its counts into ``out_stats``. Empty / whitespace-only documents are
    dropped and counted; invalid UTF-8 is replaced (U+FFFD) and counted; documents longer than
    ``data.max_document_bytes`` are skipped and counted (or fail, ``data.on_long_document``).
    ``data.max_documents`` is applied later, by the split stage. Memory: one record batch.
    """
    t0 = time.perf_counter()
    limits = Limits.from_data(data_cfg)
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
                _normalise(shard, data_cfg, limits),
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
    stats["n_skipped_too_long"] = limits.n_skipped
    if stats["n_dropped_empty"]:
        log.warning("%s: dropped %d empty document(s)", shard["name"], stats["n_dropped_empty"])
    if limits.n_skipped:
        log.warning(
            "%s: skipped %d document(s) longer than data.max_document_bytes (%d)",
            shard["name"],
            limits.n_skipped,
            limits.max_bytes,
        )
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
    data: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """A whole (small) corpus in memory as a one-column (``text``) DataFrame plus stats: every shard of
    the ``source`` / ``path`` in order, empty documents dropped and counted, invalid UTF-8 replaced and
    counted, at most ``max_documents`` kept (``data``: the rest of the section, e.g. ``data.mqar``). The pipeline itself never does this (see download_shard)."""
    t0 = time.perf_counter()
    data = {**(data or {}), "source": source, "path": path, "text_column": text_column}
    docs, stats = [], {"n_dropped_empty": 0, "n_replaced_utf8": 0}
    limits = Limits()
    for shard in plan_shards(data).values():
        for kept, counts in _normalise(shard, data, limits):
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
    """A whole (small) corpus into one parquet file (tests and tools; see load_documents)."""
    df, stats = load_documents(
        data_cfg.get("source") or "default",
        path=data_cfg.get("path"),
        text_column=data_cfg.get("text_column") or "text",
        max_documents=data_cfg.get("max_documents"),
        data=data_cfg,
    )
    with atomic_file(out_parquet) as tmp:
        pq.write_table(pa.Table.from_pydict({"text": df["text"].tolist()}, schema=SCHEMA), tmp, row_group_size=10_000)
    if out_stats:
        write_json(stats, out_stats)
    return stats
