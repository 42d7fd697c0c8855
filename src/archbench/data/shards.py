"""Shards: the unit of work of the data stages, and how a source plans them.

A shard is one input file, or a slice of a big one (``data.shard_size_mb``): uncompressed JSON lines
are sliced at line boundaries by byte range, parquet files by row groups. Compressed files cannot be
seeked, so each is one shard (C4 ships 1024 of ~318 MB; they are already the publisher's shards). In a
corpus of very many small files, neighbours are grouped into one shard (``data.min_shard_mb``).

A data source (``archbench.data.sources``) plans its shards with these helpers: :func:`slices` and
:func:`group_small` cut its files into entries, :func:`name_shards` names them
``NNNNN-<file stem>[.SSSS]`` (the zero-padded position in the sorted file list first, so sorted names ==
corpus order and the token stream of a split, shards concatenated in name order, is the same however the
corpus was sharded). The config's plan is ``archbench.data.sources.plan_shards``, run when Snakemake
parses the workflow, so every per-shard job is in the DAG, in dry runs and under Slurm.
"""

from __future__ import annotations

import hashlib
import os
import re

from archbench.data.readers import COMPRESSION, FORMATS, file_format, parquet_footer

SHARD_RE = r"\d+-[A-Za-z0-9._-]*"  # Snakemake wildcard constraint; never matches "index"
STEM_CHARS = 100  # a longer file stem is cut and given a hash (file names stay < 255 bytes)
GROUP_ABOVE_FILES = 1024  # data.min_shard_mb groups files only in corpora of more files than C4's


def stem(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (*COMPRESSION, *FORMATS):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "part"


_PERIODIC = re.compile(r"(.+)\1{19,}$")  # Snakemake refuses a wildcard value ending in 20 repeats


def _periodic(name: str) -> bool:
    return name.count(name[-1:]) >= 20 and _PERIODIC.search(name) is not None  # cheap test first


def shard_stem(path: str, hashed: bool = False) -> str:
    """The file part of a shard name: :func:`stem` (characters other than ``A-Za-z0-9._-`` become
    ``_``), unless it is longer than STEM_CHARS or ``hashed`` (the name would end in 20 or more repeats
    of one piece: Snakemake's PeriodicWildcardError): then its first 60 characters, ``-`` and the first
    8 hex digits of the sha256 of the file name. Deterministic, and unchanged for every other name."""
    s = stem(path)
    if len(s) <= STEM_CHARS and not hashed:
        return s
    digest = hashlib.sha256(os.path.basename(path).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{s[:60]}-{digest}"


def slices(path: str, fmt: str, compression, shard_bytes: int | None) -> list[list[int] | None]:
    """Byte ranges (jsonl) or row-group ranges (parquet) of a file; [None] = the whole file."""
    if not shard_bytes or compression or fmt == "txt":
        return [None]
    if fmt == "jsonl":
        size = os.path.getsize(path)
        n = max(1, -(-size // shard_bytes))
        return [None] if n == 1 else [[i * size // n, (i + 1) * size // n] for i in range(n)]
    meta = parquet_footer(path)
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
    """Shard specs ``NNNNN-<file stem>[.SSSS]`` (:func:`shard_stem`; as many digits as the largest
    number needs, so sorted names == corpus order) for ``(file or [files], slices)`` entries in corpus order;
    a shard of several files is named by its first and lists them all under ``files``."""
    width = max(5, len(str(len(entries) - 1)))
    shards = {}
    for i, (paths, parts) in enumerate(entries):
        paths = [paths] if isinstance(paths, str) else list(paths)
        fmt, compression = file_format(paths[0])
        part_width = max(4, len(str(len(parts) - 1)))  # .2000 before .10000, as text too
        for j, rng in enumerate(parts):
            name = f"{i:0{width}d}-{shard_stem(paths[0])}" + (f".{j:0{part_width}d}" if len(parts) > 1 else "")
            if _periodic(name):
                name = f"{i:0{width}d}-{shard_stem(paths[0], hashed=True)}" + (
                    f".{j:0{part_width}d}" if len(parts) > 1 else ""
                )
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
