"""Small corpora: every split gets documents, a corpus too small for the splits fails before training
naming the numbers, and the offline tasks draw passages from long documents and a bounded sample."""

import json

import pandas as pd
import pytest

from archbench.data.split import check_corpus_size, split_shard
from archbench.errors import DataError
from archbench.evaluation.tasks import build_tasks, sample_documents

RATIOS = {"train": 0.9, "validation": 0.05, "test": 0.05}


VOCAB = ["".join(chr(97 + (j * 7 + m * (j % 5 + 1)) % 26) for m in range(5)) for j in range(97)]


def long_documents(n, words=400):
    return [f"speech {i}: " + " ".join(VOCAB[(i * 13 + k * k) % 97] for k in range(words)) for i in range(n)]


def test_every_split_of_a_20_document_shard_gets_documents(tmp_path):
    raw = tmp_path / "raw.parquet"
    pd.DataFrame({"text": long_documents(20)}).to_parquet(raw)
    moved = []
    for seed in range(8):
        out = {s: str(tmp_path / f"{seed}" / s / "x.parquet") for s in RATIOS}
        stats = split_shard(str(raw), out, RATIOS, shuffle=True, seed=seed, fill_splits=True)
        counts = [stats["splits"][s]["n_documents"] for s in RATIOS]
        assert min(counts) >= 1 and sum(counts) == 20, (seed, counts)
        moved.append(stats.get("n_moved_to_fill_splits", 0))
        again = split_shard(str(raw), out, RATIOS, shuffle=True, seed=seed, fill_splits=True)  # deterministic
        assert again["splits"] == stats["splits"]
    # 5% of 20 documents: a hash split alone leaves a split empty for most seeds (0.95^20 = 36% each)
    assert sum(m > 0 for m in moved) >= 2, moved


def test_a_corpus_too_small_for_the_splits_names_the_numbers():
    check_corpus_size(3, RATIOS)
    with pytest.raises(DataError) as err:
        check_corpus_size(10, RATIOS, max_documents=2)
    assert str(err.value) == (
        "the corpus has 2 non-empty document(s) (data.max_documents: 2); the splits train, validation, test "
        "need at least 3 (1 each): use a larger corpus or fewer splits"
    )


def test_offline_tasks_draw_passages_from_one_long_test_document(tmp_path):
    split = tmp_path / "test"
    split.mkdir()
    pd.DataFrame({"text": long_documents(1, words=2000)}).to_parquet(split / "00000.parquet")
    counts = build_tasks(str(split), str(tmp_path / "tasks"))
    assert counts["archbench_ppl"] >= 2 and counts["archbench_cloze"] > 0 and counts["archbench_lastword"] > 0
    rows = [json.loads(line) for line in open(tmp_path / "tasks" / "archbench_ppl.jsonl")]
    assert " ".join(r["text"] for r in rows) == long_documents(1, words=2000)[0]  # passages, in order


def test_the_tasks_read_a_bounded_seeded_sample_in_corpus_order(tmp_path):
    split = tmp_path / "test"
    split.mkdir()
    docs = [f"document {i} " + "w " * 20 for i in range(5000)]
    pd.DataFrame({"text": docs[:2500]}).to_parquet(split / "00000.parquet")
    pd.DataFrame({"text": docs[2500:]}).to_parquet(split / "00001.parquet")
    sample = sample_documents(str(split), 100, seed=3)
    assert len(sample) == 100 and sample == sample_documents(str(split), 100, seed=3)
    assert sample != sample_documents(str(split), 100, seed=4)
    positions = [docs.index(t) for t in sample]
    assert positions == sorted(positions) and positions[-1] > 2500  # corpus order, from both shards
    assert sample_documents(str(split), 6000, seed=3) == docs  # all of a split that fits, in order
