"""The ``tokenize`` stage: one parquet shard of a split → one packed, nanoGPT-style token file; then
:func:`write_token_index` gathers a split's shards into ``tokens/{split}/index.json``.

Layout of ``{shard}.bin``: raw little-endian token ids (uint16 when the vocabulary fits, else
uint32), each document's ids followed by ``</s>`` (the only special id in the file: text spelling a
special token is encoded as ordinary characters); no header, so ``np.memmap`` reads it directly.
The sibling ``{shard}.json`` holds dtype and counts and is written last: it marks a complete output.
The index lists every shard of the split in name (= corpus) order with its token count.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from archbench.data.readers import count_rows, text_batches
from archbench.data.tokenizer import EOS_ID, tokenizer_hash
from archbench.errors import DataError
from archbench.io import atomic_file, write_json
from archbench.logs import progress


def token_dtype(vocab_size: int) -> np.dtype:
    """Smallest little-endian unsigned dtype that holds every id of ``vocab_size``."""
    return np.dtype("<u2") if vocab_size <= 65535 else np.dtype("<u4")


# The byte-level pre-tokenizer's (GPT-2) pattern restricted to ASCII, where \p{L} = [A-Za-z],
# \p{N} = [0-9] and \s agree between Rust's regex engine and Python's ``re`` (no control characters).
_ASCII_PIECES = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")
_NOT_PLAIN_ASCII = re.compile(r"[^\t\n\r\x20-\x7e]")


class PieceCache:
    """Exact memo of BPE ids per pre-tokenized piece ("word"), shared across batches.

    Byte-level BPE never merges across the pieces its pre-tokenizer splits a text into, so a
    document's ids are the concatenation of its pieces' ids. Natural text repeats a small set of
    pieces, so encoding each distinct piece once and looking the rest up skips most of the BPE
    work (~1.6x faster stage on the default corpus). Used only where it is provably identical to
    ``tokenizer.encode``: a BPE model without dropout behind a plain ``ByteLevel(use_regex=True,
    add_prefix_space=False)`` pre-tokenizer and no normalizer, for documents of printable ASCII
    (+ tab/newline/CR) that contain no added-token text; every other document is encoded whole.
    """

    def __init__(self, tokenizer, max_entries: int = 1_000_000):
        self.tokenizer, self.max_entries, self.ids = tokenizer, max_entries, {}
        spec = json.loads(tokenizer.to_str())
        pre, model = spec.get("pre_tokenizer") or {}, spec.get("model") or {}
        self.enabled = (
            spec.get("normalizer") is None
            and pre.get("type") == "ByteLevel"
            and pre.get("use_regex", True)
            and not pre.get("add_prefix_space", False)
            and model.get("type") == "BPE"
            and not model.get("dropout")
        )
        self.added = [t["content"] for t in spec.get("added_tokens") or []]

    def usable(self, text: str) -> bool:
        return (
            self.enabled
            and text.isascii()
            and _NOT_PLAIN_ASCII.search(text) is None
            and not any(a in text for a in self.added)
        )

    def encode(self, texts: list[str], eos_id: int | None = None) -> list[int]:
        """The ids of all ``texts`` concatenated (each followed by ``eos_id`` unless None),
        identical to ``encode_batch_fast(texts, add_special_tokens=False)``."""
        usable = [self.usable(t) for t in texts]
        whole = [t for t, u in zip(texts, usable) if not u]
        whole_ids = (
            iter(e.ids for e in self.tokenizer.encode_batch_fast(whole, add_special_tokens=False)) if whole else None
        )
        pieces = [_ASCII_PIECES.findall(t) if u else None for t, u in zip(texts, usable)]
        ids = self.ids
        distinct = set(itertools.chain.from_iterable(p for p in pieces if p is not None))
        new = [p for p in distinct if p not in ids]
        if len(ids) + len(new) > self.max_entries:
            ids.clear()
            new = list(distinct)
        if new:
            for p, e in zip(new, self.tokenizer.encode_batch_fast(new, add_special_tokens=False)):
                ids[p] = e.ids
        get, flat = ids.__getitem__, []
        for doc in pieces:
            flat.extend(itertools.chain.from_iterable(map(get, doc)) if doc is not None else next(whole_ids))
            if eos_id is not None:
                flat.append(eos_id)
        return flat


def encode_documents(
    tokenizer, texts: list[str], dtype: np.dtype, eos_id: int = EOS_ID, cache: PieceCache | None = None
) -> np.ndarray:
    """Encode ``texts`` and pack them as ``ids + [eos]`` per document. With a :class:`PieceCache`
    distinct pieces are encoded once (same ids); without, a batch encode (multi-threaded in Rust)."""
    if cache is not None:
        return np.array(cache.encode(texts, eos_id), dtype=dtype)
    ids = [e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
    for doc in ids:
        doc.append(eos_id)
    total = sum(map(len, ids))
    return np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=total)


def tokenize_split(
    split_dir: str,
    tokenizer_dir: str,
    out_bin: str,
    out_json: str,
    batch_size: int = 1024,
    num_workers: int | None = None,
) -> dict:
    """Tokenize every document of the parquet shard (or directory of shards) ``split_dir`` into
    ``out_bin`` (+ ``out_json``).

    Record batches of ``batch_size`` documents are read and encoded one at a time, so memory stays
    bounded by one batch. ``num_workers`` caps the tokenizer's
    Rust thread pool (only effective before the pool first starts in this process).
    """
    if num_workers:
        os.environ.setdefault("RAYON_NUM_THREADS", str(int(num_workers)))
    from tokenizers import Tokenizer

    tok_file = Path(tokenizer_dir) / "tokenizer.json"
    if not tok_file.is_file():
        raise DataError(f"tokenizer file not found: {tok_file}")
    if not os.path.exists(split_dir):
        raise DataError(f"split directory does not exist: {split_dir}")
    tokenizer = Tokenizer.from_file(str(tok_file))
    # "</s>" / "<s>" / "<pad>" written in a document are text: split like any other characters, so a
    # corpus cannot forge document boundaries; only encode_documents appends EOS_ID
    tokenizer.encode_special_tokens = True
    vocab_size = tokenizer.get_vocab_size()
    if tokenizer.id_to_token(EOS_ID) != "</s>":
        raise DataError(f"{tok_file}: id {EOS_ID} is {tokenizer.id_to_token(EOS_ID)!r}, expected '</s>'")
    dtype = token_dtype(vocab_size)
    cache = PieceCache(tokenizer)

    n_documents = n_tokens = n_chars = n_bytes = 0
    t0 = time.perf_counter()
    with atomic_file(out_bin) as tmp, open(tmp, "wb") as f:
        batches = text_batches(split_dir, batch_size)
        for record_batch in progress(batches, f"tokenize {Path(split_dir).name}", count_rows(split_dir), "doc", len):
            batch = [t or "" for t in record_batch.column(0).to_pylist()]
            if not batch:
                continue
            arr = encode_documents(tokenizer, batch, dtype, cache=cache)
            arr.tofile(f)
            n_tokens += arr.size
            n_documents += len(batch)
            n_chars += sum(map(len, batch))
            n_bytes += sum(len(t.encode("utf-8", "surrogatepass")) for t in batch)
    seconds = time.perf_counter() - t0
    stats = {
        "dtype": dtype.name,
        "n_tokens": n_tokens,
        "n_documents": n_documents,
        "n_chars": n_chars,
        "n_bytes": n_bytes,
        "vocab_size": vocab_size,
        "eos_id": EOS_ID,
        "tokenizer_sha256": tokenizer_hash(tokenizer_dir),
        "source": str(split_dir),
    }
    write_json(stats, out_json)
    return {**stats, "seconds": round(seconds, 3)}


def write_token_index(split: str, shard_jsons: list[str], out_index: str) -> dict:
    """Gather a split's per-shard token metadata into ``out_index`` (shards in sorted name order, paths
    relative to the index's folder). One dtype and one tokenizer for all shards; an empty split is an
    error here, before any training job starts."""
    shards, first = [], None
    for meta_path in sorted(shard_jsons, key=lambda p: Path(p).stem):
        meta = json.loads(Path(meta_path).read_text(encoding="utf-8"))
        name = Path(meta_path).stem
        if Path(meta_path).parent != Path(out_index).parent:
            raise DataError(f"{meta_path}: shard metadata must sit next to the index {out_index}")
        first = first or meta
        for key in ("dtype", "tokenizer_sha256"):
            if meta[key] != first[key]:
                raise DataError(
                    f"{meta_path}: {key} {meta[key]!r} differs from the split's {first[key]!r}; "
                    f"re-run the tokenize stage"
                )
        shards.append(
            {
                "name": name,
                "bin": f"{name}.bin",
                "n_tokens": int(meta["n_tokens"]),
                "n_documents": int(meta["n_documents"]),
            }
        )
    n_tokens = sum(s["n_tokens"] for s in shards)
    if not shards or n_tokens == 0:
        raise DataError(
            f"the {split} split has no documents ({len(shards)} shards, 0 tokens): the corpus is too "
            f"small for the `splits` ratios; use more data or a larger {split} fraction"
        )
    index = {
        "split": split,
        "dtype": first["dtype"],
        "n_tokens": n_tokens,
        "n_documents": sum(s["n_documents"] for s in shards),
        "vocab_size": first["vocab_size"],
        "eos_id": first["eos_id"],
        "tokenizer_sha256": first["tokenizer_sha256"],
        "shards": shards,
    }
    write_json(index, out_index)
    return index
