"""The ``split`` stage: assign whole documents to train/validation/test with Dask.

Counts are exact (largest-remainder rounding of ``n * ratio``) rather than Bernoulli draws,
so a 0.8/0.1/0.1 split of 1,189 chapters is always 951/119/119 and every split with a
positive ratio gets at least one document. The assignment is a permutation drawn from
``numpy.random.default_rng(seed)``, hence identical for the same seed and input.
"""

from __future__ import annotations

import contextlib
import math

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from archbench.io import atomic_dir, write_json
from archbench.errors import ConfigError, DataError

CANONICAL_ORDER = ("train", "validation", "test")


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


def _label_partition(df: pd.DataFrame, offsets, labels, ranks, partition_info=None) -> pd.DataFrame:
    """Attach the split label and the shuffled rank of each row (global row position → arrays)."""
    start = offsets[partition_info["number"]] if partition_info else 0
    pos = np.arange(start, start + len(df))
    return df.assign(_split=labels[pos], _rank=ranks[pos])


def split_corpus(
    raw_parquet: str,
    out_dirs: dict[str, str],
    ratios: dict[str, float],
    shuffle: bool,
    seed: int,
    stats_path: str | None = None,
) -> dict:
    """Split the documents of ``raw_parquet`` (column ``text``) into one parquet directory per split.

    ``shuffle=False`` keeps corpus order: the first documents go to train, then validation, then
    test. ``shuffle=True`` assigns documents by a seeded permutation and writes each split in that
    shuffled order. Returns (and optionally writes) per-split document and character counts.
    """
    names = _validate_ratios(ratios, out_dirs)
    ddf = dd.read_parquet(raw_parquet, columns=["text"])
    lengths = ddf.map_partitions(len).compute().tolist()
    n = int(sum(lengths))
    if n == 0:
        raise DataError(f"{raw_parquet}: corpus has no documents to split")
    counts = split_counts(n, [float(ratios[s]) for s in names])

    # rank[i] = position of document i in the (possibly shuffled) order; the first counts[0]
    # ranks go to names[0], and so on.
    ranks = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    labels = np.repeat(np.arange(len(names), dtype=np.int8), counts)[ranks]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    meta = ddf._meta.assign(_split=np.int8(0), _rank=np.int64(0))
    labelled = ddf.map_partitions(_label_partition, offsets, labels, ranks, meta=meta)
    labelled = labelled.assign(n_chars=labelled["text"].str.len())

    stats = {"n_documents": n, "shuffle": bool(shuffle), "seed": int(seed), "ratios": dict(ratios), "splits": {}}
    with contextlib.ExitStack() as stack:  # every split is renamed into place only if all succeed
        writes = []
        for k, name in enumerate(names):
            part = labelled[labelled["_split"] == k]
            if shuffle:
                part = part.sort_values("_rank")
            tmp = stack.enter_context(atomic_dir(out_dirs[name]))
            writes.append(part[["text"]].to_parquet(tmp, write_index=False, compute=False))
        chars, *_ = dask.compute(labelled.groupby("_split")["n_chars"].sum(), *writes)
    for k, name in enumerate(names):
        stats["splits"][name] = {"n_documents": counts[k], "n_chars": int(chars.get(k, 0))}
    if stats_path:
        write_json(stats, stats_path)
    return stats
