"""Tokenize-stage throughput (MB/s of text, tokens/s) vs the original study's row-by-row tokenization.
Prints ONE JSON object.

    python benchmarks/tokenize_stage.py [--repeats 5] [--workdir DIR] [--split-dir DIR --tokenizer-dir DIR]

Input: the train split of the DEFAULT corpus (the embedded King James Bible) and a 4096-token
byte-level BPE, both built with the package's own stage functions into ``--workdir`` (reused if
present), unless ``--split-dir``/``--tokenizer-dir`` point at existing ones.

- stage: ``archbench.data.tokenize.tokenize_split`` end to end (Dask read, batched Rust encode,
  packed ``.bin`` + ``.json`` written).
- baseline (the original study): the same parquet read with Dask, then pandas ``map`` of the
  Hugging Face tokenizer over each document (``tok(text)["input_ids"]``), EOS appended, and the
  same packed ``.bin`` written — identical output bytes (checked).
- stage_without_piece_cache: the same stage with ``PieceCache`` disabled, i.e. one batched Rust
  encode per 1024 documents (the stage before the piece cache was added: before/after in one run).
- encode_floor: ``Tokenizer.encode_batch_fast`` on the in-memory texts alone, what batching alone
  can reach (long documents leave little per-row overhead for batching to remove).

Runs alternate (baseline, stage, floor) ``--repeats`` times and report medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _common

TARGET = 5.0


def baseline_tokenize(split_dir: str, tokenizer_dir: str, out_bin: str, hf_tok, eos_id: int) -> int:
    """Row-by-row: pandas ``map`` of the tokenizer per document, then pack (the original study read the
    split with Dask; the whole-split read is the same here with pandas). Returns tokens."""
    import numpy as np
    import pandas as pd

    df = pd.read_parquet(split_dir, columns=["text"])
    ids = df["text"].fillna("").map(lambda t: hf_tok(t)["input_ids"] + [eos_id])
    flat = [i for doc in ids for i in doc]
    arr = np.asarray(flat, dtype="<u2")
    arr.tofile(out_bin)
    return arr.size


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "archbench-bench-data"))
    ap.add_argument("--split-dir")
    ap.add_argument("--tokenizer-dir")
    args = ap.parse_args(argv)

    info = _common.machine(torch_info=False)
    import tokenizers
    import torch  # noqa: F401  (only for the version in the machine record)

    info.update(
        torch=torch.__version__,
        tokenizers=tokenizers.__version__,
        rayon_threads=os.environ.get("RAYON_NUM_THREADS", f"default ({os.cpu_count()})"),
    )
    if args.split_dir and args.tokenizer_dir:
        split_dir, tok_dir = args.split_dir, args.tokenizer_dir
    else:
        inputs = _common.default_corpus_inputs(args.workdir)
        split_dir, tok_dir = inputs["splits"]["train"], inputs["tokenizer_dir"]

    import numpy as np
    import pandas as pd
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from archbench.data.tokenize import tokenize_split
    from archbench.data.tokenizer import EOS_ID

    texts = pd.read_parquet(split_dir, columns=["text"])["text"].fillna("").tolist()
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    hf_tok = PreTrainedTokenizerFast(tokenizer_file=str(Path(tok_dir) / "tokenizer.json"))
    raw_tok = Tokenizer.from_file(str(Path(tok_dir) / "tokenizer.json"))

    out = Path(tempfile.mkdtemp(prefix="archbench-tokbench-"))
    devnull = open(os.devnull, "w")
    stage_bin, base_bin = out / "train.bin", out / "baseline.bin"
    import archbench.data.tokenize as tok_mod

    class NoCache(tok_mod.PieceCache):
        def __init__(self, tokenizer, *a, **kw):
            super().__init__(tokenizer, *a, **kw)
            self.enabled = False

    real_cache = tok_mod.PieceCache

    def run_stage(out_bin, cache_cls):
        tok_mod.PieceCache = cache_cls
        stderr, sys.stderr = sys.stderr, devnull  # tqdm bar
        try:
            return tokenize_split(split_dir, tok_dir, str(out_bin), str(out_bin.with_suffix(".json")))
        finally:
            sys.stderr, tok_mod.PieceCache = stderr, real_cache

    nocache_bin = out / "nocache.bin"
    times = {"baseline": [], "stage": [], "stage_without_piece_cache": [], "encode_floor": []}
    n_tokens = None
    for r in range(args.repeats + 1):  # the first round warms caches and is not counted
        t0 = time.perf_counter()
        n_base = baseline_tokenize(split_dir, tok_dir, str(base_bin), hf_tok, EOS_ID)
        t1 = time.perf_counter()
        stats = run_stage(stage_bin, real_cache)
        t2 = time.perf_counter()
        raw_tok.encode_batch_fast(texts, add_special_tokens=False)
        t3 = time.perf_counter()
        run_stage(nocache_bin, NoCache)
        t4 = time.perf_counter()
        if r:
            times["baseline"].append(t1 - t0)
            times["stage"].append(t2 - t1)
            times["encode_floor"].append(t3 - t2)
            times["stage_without_piece_cache"].append(t4 - t3)
        n_tokens = stats["n_tokens"]
        assert n_base == n_tokens, (n_base, n_tokens)
    ref = np.fromfile(base_bin, "<u2")
    identical = bool(
        np.array_equal(ref, np.fromfile(stage_bin, "<u2")) and np.array_equal(ref, np.fromfile(nocache_bin, "<u2"))
    )

    devnull.close()
    shutil.rmtree(out, ignore_errors=True)
    med = {k: _common.median(v) for k, v in times.items()}
    speedup = med["baseline"] / med["stage"]

    def rates(s):
        return {"seconds": round(s, 4), "MB_per_s": round(n_bytes / s / 1e6, 3), "tokens_per_s": round(n_tokens / s)}

    result = {
        "benchmark": "tokenize",
        "machine": info,
        "input": {
            "split_dir": split_dir,
            "tokenizer_dir": tok_dir,
            "documents": len(texts),
            "bytes": n_bytes,
            "tokens": n_tokens,
            "mean_doc_bytes": round(n_bytes / len(texts)),
            "repeats": args.repeats,
        },
        "stage": rates(med["stage"]),
        "baseline_row_by_row": rates(med["baseline"]),
        "stage_without_piece_cache": rates(med["stage_without_piece_cache"]),
        "encode_floor": rates(med["encode_floor"]),
        "identical_output": identical,
        "note": "identical_output: baseline, stage and stage_without_piece_cache wrote the same bytes",
        "all_seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "ratios": {
            "stage_vs_baseline": round(speedup, 3),
            "stage_without_piece_cache_vs_baseline": round(med["baseline"] / med["stage_without_piece_cache"], 3),
            "piece_cache_speedup": round(med["stage_without_piece_cache"] / med["stage"], 3),
            "baseline_over_encode_floor": round(med["baseline"] / med["encode_floor"], 3),
        },
        "targets": {"speedup_vs_row_by_row": _common.check(speedup, ">=", TARGET)},
    }
    _common.emit(result)


if __name__ == "__main__":
    main()
