"""train_tokenizer stage: special ids, round trip, train-split-only vocabulary, HF loading."""

import json
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from archbench.data.tokenizer import tokenizer_hash, train_tokenizer
from archbench.errors import ConfigError

TRAIN = [f"hallelujah the lamb and the lion number {i}, hallelujah!" for i in range(40)]
TEST = ["zyxwvutsrq " * 50]  # frequent, but only in the test split


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    for split, docs in {"train": TRAIN, "test": TEST}.items():
        (root / split).mkdir()
        pq.write_table(pa.table({"text": docs}), root / split / "part.0.parquet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = train_tokenizer(str(root / "train"), str(root / "tokenizer"), vocab_size=400)
    return root, stats, caught


def test_special_token_ids(trained):
    root, stats, _ = trained
    tok = Tokenizer.from_file(str(root / "tokenizer" / "tokenizer.json"))
    assert [tok.token_to_id(t) for t in ["<pad>", "<s>", "</s>", "<unk>"]] == [0, 1, 2, 3]
    assert stats["special_tokens"] == {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}


def test_round_trip_including_unseen_characters(trained):
    tok = Tokenizer.from_file(str(trained[0] / "tokenizer" / "tokenizer.json"))
    text = "  The lion, the LAMB — and ünïcödé 🦁\n\ttabs!"
    ids = tok.encode(text).ids
    assert 3 not in ids  # byte-level: nothing is ever <unk>
    assert tok.decode(ids) == text


def test_vocabulary_comes_from_train_split_only(trained):
    tok = Tokenizer.from_file(str(trained[0] / "tokenizer" / "tokenizer.json"))
    assert len(tok.encode(" hallelujah").ids) == 1  # frequent train word → one merged token
    assert len(tok.encode(" zyxwvutsrq").ids) > 5  # frequent test-only word → left as bytes
    assert trained[1]["n_documents"] == len(TRAIN)


def test_small_corpus_warns_with_counts(trained):
    _, stats, caught = trained
    assert stats["vocab_size"] < stats["vocab_size_requested"] == 400
    messages = [str(w.message) for w in caught]
    assert any(f"{stats['vocab_size']} tokens, fewer than the requested 400" in m for m in messages)


def test_autotokenizer_loads_offline(trained):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(trained[0] / "tokenizer"))
    assert (hf.pad_token_id, hf.bos_token_id, hf.eos_token_id, hf.unk_token_id) == (0, 1, 2, 3)
    ids = hf("the lamb")["input_ids"]
    assert hf.decode(ids) == "the lamb" and ids[0] != 1  # no implicit <s>: matches the packed data


def test_hash_is_sha256_of_tokenizer_json(trained):
    import hashlib

    path = trained[0] / "tokenizer" / "tokenizer.json"
    assert (
        tokenizer_hash(str(path.parent))
        == hashlib.sha256(path.read_bytes()).hexdigest()
        == trained[1]["tokenizer_sha256"]
    )
    json.loads(path.read_text())  # a complete, valid file


def test_vocab_too_small_is_a_config_error(trained, tmp_path):
    with pytest.raises(ConfigError, match="vocab_size"):
        train_tokenizer(str(trained[0] / "train"), str(tmp_path / "t"), vocab_size=100)
    assert not (tmp_path / "t").exists()


def test_existing_output_directory_keeps_other_files(trained, tmp_path):
    out = tmp_path / "tokenizer"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_tokenizer(str(trained[0] / "train"), str(out), vocab_size=300)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "tokenizer.json", "tokenizer_config.json"]
