"""Hostile and careless input files (issue 32, items 4-7): each is read correctly or stops at one line
naming the file and the line (or row group and row), with nothing complete-looking left behind."""

import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archbench.data.download import download_shard
from archbench.data.sources import plan_shards
from archbench.errors import DataError
from workflow_helpers import snakemake

pytestmark = pytest.mark.faults

OK = json.dumps({"text": "a fine first line"}) + "\n"


def outputs(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


def download(path, **data):
    """Plan ``path`` as a local corpus of one shard and run its download job; (stats, texts)."""
    (shard,) = plan_shards({"source": "local", "path": str(path), **data}).values()
    out = path.parent / "out"
    stats = download_shard(shard, data, str(out / "raw.parquet"), str(out / "raw.json"))
    return stats, pd.read_parquet(out / "raw.parquet")["text"].tolist()


def refused(path, **data):
    """The one-line DataError of downloading ``path``; asserts nothing complete-looking is left."""
    out = path.parent / "refused"
    with pytest.raises(DataError) as err:
        (shard,) = plan_shards({"source": "local", "path": str(path), **data}).values()
        download_shard(shard, data, str(out / "raw.parquet"), str(out / "raw.json"))
    assert outputs(out) == []
    assert "\n" not in str(err.value)
    return str(err.value)


def test_json_lines_that_used_to_give_bare_tracebacks(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text(OK + '{"text": "x", "m": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    assert refused(deep) == f"{deep}:2: invalid JSON (nested deeper than the JSON parser allows)"
    both = tmp_path / "both.jsonl"  # invalid UTF-8 and invalid JSON on one line
    both.write_bytes(OK.encode() + b'{"text": "\xff\n')
    assert refused(both) == f"{both}:2: invalid JSON at column 10 (Unterminated string starting at)"
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_text(OK * 2, encoding="utf-16")
    assert refused(utf16) == (
        f"{utf16}: the file is UTF-16 (byte-order mark ff fe), not UTF-8; convert it, e.g. iconv -f UTF-16 -t UTF-8"
    )
    digits = tmp_path / "digits.jsonl"  # a 5,000-digit integer as the text: not text
    digits.write_text(OK + '{"text": ' + "7" * 5000 + "}\n")
    assert refused(digits) == f"{digits}:2: field 'text' is int, not text"


def test_json_lines_read_correctly_with_replacements_counted(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(
        OK.encode()
        + b'{"text": "lone \\ud83d surrogate"}\n'  # a lone surrogate escape
        + b'{"text": "pair \\ud83d\\ude00 ok", "n": '
        + b"7" * 5000
        + b"}\n"  # a 5,000-digit integer elsewhere
        + b'{"text": "bad \xff byte"}\n'
    )
    with pytest.warns(UserWarning, match=r"2 document\(s\) contained invalid UTF-8"):
        stats, texts = download(path)
    assert texts == ["a fine first line", "lone \ufffd surrogate", "pair \U0001f600 ok", "bad \ufffd byte"]
    assert (stats["n_documents"], stats["n_replaced_utf8"]) == (4, 2)
    bom = tmp_path / "bom.jsonl"  # a UTF-8 byte-order mark (Windows tools) is dropped
    bom.write_bytes(b"\xef\xbb\xbf" + OK.encode())
    assert download(bom)[1] == ["a fine first line"]


def test_max_document_bytes_counts_the_texts_utf8_bytes(tmp_path):
    path = tmp_path / "cjk.jsonl"
    path.write_text(json.dumps({"text": "中" * 200}) + "\n")  # 600 UTF-8 bytes, a line of 1,212 (\u escapes)
    assert os.path.getsize(path) == 1213
    stats, texts = download(path, max_document_bytes=600)
    assert (texts, stats["n_skipped_too_long"]) == (["中" * 200], 0)
    assert download(path, max_document_bytes=599)[0]["n_skipped_too_long"] == 1
    assert refused(path, max_document_bytes=599, on_long_document="fail") == (
        f"{path}:1: document of 600 bytes (or more) is longer than data.max_document_bytes (599); "
        "set data.on_long_document: skip to skip and count such documents"
    )


def test_txt_bad_utf8_replaced_and_counted(tmp_path):
    path = tmp_path / "book.txt"
    path.write_bytes(b"In the beginning \xff\xfe was the word")
    with pytest.warns(UserWarning, match=r"1 document\(s\) contained invalid UTF-8"):
        stats, texts = download(path)
    assert (texts, stats["n_replaced_utf8"]) == (["In the beginning \ufffd\ufffd was the word"], 1)


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst", ".txt.gz"])
def test_zero_byte_compressed_file_is_an_error(tmp_path, suffix):
    path = tmp_path / f"part{suffix}"
    path.write_bytes(b"")
    message = f"{path}: empty file (0 bytes), not a valid compressed stream (an interrupted copy?); copy it again or remove it"
    with pytest.raises(DataError) as err:  # at parse time, before any job
        plan_shards({"source": "local", "path": str(tmp_path)})
    assert str(err.value) == message
    with pa.output_stream(str(path), compression="gzip" if suffix.endswith("gz") else "zstd") as f:
        f.write(OK.encode())
    (shard,) = plan_shards({"source": "local", "path": str(path)}).values()
    path.write_bytes(b"")  # emptied after planning: the job says the same
    out = tmp_path / "out"
    with pytest.raises(DataError) as err:
        download_shard(shard, {}, str(out / "raw.parquet"), str(out / "raw.json"))
    assert str(err.value) == message and outputs(out) == []


def test_parquet_cases(tmp_path):
    bad = tmp_path / "bad.parquet"  # invalid UTF-8 in a string column (written without validation)
    pq.write_table(pa.table({"text": pa.array([b"ok", b"bad \xff x"], pa.binary()).view(pa.string())}), bad)
    with pytest.warns(UserWarning, match=r"1 document\(s\) contained invalid UTF-8"):
        stats, texts = download(bad)
    assert (texts, stats["n_replaced_utf8"]) == (["ok", "bad \ufffd x"], 1)
    cat = tmp_path / "cat" / "cat.parquet"  # pandas category = a dictionary column
    cat.parent.mkdir()
    pd.DataFrame({"text": pd.Categorical(["a b", "c d", "a b"])}).to_parquet(cat)
    assert download(cat)[1] == ["a b", "c d", "a b"]
    html = tmp_path / "html" / "page.parquet"  # an error page saved under the name
    html.parent.mkdir()
    html.write_text("<html><body>Not found</body></html>")
    message = (
        f"{html}: not a readable parquet file (Parquet magic bytes not found in footer. Either the file is "
        "corrupted or this is not a parquet file.)"
    )
    assert refused(html) == message
    with pytest.raises(DataError) as err:  # slicing by row groups reads the footer at parse time
        plan_shards({"source": "local", "path": str(html), "shard_size_mb": 1})
    assert str(err.value) == message
    good = tmp_path / "good.parquet"
    pq.write_table(
        pa.table({"text": [f"doc {i} " * 50 for i in range(5000)]}), good, row_group_size=1000, compression="zstd"
    )
    data = good.read_bytes()
    trunc = tmp_path / "trunc" / "t.parquet"
    trunc.parent.mkdir()
    trunc.write_bytes(data[: len(data) // 2])
    assert refused(trunc) == message.replace(str(html), str(trunc))
    chunk = pq.ParquetFile(good).metadata.row_group(2).column(0)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    corrupt = tmp_path / "corrupt" / "c.parquet"
    corrupt.parent.mkdir()
    middle = start + chunk.total_compressed_size // 2
    corrupt.write_bytes(data[:middle] + b"\0" * 64 + data[middle + 64 :])
    assert refused(corrupt).startswith(f"{corrupt} (row group 2, row 2000): corrupt parquet data (")
    long = tmp_path / "long" / "l.parquet"
    long.parent.mkdir()
    pq.write_table(pa.table({"text": ["a", "y" * 5000, "b"]}), long)
    assert refused(long, max_document_bytes=4096, on_long_document="fail") == (
        f"{long} (row group 0, row 1): document of 5000 bytes (or more) is longer than data.max_document_bytes "
        "(4096); set data.on_long_document: skip to skip and count such documents"
    )


MAKE = """
import sys
import pyarrow as pa, pyarrow.parquet as pq
kind, path = sys.argv[1:]
if kind == "wide":  # 4,096 rows of one 128 KB text, dictionary-encoded: a file of a few hundred KB
    text = ("alpha beta gamma delta " * 6000)[: 128 << 10]
    rows = pa.DictionaryArray.from_arrays(pa.array([0] * 4096, pa.int32()), pa.array([text]))
    pq.write_table(pa.table({"text": rows}), path, store_schema=False)  # read back as plain strings
else:  # one 200 MB document between two small ones
    pq.write_table(pa.table({"text": ["small one", "x" * (200 << 20), "small two"]}), path)
"""

PEAK = """
import json, sys
from archbench.data.download import download_shard
from archbench.data.sources import plan_shards
path, out = sys.argv[1:]
data = {"source": "local", "path": path}
(shard,) = plan_shards(data).values()
stats = download_shard(shard, data, out + ".parquet", out + ".json")
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec, so a child of a big pytest reports pytest's size
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_mb": hwm / 1024,
                  "n": stats["n_documents"], "skipped": stats["n_skipped_too_long"]}))
"""


def peak(tmp_path, kind):
    """The download job's peak RSS (its own process; the file is made in another)."""
    path = tmp_path / f"{kind}.parquet"
    subprocess.run([sys.executable, "-c", textwrap.dedent(MAKE), kind, str(path)], check=True, timeout=300)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PEAK), str(path), str(tmp_path / f"out-{kind}")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {**json.loads(proc.stdout.splitlines()[-1]), "size": os.path.getsize(path)}


def test_parquet_is_read_in_batches_bounded_by_bytes(tmp_path):
    wide = peak(tmp_path, "wide")  # the generator holds 128 KB; the job used to peak at 1.9-2.5 GB
    assert wide["size"] < 300_000 and (wide["n"], wide["skipped"]) == (4096, 0)
    assert wide["peak_mb"] < 600, wide
    assert pd.read_parquet(tmp_path / "out-wide.parquet")["text"].str.len().max() == 128 << 10


def test_parquet_document_over_the_limit_is_skipped_as_an_arrow_value(tmp_path):
    long = peak(tmp_path, "long")  # pyarrow decompresses its page and builds the value: ~3x 200 MB
    assert (long["n"], long["skipped"]) == (2, 1)
    assert long["peak_mb"] < 850, long  # it was also made a Python string: 937 MB


NASTY = [
    "br{ace}",
    "a{shard}",
    "x" + "ab" * 30,  # ends in 30 repeats: Snakemake's PeriodicWildcardError
    "".join(random.Random(0).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(238)),  # 244 characters
]


def test_any_file_name_is_a_safe_shard_name_and_a_bad_file_one_line_through_snakemake(tmp_path):
    corpus = tmp_path / "brack[1]"  # an existing folder: taken literally, not as a glob
    corpus.mkdir()
    for i, stem in enumerate(NASTY):
        (corpus / f"{stem}.jsonl").write_text(json.dumps({"text": f"document {i} " * 20}) + "\n")
    (corpus / "z-wide.jsonl").write_text(OK * 2, encoding="utf-16")
    shards = plan_shards({"source": "local", "path": str(corpus)})
    long, periodic = NASTY[3], NASTY[2]
    assert list(shards) == [
        "00000-a_shard",
        "00001-br_ace",
        "00002-" + long[:60] + "-" + hashlib.sha256(f"{long}.jsonl".encode()).hexdigest()[:8],
        "00003-" + periodic[:60] + "-" + hashlib.sha256(f"{periodic}.jsonl".encode()).hexdigest()[:8],
        "00004-z-wide",
    ]
    brace = corpus / "br{ace}.jsonl"
    assert shards["00001-br_ace"]["untracked"] == {str(brace): [brace.stat().st_size, brace.stat().st_mtime_ns]}
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps({"results": str(tmp_path / "results"), "data": {"source": "local", "path": str(corpus)}})
    )
    raw = tmp_path / "results" / "data" / "raw"
    targets = [str(raw / f"{name}.parquet") for name in shards]
    proc = snakemake(tmp_path, "--cores", "1", "--keep-going", *targets, configfile=config, check=False)
    assert proc.returncode != 0  # the UTF-16 file's job failed, with one line; every other shard is read
    cause = f"{corpus}/z-wide.jsonl: the file is UTF-16 (byte-order mark ff fe), not UTF-8; convert it, e.g. iconv -f UTF-16 -t UTF-8"
    log = tmp_path / "results" / "logs" / "download" / "00004-z-wide.log"
    assert f"{log}: archbench.errors.DataError: {cause}" in proc.stderr, proc.stderr[-3000:]
    assert not (raw / "00004-z-wide.json").exists() and not (raw / "00004-z-wide.parquet").exists()
    texts = [pd.read_parquet(t)["text"].tolist() for t in targets[:4]]
    assert texts == [[f"document {NASTY.index(s)} " * 20] for s in sorted(NASTY)]


def test_slices_are_numbered_to_sort_in_order(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_bytes(b"\n" * 20_002)  # 2 bytes a slice: 10,001 slices
    names = list(plan_shards({"source": "local", "path": str(path), "shard_size_mb": 2 / 2**20}))
    assert len(names) == 10_001 and names == sorted(names)
    assert names[2000] == "00000-many.02000" and names[10_000] == "00000-many.10000"


def hub_plan(tmp_path, files, listing=None):
    results = tmp_path / "results"
    if listing is not None:  # the listing step's result, as kept after a first online parse
        (results / "data").mkdir(parents=True, exist_ok=True)
        info = {f: {"size": 1, "sha256": None, "blob_id": None} for f in listing}
        kept = {"name": "allenai/c4", "revision": None, "commit": "c0ffee", "files": listing, "file_info": info}
        (results / "data" / "hub_listing.json").write_text(json.dumps(kept))
    return plan_shards({"source": "hub", "hub": {"name": "allenai/c4", "files": files}}, str(results))


def test_hub_patterns_are_matched_against_the_listing_never_enumerated(tmp_path):
    listing = [f"en/c4-train.{i:05d}-of-01024.json.gz" for i in (0, 1, 2, 17)] + ["en/xabcdef.json"]
    shards = hub_plan(tmp_path, "en/c4-train.0000[0-9]-of-01024.json.gz", listing)  # only what exists
    assert [s["path"] for s in shards.values()] == listing[:3]
    t0 = time.perf_counter()
    shards = hub_plan(tmp_path, "en/x" + "[a-z]" * 6 + ".json", listing)  # 26^6 names: never built
    assert [s["path"] for s in shards.values()] == ["en/xabcdef.json"]
    assert time.perf_counter() - t0 < 1
    offline = tmp_path / "offline"  # no listing kept, offline: refused by count, at once
    t0 = time.perf_counter()
    with pytest.raises(DataError) as err:
        hub_plan(offline, "en/x" + "[a-z]" * 6 + ".json")
    assert time.perf_counter() - t0 < 5  # importing huggingface_hub to ask whether it is offline: ~1 s
    assert str(err.value) == (
        "data.hub.files pattern 'en/x[a-z][a-z][a-z][a-z][a-z][a-z].json' names 308915776 files, more than "
        "10000 can be planned without the repository's listing (offline); run once online (the listing is "
        "kept) or name fewer files"
    )


def test_special_token_text_in_a_document_is_ordinary_text(tmp_path):
    from transformers import AutoTokenizer

    from archbench.data.tokenize import tokenize_split
    from archbench.data.tokenizer import train_tokenizer

    docs = [f"verse {i} and so on </s> <s> <pad> <unk> the end" for i in range(200)]
    split = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": docs}), split)
    train_tokenizer([str(split)], str(tmp_path / "tok"), vocab_size=300)
    stats = tokenize_split(str(split), str(tmp_path / "tok"), str(tmp_path / "x.bin"), str(tmp_path / "x.json"))
    ids = np.fromfile(tmp_path / "x.bin", dtype=stats["dtype"])
    assert stats["n_documents"] == 200
    assert np.flatnonzero(ids < 4).tolist() == np.flatnonzero(ids == 2).tolist()  # only </s> separators ...
    assert int((ids == 2).sum()) == 200 and ids[-1] == 2  # ... one after each document
    hf = AutoTokenizer.from_pretrained(tmp_path / "tok")  # what lm-eval and generation encode with
    encoded = hf("context </s> <s> continuation", add_special_tokens=False).input_ids
    assert min(encoded) >= 4 and hf.decode(encoded) == "context </s> <s> continuation"
    assert hf.eos_token_id == 2  # the pipeline still has its separator
