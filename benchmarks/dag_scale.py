"""The data DAG at C4's file count: dry runs of the whole pipeline through the real `snakemake`.
Prints ONE JSON object.

    python benchmarks/dag_scale.py [--files 1024] [--tiny-files 100000] [--workdir /tmp/archbench-dag-scale]
                                   [--baseline-repo /path/to/an/older/checkout] [--keep]

Corpora (generated under ``--workdir``, deleted afterwards unless ``--keep``):
- ``--files`` small C4-layout ``.json.gz`` files (``c4-train.NNNNN-of-01024.json.gz``, 3 records each);
- ``--tiny-files`` one-line ``.jsonl`` files (~100 bytes each).

Measured, all in this run (wall seconds and the peak RSS of the snakemake process, from ``wait4``):
- ``exact_1024``: a dry run with ``data.max_documents`` set and one shard per file (``min_shard_mb: null``),
  the case whose split jobs used to read every shard's stats (target <= 15 s and <= 0.5 GB);
- ``hash_1024``: the same with the defaults' hash split (no counts needed), the baseline of the ratios;
- ``tiny``: job count of a dry run over ``--tiny-files`` files with the defaults (more files than C4's 1,024:
  small files grouped into shards of ``data.min_shard_mb``; target <= 5000 jobs);
- with ``--baseline-repo``: ``exact_1024`` with that checkout's Snakefile and package, same machine, same run.
Wall seconds on a shared machine are only indicative: the load at start is in the output.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common


def c4_files(out: Path, n: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rows = [
            json.dumps({"text": f"file {i} document {j} " + "word " * 20, "timestamp": "t", "url": f"u/{i}/{j}"})
            for j in range(3)
        ]
        (out / f"c4-train.{i:05d}-of-01024.json.gz").write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    return out


def tiny_files(out: Path, n: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sub = out / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"doc{i:06d}.jsonl").write_text(json.dumps({"text": f"tiny document {i} " + "w " * 30}) + "\n")
    return out


def dry_run(work: Path, data: dict, repo: Path = _common.REPO) -> dict:
    """Wall seconds, peak RSS (MB) and {rule: jobs} of ``snakemake -n`` over the default targets."""
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "config.yaml"
    cfg.write_text(json.dumps({"results": str(work / "results"), "data": data}))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(work)]
    cmd += ["--configfile", str(cfg), "--dry-run", "--quiet", "rules"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(repo / "src")}
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed ({repo}):\n{text[-4000:]}")
    jobs = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", text, flags=re.M)}
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "jobs": jobs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1024)
    ap.add_argument("--tiny-files", type=int, default=100_000)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "archbench-dag-scale"))
    ap.add_argument("--baseline-repo", type=Path, default=None, help="an older checkout to compare exact_1024 with")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    root = Path(args.workdir)
    shutil.rmtree(root, ignore_errors=True)
    try:
        corpus = c4_files(root / "c4" / "en", args.files)
        exact = {"source": "local", "path": str(corpus), "max_documents": 1000, "min_shard_mb": None}
        result = {"machine": _common.machine(torch_info=False), "files": args.files}
        result["hash_1024"] = dry_run(root / "hash", {**exact, "max_documents": None})
        result["exact_1024"] = dry_run(root / "exact", exact)
        if args.baseline_repo:
            old = {k: v for k, v in exact.items() if k != "min_shard_mb"}  # the old schema lacks the key
            result["baseline_exact_1024"] = dry_run(root / "baseline", old, args.baseline_repo)
        tiny = tiny_files(root / "tiny", args.tiny_files)
        result["tiny"] = {
            "files": args.tiny_files,
            **dry_run(root / "tiny-run", {"source": "local", "path": str(tiny)}),
        }
        e, h = result["exact_1024"], result["hash_1024"]
        result["ratio_exact_vs_hash"] = {
            "wall": round(e["wall_s"] / h["wall_s"], 2),
            "peak_rss": round(e["peak_rss_mb"] / h["peak_rss_mb"], 2),
        }
        result["targets"] = {
            "exact_1024_wall_s": _common.check(e["wall_s"], "<=", 15),
            "exact_1024_peak_rss_mb": _common.check(e["peak_rss_mb"], "<=", 512),
            "tiny_total_jobs": _common.check(result["tiny"]["jobs"]["total"], "<=", 5000),
        }
        _common.emit(result)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
