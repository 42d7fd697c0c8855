"""The ``split`` stage: assign whole documents to train/validation/test, one shard at a time.

No global pass over a large corpus, and the same assignment however the corpus is sharded:

- ``shuffle: true`` (default): a document goes to the split its seeded hash falls in
  (``blake2b(text, key=seed)`` as a number in [0, 1) against the cumulative ratios). Shards are
  independent; identical documents always land in the same split (no train/test leakage of
  duplicates); split sizes follow the ratios up to sampling noise. ``seed`` picks the assignment.
  A small corpus (its smallest split expects fewer than ``FILL_EXPECTED_BELOW`` documents) is hashed
  whole first, by the split plan or by its one split job, and a split the hash left empty takes the
  documents nearest to its interval (:func:`fill_moves`): every split gets documents.
- ``shuffle: false``: corpus order, contiguous: the first documents go to train, then validation,
  then test, with exact counts (largest-remainder rounding of ``n * ratio``). Each shard job is told
  how many documents come before it (from every shard's download stats).

Either way each split keeps corpus order inside a shard; training shuffles windows itself (seeded by
the run's seed). ``data.max_documents`` keeps the first N documents of the corpus (also from the
download stats). Memory: one record batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from archbench.data.readers import open_parquet
from archbench.errors import ConfigError, DataError
from archbench.io import atomic_file, write_json
from archbench.logs import progress

CANONICAL_ORDER = ("train", "validation", "test")
# Below this many expected documents in the smallest split the hash split can leave it empty
# (probability ~ e^-expected): the plan then hashes the whole corpus to fill every split.
FILL_EXPECTED_BELOW = 50
SCHEMA = pa.schema([("text", pa.string())])


def _validate_ratios(ratios: dict, out_dirs: dict) -> list[str]:
    """Check ``splits`` ratios; return split names in output order (train, validation, test, others)."""
    if not ratios:
        raise ConfigError("splits: no split ratios given")
    for name, r in ratios.items():
        if not isinstance(r, (int, float)) or isinstance(r, bool) or not math.isfinite(r) or r < 0:
            raise ConfigError(f"splits.{name}: ratio must be a non-negative number, got {r!r}")
    total = sum(ratios.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"splits: ratios must sum to 1, got {total:g} ({ratios})")
    if set(ratios) != set(out_dirs):
        raise ConfigError(f"splits: ratio names {sorted(ratios)} differ from output splits {sorted(out_dirs)}")
    rank = {n: i for i, n in enumerate(CANONICAL_ORDER)}
    return sorted(ratios, key=lambda n: rank.get(n, len(rank)))  # stable for unknown names


def split_counts(n: int, ratios: list[float]) -> list[int]:
    """Exact per-split counts summing to ``n``: floor, then hand the remainder to the largest
    fractional parts; finally make sure every positive ratio gets ≥ 1 document when possible."""
    exact = [n * r for r in ratios]
    counts = [math.floor(x) for x in exact]
    by_fraction = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_fraction[: n - sum(counts)]:
        counts[i] += 1
    for i, r in enumerate(ratios):
        if r > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[i] = 1
    return counts


def hash_fractions(texts: list[str], seed: int) -> np.ndarray:
    """A number in [0, 1) per document: its blake2b hash keyed by ``seed`` (stable across machines and
    Python versions, unlike ``hash()``)."""
    key = int(seed).to_bytes(8, "little", signed=False)
    digests = b"".join(
        hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8, key=key).digest() for t in texts
    )
    return np.frombuffer(digests, dtype="<u8").astype(np.float64) / 2.0**64


def check_corpus_size(n: int, ratios: dict[str, float], max_documents: int | None = None) -> None:
    """A DataError naming the numbers when ``n`` documents (``max_documents`` applied) cannot give every
    split with a positive ratio at least one."""
    n = n if max_documents is None else min(n, int(max_documents))
    wanted = [s for s, r in ratios.items() if r > 0]
    if n < len(wanted):
        raise DataError(
            f"the corpus has {n} non-empty document(s) (data.max_documents: {max_documents}); the splits "
            f"{', '.join(wanted)} need at least {len(wanted)} (1 each): use a larger corpus or fewer splits"
        )


def write_split_plan(
    stats_paths: list[str],
    out_path: str,
    ratios: dict[str, float] | None = None,
    max_documents: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    raw_paths: list[str] | None = None,
) -> dict:
    """The ``split_plan`` job: every shard's document count (from its download stats) in one small file,
    so each split job reads one file, not every shard's stats (a DAG linear in the shard count).

    With ``shuffle`` and a small corpus (:data:`FILL_EXPECTED_BELOW`), the plan also hashes every kept
    document of ``raw_paths`` (the shards' parquet files, in corpus order) and records under ``fill`` the
    hashes each split takes so that none is empty; the split jobs apply them."""
    counts = {}
    for p in stats_paths:
        with open(p, encoding="utf-8") as f:
            st = json.load(f)
        counts[st["shard"]] = int(st["n_documents"])
    plan = {"n_shards": len(counts), "n_documents": sum(counts.values()), "shards": dict(sorted(counts.items()))}
    if ratios is not None:
        check_corpus_size(plan["n_documents"], ratios, max_documents)
        n = plan["n_documents"] if max_documents is None else min(plan["n_documents"], int(max_documents))
        if shuffle and raw_paths and needs_fill(n, ratios):
            names = list(ratios)
            limit = int(max_documents) if max_documents is not None else None
            parts, position = [], 0
            for raw in sorted(raw_paths):  # shard files sort in corpus order
                parts.append(_fractions(open_parquet(raw), seed, limit, position))
                position += len(parts[-1])
            moves = fill_moves(np.concatenate(parts), _hash_ends(ratios, names), [float(ratios[s]) for s in names])
            plan["fill"] = {names[k]: v for k, v in moves.items()}
    write_json(plan, out_path)
    return plan


def needs_fill(n: int, ratios: dict[str, float]) -> bool:
    """Whether the hash split of ``n`` documents could plausibly leave a split empty."""
    smallest = min((float(r) for r in ratios.values() if r > 0), default=1.0)
    return n * smallest < FILL_EXPECTED_BELOW


def _hash_ends(ratios: dict[str, float], names: list[str]) -> np.ndarray:
    ends = np.cumsum([float(ratios[s]) for s in names])
    ends[-1] = 1.0  # float sums: the last split takes everything left
    return ends


def corpus_positions(stats_paths: list[str], shard: str, max_documents: int | None = None) -> tuple[int, int]:
    """(documents before ``shard``, documents kept in the whole corpus) from the split plan
    (:func:`write_split_plan`) or every shard's download stats (shards in name order = corpus order),
    with ``max_documents`` applied."""
    counts = {}
    for p in stats_paths:
        with open(p, encoding="utf-8") as f:
            st = json.load(f)
        if "shards" in st:  # the split plan
            counts.update(st["shards"])
        else:
            counts[st["shard"]] = int(st["n_documents"])
    if shard not in counts:
        raise DataError(f"no download stats for shard {shard!r} among {len(counts)} shards")
    offset = sum(n for name, n in counts.items() if name < shard)
    total = sum(counts.values())
    return offset, total if max_documents is None else min(total, int(max_documents))


def _fractions(source, seed: int, limit: int | None, offset: int) -> np.ndarray:
    """Hash fractions of every document of the shard that is kept (a first pass: 8 bytes a document)."""
    parts, position = [], offset
    for batch in source.iter_batches(columns=["text"], batch_size=4096):
        texts = [t or "" for t in batch.column(0).to_pylist()]
        if limit is not None:
            texts = texts[: max(0, limit - position)]
        parts.append(hash_fractions(texts, seed))
        position += len(texts)
    return np.concatenate(parts) if parts else np.zeros(0)


def minimum_per_split(fractions: np.ndarray, ends: np.ndarray, ratios: list[float]) -> np.ndarray:
    """Split labels from hash ``fractions``, then every split with a positive ratio given at least one
    document when there are enough: a split left empty takes, from the largest split, the document
    whose hash lies nearest to its own interval (deterministic; a large corpus never needs it)."""
    labels = np.searchsorted(ends, fractions, side="right")
    wanted = [k for k, r in enumerate(ratios) if r > 0]
    if len(fractions) < len(wanted):
        return labels
    starts = np.concatenate([[0.0], ends[:-1]])
    for k in wanted:
        if (labels == k).any():
            continue
        sizes = np.bincount(labels, minlength=len(ratios))
        donor = int(np.argmax(sizes))
        pool = np.flatnonzero(labels == donor)
        centre = (starts[k] + ends[k]) / 2
        chosen = fractions[pool[np.argmin(np.abs(fractions[pool] - centre))]]
        labels[fractions == chosen] = k  # identical documents (one hash) move together
    return labels


def fill_moves(fractions: np.ndarray, ends: np.ndarray, ratios: list[float]) -> dict[int, list[float]]:
    """The hashes :func:`minimum_per_split` moves, by the index of the split they move to. Keyed by hash,
    not position, so a split job applies them to its shard's documents whatever the sharding."""
    hashed = np.searchsorted(ends, fractions, side="right")
    fixed = minimum_per_split(fractions, ends, ratios)
    changed = fixed != hashed
    return {int(k): sorted({float(x) for x in fractions[changed & (fixed == k)]}) for k in np.unique(fixed[changed])}


def split_shard(
    raw_parquet: str,
    out_files: dict[str, str],
    ratios: dict[str, float],
    shuffle: bool,
    seed: int,
    offset: int = 0,
    total: int | None = None,
    max_documents: int | None = None,
    stats_path: str | None = None,
    shard: str | None = None,
    fill_splits: bool = False,
    fill: dict[str, list[float]] | None = None,
) -> dict:
    """Split one normalised shard (parquet, column ``text``) into one parquet file per split.

    ``offset``: documents of the corpus before this shard; ``total``: documents in the corpus (after
    ``max_documents``), needed when ``shuffle`` is false. ``fill_splits`` (the shard is the whole corpus):
    every split gets documents (:func:`fill_moves`); ``fill``: the moves the split plan made for a
    small corpus of many shards (split name -> hashes). Returns (and optionally writes) per-split
    document / character / byte counts.
    """
    names = _validate_ratios(ratios, out_files)
    if not shuffle and total is None:
        raise ValueError("split_shard(shuffle=False) needs the corpus total")
    if total is not None and total == 0:
        raise DataError("the corpus has no non-empty documents to split")
    limit = int(max_documents) if max_documents is not None else None
    if not shuffle:
        ends = np.cumsum(split_counts(total, [float(ratios[s]) for s in names]))
    else:
        ends = _hash_ends(ratios, names)
    stats = {
        "shard": shard,
        "shuffle": bool(shuffle),
        "seed": int(seed),
        "ratios": dict(ratios),
        "n_documents": 0,
        "n_beyond_max_documents": 0,
        "splits": {s: {"n_documents": 0, "n_chars": 0, "n_bytes": 0} for s in names},
    }
    try:
        source = open_parquet(raw_parquet)
    except (OSError, pa.ArrowInvalid) as e:
        raise DataError(f"{raw_parquet}: not a readable parquet file ({e})") from None
    if "text" not in source.schema_arrow.names:
        raise DataError(f"{raw_parquet}: no column 'text'; available columns: {source.schema_arrow.names}")
    moves = {names.index(s): np.asarray(v, dtype=np.float64) for s, v in (fill or {}).items()}
    if shuffle and fill_splits:  # every split gets documents, however few the corpus holds
        fractions = _fractions(source, seed, limit, offset)
        moves = {k: np.asarray(v) for k, v in fill_moves(fractions, ends, [float(ratios[s]) for s in names]).items()}
    if moves and not shuffle:
        raise ValueError("split fill moves apply to the hash split only")
    n_moved = 0
    position = offset
    with contextlib.ExitStack() as stack:  # every split file is moved into place only if all succeed
        writers = {}
        for s in names:
            tmp = stack.enter_context(atomic_file(out_files[s]))
            writers[s] = stack.enter_context(pq.ParquetWriter(tmp, SCHEMA))
        batches = source.iter_batches(columns=["text"], batch_size=4096)
        for batch in progress(batches, f"split {shard}", source.metadata.num_rows, unit="doc", weight=len):
            texts = [t or "" for t in batch.column(0).to_pylist()]
            if limit is not None:
                keep = max(0, min(len(texts), limit - position))
                stats["n_beyond_max_documents"] += len(texts) - keep
                texts = texts[:keep]
            if texts:
                where = hash_fractions(texts, seed) if shuffle else np.arange(position, position + len(texts))
                labels = np.searchsorted(ends, where, side="right")
                for k, hashes in moves.items():
                    hit = np.isin(where, hashes) & (labels != k)
                    labels[hit] = k
                    n_moved += int(hit.sum())
                for k, s in enumerate(names):
                    part = [t for t, lab in zip(texts, labels) if lab == k]
                    if part:
                        writers[s].write_table(pa.Table.from_pydict({"text": part}, schema=SCHEMA))
                        st = stats["splits"][s]
                        st["n_documents"] += len(part)
                        st["n_chars"] += sum(map(len, part))
                        st["n_bytes"] += sum(len(t.encode("utf-8", "surrogatepass")) for t in part)
            position += len(texts)
            stats["n_documents"] += len(texts)
    if n_moved:
        stats["n_moved_to_fill_splits"] = n_moved
    if stats_path:
        write_json(stats, stats_path)
    return stats


def split_shard_job(
    shard: str,
    raw_parquet: str,
    count_stats: list[str],
    out_files: dict[str, str],
    ratios: dict[str, float],
    shuffle: bool,
    seed: int,
    max_documents: int | None,
    stats_path: str,
) -> dict:
    """The Snakemake job: :func:`split_shard` with this shard's corpus position taken from the split plan
    (given only when needed: ``shuffle`` false or ``max_documents`` set)."""
    offset, total = corpus_positions(list(count_stats), shard, max_documents) if count_stats else (0, None)
    if total is not None:
        check_corpus_size(total, ratios)
    # A corpus of one shard (its own stats are all the counts) fills every split itself; a small corpus of
    # many shards gets its moves from the split plan. The moves are hashes: the assignment never depends
    # on the sharding.
    whole, fill = False, None
    if len(count_stats) == 1:
        with open(count_stats[0], encoding="utf-8") as f:
            counts = json.load(f)
        whole = "shards" not in counts  # a shard's own stats, not the split plan
        fill = counts.get("fill")
    return split_shard(
        raw_parquet,
        out_files,
        ratios,
        shuffle,
        seed,
        offset=offset,
        total=None if shuffle else total,
        max_documents=max_documents,
        stats_path=stats_path,
        shard=shard,
        fill_splits=whole and shuffle and total is not None and needs_fill(total, ratios),
        fill=fill,  # the plan records moves for the hash split only
    )
