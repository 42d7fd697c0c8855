"""The ``tokenize`` stage: a parquet split → one packed, nanoGPT-style token file.

Layout of ``{split}.bin``: raw little-endian token ids (uint16 when the vocabulary fits, else
uint32), each document's ids followed by ``</s>``; no header, so ``np.memmap`` reads it directly.
The sibling ``.json`` holds dtype and counts and is written last: it marks a complete output.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np

from archbench.io import atomic_file, write_json
from archbench.data.tokenizer import EOS_ID, tokenizer_hash
from archbench.errors import DataError


def token_dtype(vocab_size: int) -> np.dtype:
    """Smallest little-endian unsigned dtype that holds every id of ``vocab_size``."""
    return np.dtype("<u2") if vocab_size <= 65535 else np.dtype("<u4")


def encode_documents(tokenizer, texts: list[str], dtype: np.dtype, eos_id: int = EOS_ID) -> np.ndarray:
    """Batch-encode ``texts`` (multi-threaded in Rust) and pack them as ``ids + [eos]`` per document."""
    encodings = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    ids = [e.ids for e in encodings]
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
    """Tokenize every document of the parquet split ``split_dir`` into ``out_bin`` (+ ``out_json``).

    Partitions are read one at a time with Dask and encoded in batches of ``batch_size``
    documents, so memory stays bounded by one partition. ``num_workers`` caps the tokenizer's
    Rust thread pool (only effective before the pool first starts in this process).
    """
    if num_workers:
        os.environ.setdefault("RAYON_NUM_THREADS", str(int(num_workers)))
    import dask.dataframe as dd
    from tokenizers import Tokenizer
    from tqdm import tqdm

    tok_file = Path(tokenizer_dir) / "tokenizer.json"
    if not tok_file.is_file():
        raise DataError(f"tokenizer file not found: {tok_file}")
    if not os.path.exists(split_dir):
        raise DataError(f"split directory does not exist: {split_dir}")
    tokenizer = Tokenizer.from_file(str(tok_file))
    vocab_size = tokenizer.get_vocab_size()
    if tokenizer.id_to_token(EOS_ID) != "</s>":
        raise DataError(f"{tok_file}: id {EOS_ID} is {tokenizer.id_to_token(EOS_ID)!r}, expected '</s>'")
    dtype = token_dtype(vocab_size)

    ddf = dd.read_parquet(split_dir, columns=["text"])
    n_documents = n_tokens = n_chars = n_bytes = 0
    t0 = time.perf_counter()
    with atomic_file(out_bin) as tmp, open(tmp, "wb") as f:
        bar = tqdm(total=ddf.npartitions, desc=f"tokenize {Path(split_dir).name}", unit="part", file=sys.stderr)
        for delayed_part in ddf.to_delayed():
            texts = delayed_part.compute(scheduler="synchronous")["text"].fillna("").tolist()
            for i in range(0, len(texts), batch_size):
                batch = texts[i : i + batch_size]
                arr = encode_documents(tokenizer, batch, dtype)
                arr.tofile(f)
                n_tokens += arr.size
                n_documents += len(batch)
                n_chars += sum(map(len, batch))
                n_bytes += sum(len(t.encode("utf-8")) for t in batch)
                bar.set_postfix(docs=n_documents, tokens=n_tokens, refresh=False)
            bar.update()
        bar.close()
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
