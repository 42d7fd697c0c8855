"""Data stages at scale: C4-shaped corpora through download -> split -> train_tokenizer -> tokenize with the
real `snakemake`. Prints ONE JSON object.

    python benchmarks/data_scale.py [--sizes-gb 0.1,0.5,2] [--shards 8 | --shard-mb 64] [--cores 2] [--compare-gb 0.1]
                                    [--workdir /tmp/archbench-data-scale] [--keep]

Corpora: gzip JSON lines in C4's layout (``c4-train.NNNNN-of-01024.json.gz``, records with ``text``,
``timestamp``, ``url``; ~2.1 KB documents of English words drawn with the embedded corpus's word
frequencies), ``--shards`` files per size (or files of ``--shard-mb`` each: the file count grows with the size),
generated under ``--workdir`` (never in the repository) and deleted afterwards unless ``--keep``.

Measured, all in this run:
- peak RSS of the largest job of every stage before training (download, split plan, split, tokenizer,
  tokenize, the offline eval tasks; Snakemake ``benchmark:`` files, max_rss) per size, and the ratios
  largest size / smallest size, overall and per stage (target <= 1.3: memory follows the shard, not the
  corpus; issue 21 measures 512 MB vs 64 MB with ``--shard-mb 64``);
- wall seconds per GB of text of the whole data DAG per size; ratio largest / middle size (target <= 1.2);
- ``--compare-gb``: the same bytes as ONE shard vs ``--shards`` shards with ``--cores`` (target >= 1.6x);
- tokenize MB/s per core (text bytes / CPU seconds of all tokenize jobs) next to the bare Rust
  ``Tokenizer.encode_batch`` on one thread (RAYON_NUM_THREADS=1) over the same documents.
The tokenizer is trained on ``--sample-mb`` (tokenizer.sample_bytes), the same at every size, so its cost
is a constant; its seconds are reported separately.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _common
import numpy as np

SPLITS = ("train", "validation", "test")
DATA_RULES = (
    "download",
    "split_plan",
    "split",
    "train_tokenizer",
    "tokenize",
    "eval_tasks",
)  # every stage before training
PER_SHARD_RULES = ("download", "split", "tokenize")  # one job per shard: their cost follows the corpus


def _vocabulary() -> tuple[np.ndarray, np.ndarray]:
    """English words with their frequencies (the embedded corpus's), so that BPE sees natural text."""
    from collections import Counter

    from archbench.data.sources import default_documents

    counts = Counter(w for d in default_documents() for w in d.split())
    words, freq = zip(*counts.most_common())
    p = np.array(freq, dtype=np.float64)
    return np.array(words, dtype=object), p / p.sum()


def generate_c4(out: Path, total_bytes: int, shards: int, seed: int = 0, doc_bytes: int = 2100) -> dict:
    """``shards`` C4-layout .json.gz files holding about ``total_bytes`` of text.

    Words are drawn once into a 4M-word stream (Zipf-like, the embedded corpus's frequencies); each
    document is the stretch of ``doc_bytes / 5`` words at a random offset, so documents are distinct
    and generating 2 GB takes about a minute instead of drawing every word anew."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab, zipf = _vocabulary()
    words = vocab[rng.choice(len(vocab), size=4_000_000, p=zipf)]
    lengths = np.fromiter((len(w) + 1 for w in words), dtype=np.int64, count=len(words))
    starts = np.concatenate([[0], np.cumsum(lengths)])  # char offset of word i in the stream
    stream = " ".join(words) + " "
    words_per_doc = doc_bytes // 5
    per_shard = total_bytes // shards
    n_docs = written = 0
    for i in range(shards):
        path = out / f"c4-train.{i:05d}-of-01024.json.gz"
        shard_bytes = 0
        with gzip.open(path, "wt", compresslevel=1, encoding="utf-8") as f:
            while shard_bytes < per_shard:
                first = rng.integers(0, len(words) - words_per_doc, size=256)
                lines = []
                for a in first:
                    text = stream[starts[a] : starts[a + words_per_doc] - 1]
                    shard_bytes += len(text)
                    url = f"https://example.com/{i}/{n_docs + len(lines)}"
                    lines.append(json.dumps({"text": text, "timestamp": "2019-04-25T12:57:54Z", "url": url}))
                n_docs += len(lines)
                f.write("\n".join(lines) + "\n")
        written += shard_bytes
    return {
        "files": shards,
        "documents": n_docs,
        "text_bytes": written,
        "gzip_bytes": sum(p.stat().st_size for p in out.glob("*.json.gz")),
    }


def one_shard_copy(src: Path, out: Path) -> None:
    """The same documents, in the same order, as one .json.gz file."""
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "c4-train.00000-of-00001.json.gz", "wb", compresslevel=1) as dst:
        for f in sorted(src.glob("*.json.gz")):
            with gzip.open(f, "rb") as s:
                shutil.copyfileobj(s, dst, 8 << 20)


def run_pipeline(corpus: Path, work: Path, cores: int, sample_bytes: int, vocab_size: int) -> dict:
    """The data DAG (every split's index.json) through the real snakemake; wall seconds + per-job benchmarks."""
    work.mkdir(parents=True, exist_ok=True)
    results = work / "results"
    cfg = work / "config.yaml"
    cfg.write_text(
        json.dumps(
            {
                "results": str(results),
                "data": {"source": "local", "path": str(corpus), "max_documents": None},
                "tokenizer": {"vocab_size": vocab_size, "sample_bytes": sample_bytes},
            }
        )
    )
    targets = [str(results / f"tokens/{s}/index.json") for s in SPLITS] + ["eval_tasks"]
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(_common.REPO / "Snakefile"),
        "-d",
        str(work),
        "--cores",
        str(cores),
        "--configfile",
        str(cfg),
        "--quiet",
        "all",
        "--",
        *targets,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    jobs = {}
    for tsv in (results / "benchmarks").rglob("*.tsv"):
        parts = tsv.relative_to(results / "benchmarks").parts
        rule = "eval_tasks" if parts == ("eval", "tasks.tsv") else parts[0].removesuffix(".tsv")
        with open(tsv) as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        jobs.setdefault(rule, []).append(
            {
                "job": str(tsv.relative_to(results / "benchmarks")),
                "s": float(row["s"]),
                "max_rss_mb": float(row["max_rss"]),
                "cpu_s": float(row["cpu_time"]),
            }
        )
    tok_bytes = sum(
        json.loads(p.read_text())["n_bytes"]
        for s in SPLITS
        for p in (results / "tokens" / s).glob("*.json")
        if p.name != "index.json"
    )
    tok_cpu = sum(j["cpu_s"] for j in jobs.get("tokenize", []))
    largest = max((j for r in DATA_RULES for j in jobs.get(r, [])), key=lambda j: j["max_rss_mb"])
    return {
        "wall_s": round(wall, 2),
        "jobs": {r: len(jobs.get(r, [])) for r in DATA_RULES},
        "peak_rss_mb": {r: round(max(j["max_rss_mb"] for j in jobs[r]), 1) for r in DATA_RULES if r in jobs},
        "largest_job": largest,
        "seconds_sum": {r: round(sum(j["s"] for j in jobs[r]), 2) for r in DATA_RULES if r in jobs},
        # CPU seconds do not grow when other users load the machine; wall seconds do
        "cpu_s_sum": {r: round(sum(j["cpu_s"] for j in jobs[r]), 2) for r in DATA_RULES if r in jobs},
        "tokenize_mb_per_cpu_s": round(tok_bytes / 1e6 / tok_cpu, 2) if tok_cpu else None,
        "tokenized_bytes": tok_bytes,
        "results": str(results),
    }


def encode_floor(results: Path, max_bytes: int = 20_000_000) -> float:
    """MB per CPU second of one-thread Rust ``encode_batch`` over the first ``max_bytes`` of the train split
    (CPU time, like the stage's figure, so that other users' load does not skew the ratio)."""
    code = f"""
import os, sys, time, json, pyarrow.parquet as pq
from pathlib import Path
from tokenizers import Tokenizer
tok = Tokenizer.from_file({str(results / "tokenizer" / "tokenizer.json")!r})
texts, n = [], 0
for f in sorted(Path({str(results / "data" / "split" / "train")!r}).glob('*.parquet')):
    for t in pq.read_table(f)['text'].to_pylist():
        texts.append(t); n += len(t.encode())
        if n >= {max_bytes}: break
    if n >= {max_bytes}: break
tok.encode_batch(texts[:100], add_special_tokens=False)  # warm up
t0 = time.process_time(); tok.encode_batch(texts, add_special_tokens=False); dt = time.process_time() - t0  # CPU s, as the stage
print(json.dumps(n / 1e6 / dt))
"""
    env = {**os.environ, "RAYON_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes-gb", default="0.1,0.5,2", help="comma-separated corpus sizes (GB of text)")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument(
        "--shard-mb",
        type=float,
        default=None,
        help="files of about this many MB of text (the file count then grows with the size; overrides --shards)",
    )
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument(
        "--compare-gb",
        type=float,
        default=None,
        help="size for the 1-shard vs N-shard comparison (default: the smallest size; 0 = skip)",
    )
    ap.add_argument("--sample-mb", type=float, default=50.0, help="tokenizer.sample_bytes in MB (same at every size)")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--workdir", default="/tmp/archbench-data-scale")
    ap.add_argument("--keep", action="store_true", help="keep generated corpora and results")
    args = ap.parse_args()
    sizes = sorted(float(s) for s in args.sizes_gb.split(","))
    compare = sizes[0] if args.compare_gb is None else args.compare_gb
    root = Path(args.workdir)
    if str(root.resolve()).startswith(str(_common.REPO)):
        raise SystemExit("--workdir must be outside the repository")
    sample_bytes = int(args.sample_mb * 1e6)
    result = {
        "benchmark": "data_scale",
        "machine": _common.machine(torch_info=False),
        "shards": args.shards,
        "cores": args.cores,
        "tokenizer_sample_bytes": sample_bytes,
        "sizes": {},
    }
    for gb in sizes:
        corpus = root / f"c4-{gb}gb" / "en"
        t0 = time.perf_counter()
        shards = max(1, round(gb * 1e3 / args.shard_mb)) if args.shard_mb else args.shards
        gen = generate_c4(corpus, int(gb * 1e9), shards)
        gen["seconds"] = round(time.perf_counter() - t0, 1)
        run = run_pipeline(corpus, root / f"run-{gb}gb", args.cores, sample_bytes, args.vocab_size)
        run["corpus"] = gen
        run["s_per_gb"] = round(run["wall_s"] / (gen["text_bytes"] / 1e9), 1)
        per_shard_cpu = sum(v for r, v in run["cpu_s_sum"].items() if r in PER_SHARD_RULES)
        run["per_shard_stages_cpu_s_per_gb"] = round(per_shard_cpu / (gen["text_bytes"] / 1e9), 1)
        if gb == sizes[-1]:
            run["encode_floor_mb_per_s_1_thread"] = round(encode_floor(Path(run["results"])), 2)
        result["sizes"][str(gb)] = run
        if gb == compare:
            single = root / f"c4-{gb}gb-one-shard" / "en"
            one_shard_copy(corpus, single)
            one = run_pipeline(single, root / f"run-{gb}gb-one-shard", args.cores, sample_bytes, args.vocab_size)
            result["one_vs_many"] = {
                "size_gb": gb,
                "one_shard": {k: one[k] for k in ("wall_s", "jobs", "seconds_sum", "peak_rss_mb")},
                "n_shards": {k: run[k] for k in ("wall_s", "jobs", "seconds_sum")},
                "speedup": round(one["wall_s"] / run["wall_s"], 3),
            }
            if not args.keep:
                shutil.rmtree(single.parent, ignore_errors=True)
                shutil.rmtree(root / f"run-{gb}gb-one-shard", ignore_errors=True)
        if not args.keep:
            shutil.rmtree(corpus.parent, ignore_errors=True)
    small, big = result["sizes"][str(sizes[0])], result["sizes"][str(sizes[-1])]
    mid = result["sizes"][str(sizes[-2])] if len(sizes) > 1 else small
    targets = {
        "peak_rss_largest_over_smallest": _common.check(
            big["largest_job"]["max_rss_mb"] / small["largest_job"]["max_rss_mb"], "<=", 1.3
        ),
        **{
            f"peak_rss_{r}_largest_over_smallest": _common.check(
                big["peak_rss_mb"][r] / small["peak_rss_mb"][r], "<=", 1.3
            )
            for r in DATA_RULES
            if r in big["peak_rss_mb"] and r in small["peak_rss_mb"]
        },
        "s_per_gb_largest_over_middle": _common.check(big["s_per_gb"] / mid["s_per_gb"], "<=", 1.2),
        "cpu_s_per_gb_largest_over_middle": _common.check(
            big["per_shard_stages_cpu_s_per_gb"] / mid["per_shard_stages_cpu_s_per_gb"], "<=", 1.2
        ),
    }
    if "one_vs_many" in result:
        targets["n_shards_speedup_over_one"] = _common.check(result["one_vs_many"]["speedup"], ">=", 1.6)
    floor = big.get("encode_floor_mb_per_s_1_thread")
    if floor:
        result["tokenize_per_core"] = {
            "stage_mb_per_cpu_s": big["tokenize_mb_per_cpu_s"],
            "encode_batch_floor_mb_per_s": floor,
            "stage_over_floor": round(big["tokenize_mb_per_cpu_s"] / floor, 3),
        }
    result["targets"] = targets
    result["load_avg_1min_at_end"] = round(os.getloadavg()[0], 2)
    if not args.keep:
        for gb in sizes:
            shutil.rmtree(root / f"run-{gb}gb", ignore_errors=True)
    _common.emit(result)


if __name__ == "__main__":
    main()
