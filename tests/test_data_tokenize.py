"""tokenize stage: packed .bin layout, JSON metadata, atomic outputs."""

import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from archbench.data.tokenize import token_dtype, tokenize_split
from archbench.data.tokenizer import tokenizer_hash, train_tokenizer
from archbench.errors import DataError

DOCS = [f"Chapter {i}.\nAnd the word was {'very ' * (i % 4)}good. Ünïcode ✓" for i in range(25)]


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenize")
    split = root / "split" / "train"
    split.mkdir(parents=True)
    pq.write_table(pa.table({"text": DOCS[:10]}), split / "part.0.parquet")  # two Dask partitions
    pq.write_table(pa.table({"text": DOCS[10:]}), split / "part.1.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny corpus: vocabulary not filled
        train_tokenizer(str(split), str(root / "tok"), vocab_size=300)
    out = root / "tokens"
    stats = tokenize_split(str(split), str(root / "tok"), str(out / "train.bin"), str(out / "train.json"), batch_size=4)
    return root, stats


def test_bin_decodes_back_to_documents(tokenized):
    root, _ = tokenized
    tok = Tokenizer.from_file(str(root / "tok" / "tokenizer.json"))
    ids = np.fromfile(root / "tokens" / "train.bin", dtype="<u2")
    assert ids[-1] == 2
    docs = np.split(ids, np.flatnonzero(ids == 2) + 1)[:-1]  # each piece ends with its </s>
    assert [tok.decode(d[:-1].tolist()) for d in docs] == DOCS
    assert [d.tolist() for d in docs] == [tok.encode(t).ids + [2] for t in DOCS]


def test_json_metadata(tokenized):
    root, stats = tokenized
    meta = json.loads((root / "tokens" / "train.json").read_text())
    ids = np.fromfile(root / "tokens" / "train.bin", dtype="<u2")
    assert meta == {
        "dtype": "uint16",
        "n_tokens": ids.size,
        "n_documents": len(DOCS),
        "n_chars": sum(map(len, DOCS)),
        "n_bytes": sum(len(d.encode()) for d in DOCS),
        "vocab_size": Tokenizer.from_file(str(root / "tok" / "tokenizer.json")).get_vocab_size(),
        "eos_id": 2,
        "tokenizer_sha256": tokenizer_hash(str(root / "tok")),
        "source": str(root / "split" / "train"),
    }
    assert int((ids == 2).sum()) == meta["n_documents"]
    assert meta["n_bytes"] > meta["n_chars"]  # the non-ASCII characters were counted as bytes
    assert {k: stats[k] for k in meta} == meta


def test_no_temporary_files_left(tokenized):
    assert sorted(p.name for p in (tokenized[0] / "tokens").iterdir()) == ["train.bin", "train.json"]


def test_failure_leaves_no_output(tokenized, tmp_path):
    root, _ = tokenized
    with pytest.raises(DataError, match="missing"):
        tokenize_split(str(root / "missing"), str(root / "tok"), str(tmp_path / "x.bin"), str(tmp_path / "x.json"))
    assert list(tmp_path.iterdir()) == []


def test_dtype_by_vocab_size():
    assert token_dtype(65535) == np.dtype("<u2")
    assert token_dtype(65536) == np.dtype("<u4")


def test_piece_cache_gives_exactly_the_tokenizers_ids(tiny_tokens):
    """The word-level memo must be indistinguishable from encoding each document whole."""
    import random

    from archbench.data.download import load_documents
    from archbench.data.tokenize import PieceCache

    tok = Tokenizer.from_file(f"{tiny_tokens['tokenizer']}/tokenizer.json")
    docs = load_documents("default", max_documents=30)[0]["text"].tolist()
    rng = random.Random(0)
    alphabet = "ab Z9 \t\n\r'.,;!?-'s've'llé✓</s>\x0b\x1c  "
    docs += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(2000)]
    docs += ["", " ", "  leading", "trailing  ", "it's we've I'll", "x\r\n\r\ny", "a</s>b", "<pad> hi", "tab\t\tend"]
    cache = PieceCache(tok)
    assert cache.enabled
    expected = [i for e in tok.encode_batch_fast(docs, add_special_tokens=False) for i in e.ids + [2]]
    assert cache.encode(docs, eos_id=2) == expected
    assert cache.encode(docs[::-1], eos_id=2) == [  # again, now answered mostly from the memo
        i for e in tok.encode_batch_fast(docs[::-1], add_special_tokens=False) for i in e.ids + [2]
    ]
