"""Sharded data stages: every input format as it ships (gzip / zstd JSON lines, parquet, .txt.gz, all written
here), slicing big files, the same token stream however a corpus is sharded, and bad shards (corrupt gzip,
only empty documents, a missing text field) failing with one clear error and no output."""

import gzip
import json
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archbench.data.download import download_shard
from archbench.data.loader import load_token_shards, make_dataloader
from archbench.data.readers import file_format
from archbench.data.sources import plan_shards, read_shard
from archbench.data.split import split_shard_job
from archbench.data.tokenize import tokenize_split, write_token_index
from archbench.data.tokenizer import train_tokenizer
from archbench.errors import DataError

SPLITS = ("train", "validation", "test")
DOCS = [f"Document {i}: {'the quick brown fox ' * (1 + i % 5)}jumps over {i} lazy dogs. Ünïcode ✓" for i in range(60)]


def records(docs, column="text"):
    return "".join(
        json.dumps({column: d, "url": "https://example.com", "timestamp": "2019-04-25T12:57:54Z"}) + "\n" for d in docs
    ).encode()


def write(path, docs, column="text"):
    """``docs`` in the format and compression the file name says (C4 layout for JSON lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt, compression = file_format(str(path))
    if fmt == "parquet":
        pq.write_table(pa.table({column: docs, "id": list(range(len(docs)))}), path, row_group_size=7)
        return path
    data = docs[0].encode() if fmt == "txt" else records(docs, column)
    if compression == "gzip":
        path.write_bytes(gzip.compress(data))
    elif compression == "zstd":
        with pa.output_stream(str(path), compression="zstd") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def documents(path, **data):
    """Every document of every shard of ``path``, in shard order."""
    shards = plan_shards({"source": "local", "path": str(path), **data})
    return [d for s in shards.values() for batch, _ in read_shard(s) for d in batch], shards


def pipeline(root, data, shuffle=True, max_documents=None):
    """Every data stage, one call per shard as the Snakemake rules run them; {split: token stream}."""
    shards = plan_shards(data)
    for name, spec in shards.items():
        download_shard(spec, data, str(root / "raw" / f"{name}.parquet"), str(root / "raw" / f"{name}.json"))
    counts = [str(root / "raw" / f"{n}.json") for n in shards]
    for name in shards:
        split_shard_job(
            name,
            str(root / "raw" / f"{name}.parquet"),
            counts if not shuffle or max_documents else [],
            {s: str(root / "split" / s / f"{name}.parquet") for s in SPLITS},
            {"train": 0.8, "validation": 0.1, "test": 0.1},
            shuffle,
            3,
            max_documents,
            str(root / "split" / "stats" / f"{name}.json"),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny corpus: vocabulary not filled
        train_tokenizer([str(root / "split" / "train" / f"{n}.parquet") for n in shards], str(root / "tok"), 300)
    streams = {}
    for s in SPLITS:
        for name in shards:
            tokenize_split(
                str(root / "split" / s / f"{name}.parquet"),
                str(root / "tok"),
                str(root / "tokens" / s / f"{name}.bin"),
                str(root / "tokens" / s / f"{name}.json"),
            )
        write_token_index(
            s, [str(root / "tokens" / s / f"{n}.json") for n in shards], str(root / "tokens" / s / "index.json")
        )
        streams[s] = np.concatenate(load_token_shards(str(root / "tokens" / s / "index.json")))
    return streams, shards


def test_formats_as_they_ship(tmp_path):
    write(tmp_path / "a" / "c4-train.00000-of-01024.json.gz", DOCS[:10])
    write(tmp_path / "a" / "b.jsonl.zst", DOCS[10:20])
    write(tmp_path / "a" / "c.parquet", DOCS[20:30])
    write(tmp_path / "a" / "d.txt.gz", ["A whole book.\n\nIn two paragraphs.\n"])
    write(tmp_path / "a" / "e.json", DOCS[30:32])  # .json = JSON lines
    (tmp_path / "a" / "notes.md").write_text("ignored in a directory")
    docs, shards = documents(tmp_path / "a")
    assert list(shards) == ["00000-b", "00001-c", "00002-c4-train.00000-of-01024", "00003-d", "00004-e"]
    assert [(s["format"], s["compression"]) for s in shards.values()] == [
        ("jsonl", "zstd"),
        ("parquet", None),
        ("jsonl", "gzip"),
        ("txt", "gzip"),
        ("jsonl", None),
    ]
    assert docs == DOCS[10:20] + DOCS[20:30] + DOCS[:10] + ["A whole book.\n\nIn two paragraphs.\n"] + DOCS[30:32]
    with pytest.raises(DataError, match=r"unsupported file type.*x\.parquet\.gz"):
        file_format("x.parquet.gz")


def test_big_files_are_sliced_into_shards_that_cover_every_document_once(tmp_path):
    big = [f"line {i} " + "x" * (i % 97) for i in range(3000)]
    write(tmp_path / "big.jsonl", big)
    write(tmp_path / "p" / "big.parquet", big)  # row groups of 7 rows
    size_mb = (tmp_path / "big.jsonl").stat().st_size / 2**20
    docs, shards = documents(tmp_path / "big.jsonl", shard_size_mb=size_mb / 6.5)  # 7 slices
    assert len(shards) == 7 and list(shards)[0] == "00000-big.0000" and docs == big
    assert documents(tmp_path / "big.jsonl", shard_size_mb=None)[1].keys() == {"00000-big"}
    docs, shards = documents(tmp_path / "p" / "big.parquet", shard_size_mb=0.01)
    assert len(shards) > 3 and docs == big
    write(tmp_path / "z" / "big.jsonl.gz", big)  # compressed: cannot seek, one shard
    assert len(documents(tmp_path / "z", shard_size_mb=0.001)[1]) == 1


def test_same_token_stream_for_one_or_many_shards(tmp_path):
    write(tmp_path / "one" / "corpus.jsonl.gz", DOCS)
    many = tmp_path / "many"
    write(many / "p0.json.gz", DOCS[:15])
    write(many / "p1.jsonl.zst", DOCS[15:30])
    write(many / "p2.parquet", DOCS[30:45])
    write(many / "p3.jsonl", DOCS[45:])
    one, s1 = pipeline(tmp_path / "r1", {"source": "local", "path": str(tmp_path / "one")})
    four, s4 = pipeline(tmp_path / "r4", {"source": "local", "path": str(many)})
    (tmp_path / "sliced").mkdir()
    (tmp_path / "sliced" / "corpus.jsonl").write_bytes(records(DOCS))
    size_mb = (tmp_path / "sliced" / "corpus.jsonl").stat().st_size / 2**20
    sliced, s5 = pipeline(
        tmp_path / "r5", {"source": "local", "path": str(tmp_path / "sliced"), "shard_size_mb": size_mb / 5}
    )
    assert (len(s1), len(s4), len(s5)) == (1, 4, 5)
    for s in SPLITS:
        assert one[s].size > 0 and np.array_equal(one[s], four[s]) and np.array_equal(one[s], sliced[s]), s
    assert sum(one[s].size for s in SPLITS) > 2000
    index = json.loads((tmp_path / "r4" / "tokens" / "train" / "index.json").read_text())
    assert [sh["name"] for sh in index["shards"]] == sorted(s4) and index["dtype"] == "uint16"
    assert index["n_tokens"] == sum(sh["n_tokens"] for sh in index["shards"]) == four["train"].size
    assert index["shards"][0]["bin"] == "00000-p0.bin"


def test_contiguous_split_and_max_documents_span_shards(tmp_path):
    many = tmp_path / "many"
    for k in range(4):
        write(many / f"p{k}.jsonl.gz", DOCS[15 * k : 15 * (k + 1)])
    pipeline(tmp_path / "r", {"source": "local", "path": str(many)}, shuffle=False, max_documents=40)
    texts = {
        s: [t for f in sorted((tmp_path / "r" / "split" / s).glob("*.parquet")) for t in pd.read_parquet(f)["text"]]
        for s in SPLITS
    }
    assert texts == {"train": DOCS[:32], "validation": DOCS[32:36], "test": DOCS[36:40]}


def test_corrupt_gzip_is_one_error_naming_the_file_and_line(tmp_path):
    data = gzip.compress(records(DOCS * 40))
    (tmp_path / "truncated.json.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.json.gz").write_bytes(data[:2000] + b"\x00garbage" * 500 + data[6000:])
    for name in ("truncated.json.gz", "garbage.json.gz"):
        (shard,) = plan_shards({"source": "local", "path": str(tmp_path / name)}).values()
        out = tmp_path / "out" / name
        with pytest.raises(
            DataError, match=rf"{name}: corrupt or truncated data after line \d+ \(uncompressed byte offset \d+\)"
        ):
            download_shard(shard, {}, str(out / "s.parquet"), str(out / "s.json"))
        assert not out.exists() or list(out.iterdir()) == []  # nothing complete-looking, no temp files


def test_shard_of_only_empty_documents(tmp_path):
    write(tmp_path / "c" / "a.jsonl.gz", ["", "  \n ", "\t"])
    write(tmp_path / "c" / "b.jsonl.gz", DOCS)
    streams, shards = pipeline(tmp_path / "r", {"source": "local", "path": str(tmp_path / "c")})
    stats = json.loads((tmp_path / "r" / "raw" / "00000-a.json").read_text())
    assert (stats["n_documents"], stats["n_dropped_empty"]) == (0, 3)
    index = json.loads((tmp_path / "r" / "tokens" / "train" / "index.json").read_text())
    assert [(s["name"], s["n_tokens"]) for s in index["shards"]][0] == ("00000-a", 0)
    assert index["n_tokens"] == streams["train"].size > 0


def test_missing_text_field_names_file_line_and_fields(tmp_path):
    path = tmp_path / "c4-train.00007-of-01024.json.gz"
    path.write_bytes(gzip.compress(records(DOCS[:3]) + b'{"url": "u", "timestamp": "t"}\n'))
    (shard,) = plan_shards({"source": "local", "path": str(path)}).values()
    with pytest.raises(
        DataError,
        match=r"c4-train\.00007-of-01024\.json\.gz:4: no field 'text' \(data\.text_column\); "
        r"available: \['timestamp', 'url'\]",
    ):
        download_shard(shard, {}, str(tmp_path / "o.parquet"), str(tmp_path / "o.json"))
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "o.json").exists()


def test_invalid_utf8_replaced_and_counted_in_compressed_json_lines(tmp_path):
    path = tmp_path / "bad.jsonl.zst"
    with pa.output_stream(str(path), compression="zstd") as f:
        f.write(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    (shard,) = plan_shards({"source": "local", "path": str(path)}).values()
    with pytest.warns(UserWarning, match="1 document"):
        stats = download_shard(shard, {}, str(tmp_path / "o.parquet"), str(tmp_path / "o.json"))
    assert pd.read_parquet(tmp_path / "o.parquet")["text"].tolist() == ["ok", "caf\ufffd"]
    assert stats["n_replaced_utf8"] == 1


def test_json_array_file_gets_a_hint(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"text": "x"}]))
    (shard,) = plan_shards({"source": "local", "path": str(tmp_path / "a.json")}).values()
    with pytest.raises(DataError, match=r"a\.json:1: a JSON list, not an object.*JSON lines"):
        download_shard(shard, {}, str(tmp_path / "o.parquet"), str(tmp_path / "o.json"))


def test_loader_windows_never_cross_shards(tmp_path):
    """A minimal multi-shard loader: shards of 10, 0 and 23 tokens
    at seq_len 4 give 2 + 0 + 5 windows, each inside its shard."""
    out = tmp_path / "tokens" / "train"
    out.mkdir(parents=True)
    sizes = {"00000-a": 10, "00001-b": 0, "00002-c": 23}
    start = 0
    for name, n in sizes.items():
        np.arange(start, start + n, dtype="<u2").tofile(out / f"{name}.bin")
        (out / f"{name}.json").write_text(
            json.dumps(
                {
                    "dtype": "uint16",
                    "n_tokens": n,
                    "n_documents": 1,
                    "vocab_size": 512,
                    "eos_id": 2,
                    "tokenizer_sha256": "x",
                }
            )
        )
        start += 1000
    write_token_index("train", [str(out / f"{n}.json") for n in sizes], str(out / "index.json"))
    windows = [w.tolist() for b in make_dataloader(str(out / "index.json"), 4, 1, shuffle=False, seed=0) for w in b]
    assert windows == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]] + [list(range(2000 + 4 * i, 2005 + 4 * i)) for i in range(5)]


def test_a_job_killed_mid_shard_leaves_nothing_complete_looking(tmp_path):
    import multiprocessing as mp
    import os
    import signal
    import time

    path = write(tmp_path / "big.jsonl.gz", [d * 20 for d in DOCS] * 400)  # 24k documents, several batches
    (shard,) = plan_shards({"source": "local", "path": str(path)}).values()
    out = tmp_path / "out"
    out.mkdir()
    proc = mp.get_context("spawn").Process(
        target=download_shard, args=(shard, {}, str(out / "s.parquet"), str(out / "s.json"))
    )
    proc.start()
    deadline = time.time() + 120
    while (
        time.time() < deadline
        and proc.is_alive()
        and not any(p.stat().st_size > 0 for p in out.glob(".s.parquet.*.tmp"))
    ):
        time.sleep(0.01)  # wait until the first record batch is written
    assert proc.is_alive(), "the download finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    names = sorted(p.name for p in out.iterdir())
    assert names and all(n.startswith(".s.parquet.") and n.endswith(".tmp") for n in names), names  # hidden temp only
