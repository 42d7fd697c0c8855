"""Shards: the unit of work of the data stages.

A shard is one input file, or a slice of a big one (``data.shard_size_mb``): uncompressed JSON lines
are sliced at line boundaries by byte range, parquet files by row groups. Compressed files cannot be
seeked, so each is one shard (C4 ships 1024 of ~318 MB; they are already the publisher's shards).

The shard list is planned when Snakemake parses the workflow (:func:`plan_shards`, which asks the
config's data source), so every per-shard job is in the DAG, in dry runs and under Slurm. Shard names
are ``NNNNN-<file stem>[.SSSS]``: the zero-padded position in the sorted file list first, so sorted
names == corpus order and the token stream of a split (shards concatenated in name order) is the same
however the corpus was sharded.

Readers stream record batches (:func:`read_shard`): a job holds one batch, never a whole shard.
"""

from __future__ import annotations

from collections.abc import Iterator

from archbench.data.readers import (  # noqa: F401  (the readers' public names, kept importable here)
    ACCEPTED,
    BATCH_DOCS,
    COMPRESSION,
    FORMATS,
    Limits,
    count_rows,
    file_format,
    open_parquet,
    parquet_files,
    require_column,
    resolve_files,
    text_batches,
)
from archbench.data.sources import source_of

_SHARD_RE = r"\d+-[A-Za-z0-9._-]*"  # Snakemake wildcard constraint; never matches "index"


def plan_shards(data: dict, results: str = "results") -> dict[str, dict]:
    """{shard name: spec} for the config's ``data`` section, in corpus (= sorted name) order.

    A spec is JSON-able: name, source, path, format, compression, range (plus what its source adds).
    Cheap enough to run at every parse: a glob and a stat per local file (plus a parquet footer when
    slicing parquet).
    """
    return source_of(data).plan(data, results)


def read_shard(shard: dict, data: dict | None = None, limits: Limits | None = None) -> Iterator[tuple[list[str], int]]:
    """Stream a shard as batches ``(documents, number with invalid UTF-8 replaced)`` through its source
    (``data``: the config's data section; ``text_column``, ``max_document_bytes`` and the source's own
    settings). Empty documents are kept (as ""): the caller drops and counts them."""
    data = data or {}
    return source_of(shard).read(shard, data, limits or Limits.from_data(data))
