"""split stage: exact counts, seeded determinism, order without shuffle, config errors."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archbench.data.split import split_corpus, split_counts
from archbench.errors import ConfigError

SPLITS = ("train", "validation", "test")
RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}


@pytest.fixture
def raw(tmp_path):
    """100 numbered documents, stored as three parquet files (three Dask partitions)."""
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    docs = [f"document {i:03d}" for i in range(100)]
    for k, (a, b) in enumerate([(0, 30), (30, 75), (75, 100)]):
        pq.write_table(pa.table({"text": docs[a:b]}), raw_dir / f"part.{k}.parquet")
    return raw_dir, docs


def run(tmp_path, raw_path, ratios=RATIOS, shuffle=True, seed=0, tag="out"):
    out = {s: str(tmp_path / tag / s) for s in ratios}
    stats = split_corpus(str(raw_path), out, ratios, shuffle, seed, stats_path=str(tmp_path / tag / "stats.json"))
    return {s: pd.read_parquet(out[s])["text"].tolist() for s in ratios}, stats


def test_exact_counts_and_disjoint_cover(tmp_path, raw):
    raw_dir, docs = raw
    parts, stats = run(tmp_path, raw_dir)
    assert [len(parts[s]) for s in SPLITS] == [80, 10, 10]
    assert {s: stats["splits"][s]["n_documents"] for s in SPLITS} == {"train": 80, "validation": 10, "test": 10}
    assert sorted(parts["train"] + parts["validation"] + parts["test"]) == docs
    assert stats["splits"]["test"]["n_chars"] == sum(map(len, parts["test"]))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["stats.json", "test", "train", "validation"]


def test_same_seed_same_split_other_seed_differs(tmp_path, raw):
    raw_dir, docs = raw
    a, _ = run(tmp_path, raw_dir, seed=1, tag="a")
    b, _ = run(tmp_path, raw_dir, seed=1, tag="b")
    c, _ = run(tmp_path, raw_dir, seed=2, tag="c")
    assert a == b
    assert a["test"] != c["test"] and a["train"] != c["train"]
    assert a["train"] != sorted(a["train"])  # shuffled within the split, not just reassigned


def test_no_shuffle_keeps_order(tmp_path, raw):
    raw_dir, docs = raw
    parts, _ = run(tmp_path, raw_dir, shuffle=False)
    assert parts == {"train": docs[:80], "validation": docs[80:90], "test": docs[90:]}


def test_every_positive_split_gets_a_document():
    assert split_counts(10, [0.9, 0.05, 0.05]) == [8, 1, 1]
    assert split_counts(1189, [0.8, 0.1, 0.1]) == [951, 119, 119]
    assert split_counts(3, [0.98, 0.01, 0.01]) == [1, 1, 1]
    assert split_counts(7, [1.0, 0.0, 0.0]) == [7, 0, 0]


def test_rerun_overwrites_existing_output(tmp_path, raw):
    raw_dir, docs = raw
    run(tmp_path, raw_dir, seed=1)
    parts, _ = run(tmp_path, raw_dir, shuffle=False)
    assert parts["test"] == docs[90:]


@pytest.mark.parametrize(
    "ratios, match",
    [
        ({"train": 0.8, "validation": 0.1, "test": 0.2}, "sum to 1"),
        ({"train": 1.1, "validation": -0.1, "test": 0.0}, "non-negative"),
        ({"train": 0.9, "validation": "0.1", "test": 0.0}, "non-negative"),
    ],
)
def test_bad_ratios(tmp_path, raw, ratios, match):
    with pytest.raises(ConfigError, match=f"splits.*{match}"):
        split_corpus(str(raw[0]), {s: str(tmp_path / s) for s in SPLITS}, ratios, True, 0)
    assert not any((tmp_path / s).exists() for s in SPLITS)


def test_zero_ratio_split_is_written_empty(tmp_path, raw):
    parts, stats = run(tmp_path, raw[0], ratios={"train": 0.9, "validation": 0.1, "test": 0.0})
    assert [len(parts[s]) for s in SPLITS] == [90, 10, 0]
