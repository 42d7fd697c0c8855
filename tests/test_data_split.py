"""split stage, one shard at a time: seeded hash assignment independent of sharding, contiguous exact
counts without shuffle, max_documents across shards, config errors, atomic outputs."""

import hashlib
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archbench.data.split import split_counts, split_shard, split_shard_job
from archbench.errors import ConfigError

SPLITS = ("train", "validation", "test")
RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}
DOCS = [f"document {i:03d}" for i in range(100)]


def write_shards(root, bounds):
    """Normalised shards (as the download stage writes them) + their download stats."""
    root.mkdir(parents=True, exist_ok=True)
    shards = []
    for k, (a, b) in enumerate(bounds):
        name = f"{k:05d}-part"
        pq.write_table(pa.table({"text": DOCS[a:b]}), root / f"{name}.parquet")
        (root / f"{name}.json").write_text(json.dumps({"shard": name, "n_documents": b - a}))
        shards.append(name)
    return shards


def run(tmp_path, bounds, ratios=RATIOS, shuffle=True, seed=0, max_documents=None, tag="out"):
    """Split every shard as its Snakemake job would; return each split's documents in shard order."""
    raw = tmp_path / tag / "raw"
    shards = write_shards(raw, bounds)
    counts = [str(raw / f"{s}.json") for s in shards] if (not shuffle or max_documents) else []
    parts, stats = {s: [] for s in ratios}, []
    for shard in shards:
        out = {s: str(tmp_path / tag / s / f"{shard}.parquet") for s in ratios}
        stats.append(
            split_shard_job(
                shard,
                str(raw / f"{shard}.parquet"),
                counts,
                out,
                ratios,
                shuffle,
                seed,
                max_documents,
                str(tmp_path / tag / "stats" / f"{shard}.json"),
            )
        )
        for s in ratios:
            parts[s] += pd.read_parquet(out[s])["text"].tolist()
    return parts, stats


def expected_bucket(doc, seed, ratios=(0.8, 0.1, 0.1)):
    """The assignment rule written out independently: blake2b keyed by the seed, as a fraction."""
    h = hashlib.blake2b(doc.encode(), digest_size=8, key=seed.to_bytes(8, "little")).digest()
    u, acc = int.from_bytes(h, "little") / 2**64, 0.0
    for k, r in enumerate(ratios):
        acc += r
        if u < acc:
            return k
    return len(ratios) - 1


def test_hash_split_is_the_same_however_the_corpus_is_sharded(tmp_path):
    one, _ = run(tmp_path, [(0, 100)], tag="one")
    three, stats = run(tmp_path, [(0, 30), (30, 75), (75, 100)], tag="three")
    assert one == three
    assert sorted(one["train"] + one["validation"] + one["test"]) == DOCS  # disjoint cover
    for k, s in enumerate(SPLITS):  # each document where its seeded hash puts it, in corpus order
        assert one[s] == [d for d in DOCS if expected_bucket(d, 0) == k]
    assert sum(st["splits"]["test"]["n_documents"] for st in stats) == len(one["test"])
    assert sum(st["splits"]["test"]["n_chars"] for st in stats) == sum(map(len, one["test"]))
    assert 60 <= len(one["train"]) <= 95 and one["validation"] and one["test"]


def test_same_seed_same_split_other_seed_differs(tmp_path):
    a, _ = run(tmp_path, [(0, 50), (50, 100)], seed=1, tag="a")
    b, _ = run(tmp_path, [(0, 50), (50, 100)], seed=1, tag="b")
    c, _ = run(tmp_path, [(0, 50), (50, 100)], seed=2, tag="c")
    assert a == b
    assert a["test"] != c["test"] and a["train"] != c["train"]


def test_identical_documents_share_a_split(tmp_path):
    out = {s: str(tmp_path / f"{s}.parquet") for s in SPLITS}
    pq.write_table(pa.table({"text": ["same text"] * 20 + DOCS[:20]}), tmp_path / "raw.parquet")
    split_shard(str(tmp_path / "raw.parquet"), out, RATIOS, True, 7)
    holding = [s for s in SPLITS if "same text" in pd.read_parquet(out[s])["text"].tolist()]
    assert len(holding) == 1 and pd.read_parquet(out[holding[0]])["text"].tolist().count("same text") == 20


def test_no_shuffle_is_contiguous_with_exact_counts_across_shards(tmp_path):
    parts, stats = run(tmp_path, [(0, 30), (30, 75), (75, 100)], shuffle=False)
    assert parts == {"train": DOCS[:80], "validation": DOCS[80:90], "test": DOCS[90:]}
    assert [st["splits"]["train"]["n_documents"] for st in stats] == [30, 45, 5]


def test_max_documents_keeps_the_corpus_prefix_across_shards(tmp_path):
    parts, stats = run(tmp_path, [(0, 30), (30, 75), (75, 100)], shuffle=False, max_documents=50)
    assert parts == {"train": DOCS[:40], "validation": DOCS[40:45], "test": DOCS[45:50]}
    assert [st["n_beyond_max_documents"] for st in stats] == [0, 25, 25]
    hashed, _ = run(tmp_path, [(0, 30), (30, 75), (75, 100)], max_documents=50, tag="hashed")
    assert sorted(sum(hashed.values(), [])) == DOCS[:50]


def test_every_positive_split_gets_a_document():
    assert split_counts(10, [0.9, 0.05, 0.05]) == [8, 1, 1]
    assert split_counts(1189, [0.8, 0.1, 0.1]) == [951, 119, 119]
    assert split_counts(3, [0.98, 0.01, 0.01]) == [1, 1, 1]
    assert split_counts(7, [1.0, 0.0, 0.0]) == [7, 0, 0]


@pytest.mark.parametrize(
    "ratios, match",
    [
        ({"train": 0.8, "validation": 0.1, "test": 0.2}, "sum to 1"),
        ({"train": 1.1, "validation": -0.1, "test": 0.0}, "non-negative"),
        ({"train": 0.9, "validation": "0.1", "test": 0.0}, "non-negative"),
    ],
)
def test_bad_ratios(tmp_path, ratios, match):
    write_shards(tmp_path / "raw", [(0, 10)])
    with pytest.raises(ConfigError, match=f"splits.*{match}"):
        split_shard(
            str(tmp_path / "raw" / "00000-part.parquet"),
            {s: str(tmp_path / s / "x.parquet") for s in SPLITS},
            ratios,
            True,
            0,
        )
    assert not any((tmp_path / s).exists() for s in SPLITS)


def test_zero_ratio_split_is_written_empty_and_no_temporary_files(tmp_path):
    parts, _ = run(tmp_path, [(0, 100)], ratios={"train": 0.9, "validation": 0.1, "test": 0.0}, shuffle=False)
    assert [len(parts[s]) for s in SPLITS] == [90, 10, 0]
    assert sorted(p.name for p in (tmp_path / "out" / "test").iterdir()) == ["00000-part.parquet"]
