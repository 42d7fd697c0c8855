"""Shared helpers of the benchmark scripts: machine description, medians, default-corpus inputs.

Not a benchmark itself. Each script in this folder imports it as ``_common`` (Python puts the
script's own folder first on ``sys.path``) and prints ONE JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int | None = None, torch_info: bool = True) -> dict:
    """CPU model, cores, Python/torch versions, torch threads and the 1-minute load at start."""
    info = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1min_at_start": round(os.getloadavg()[0], 2),
    }
    if torch_info:
        import torch

        info.update(
            torch=torch.__version__,
            threads=threads if threads is not None else torch.get_num_threads(),
            cuda=torch.cuda.is_available(),
        )
    elif threads is not None:
        info["threads"] = threads
    return info


def median(xs) -> float:
    return statistics.median(list(xs))


def check(value: float, op: str, target: float) -> dict:
    """One target: {"value", "target": "<op> x", "pass"}."""
    ok = {">=": value >= target, "<=": value <= target, "<": value < target, ">": value > target}[op]
    return {"value": round(float(value), 4), "target": f"{op} {target}", "pass": bool(ok)}


def emit(result: dict) -> None:
    print(json.dumps(result, indent=1))
    sys.stdout.flush()


def default_corpus_inputs(workdir: str | os.PathLike, vocab_size: int = 4096) -> dict:
    """Run download -> split -> train_tokenizer -> tokenize (train) of the DEFAULT config with the
    package functions into ``workdir`` (reused when already there). Returns the paths and the
    seconds each stage took (0 when reused)."""
    from archbench.data.download import download
    from archbench.data.split import split_shard
    from archbench.data.tokenize import tokenize_split
    from archbench.data.tokenizer import train_tokenizer

    w = Path(workdir)
    raw = w / "raw" / "corpus.parquet"
    splits = {s: str(w / "split" / s) for s in ("train", "validation", "test")}
    tok_dir = w / "tokenizer"
    tokens = w / "tokens" / "train.bin"
    seconds = {}
    for d in (raw.parent, w / "split", tok_dir, tokens.parent):
        d.mkdir(parents=True, exist_ok=True)

    def stage(name, done, fn):
        t0 = time.perf_counter()
        if not done:
            fn()
        seconds[name] = round(time.perf_counter() - t0, 3) if not done else 0.0

    stage("download", raw.is_file(), lambda: download({"source": "default"}, str(raw)))
    stage(
        "split",
        all(Path(p).is_dir() for p in splits.values()),  # one shard per split directory
        lambda: split_shard(
            str(raw),
            {s: f"{d}/00000-kjv.parquet" for s, d in splits.items()},
            {"train": 0.9, "validation": 0.05, "test": 0.05},
            shuffle=True,
            seed=1234,
        ),
    )
    stage(
        "train_tokenizer",
        (tok_dir / "tokenizer.json").is_file(),
        lambda: train_tokenizer(splits["train"], str(tok_dir), vocab_size=vocab_size),
    )
    stage(
        "tokenize",
        tokens.with_suffix(".json").is_file(),
        lambda: tokenize_split(splits["train"], str(tok_dir), str(tokens), str(tokens.with_suffix(".json"))),
    )
    return {
        "raw": str(raw),
        "splits": splits,
        "tokenizer_dir": str(tok_dir),
        "train_bin": str(tokens),
        "seconds": seconds,
    }
