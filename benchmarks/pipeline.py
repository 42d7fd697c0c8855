"""Pipeline overhead: wall time of the default ``snakemake --cores 2`` run, of the paper-grid DAG
(``snakemake -n``) net of ``snakemake --version``, per-rule job time, and per-job import cost.
Prints ONE JSON object.

    python benchmarks/pipeline.py            # the full default run (several minutes) + dry runs
    python benchmarks/pipeline.py --quick    # tiny config (few training steps, small eval): ~1-2 min
    python benchmarks/pipeline.py --skip-run # only the dry runs and the import profile

Everything runs from the installed environment (the ``snakemake`` next to this Python) in a fresh
temporary work directory (``snakemake -s Snakefile -d TMP``), so nothing under ``results/`` is
touched. Profile:

- ``rules``: wall seconds per rule, from the job start/finish timestamps in the Snakemake log
  (one-second resolution; a rule's jobs are summed).
- ``imports``: for each workflow script, a fresh interpreter importing exactly what that script
  imports (its ``from archbench... import`` lines), median of 3: the fixed cost every job of that
  rule pays before doing any work, and whether it pulled in torch.
- ``dag``: ``snakemake -n`` on the default config and on the paper-grid preset, minus
  ``snakemake --version`` (the interpreter + Snakemake import floor), median of 3 each.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

REPO = _common.REPO
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

QUICK_CONFIG = """\
training: {max_steps: 10, warmup_steps: 2, val_check_interval: 10, limit_val_batches: 4, checkpoint_every_n_steps: 10}
grid: {learning_rate: [1.0e-3], embed_dim: [64], ffn_dim: [128], heads: [4], seq_len: [64]}
eval: {limit: 4}
latency: {contexts: [64, 128], new_tokens: 4, trials: 1, recompute_max_context: 64}
generate: {max_new_tokens: 8}
emissions: {enabled: false}
"""


def timed(cmd, cwd=None, env=None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def median_time(cmd, n=3, cwd=None) -> float:
    out, failures = [], 0
    while len(out) < n:
        s, proc = timed(cmd, cwd=cwd)
        if proc.returncode:  # e.g. a file edited by someone else mid-parse: retry, at most n times
            failures += 1
            if failures > n:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{(proc.stderr + proc.stdout)[-3000:]}")
            continue
        out.append(s)
    return _common.median(out)


_STAMP = re.compile(r"^\[(\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d \d{4})\]")


def rule_times(log: str) -> dict:
    """Sum of (finish - start) seconds per rule, from a Snakemake log: a timestamp line precedes
    each ``rule NAME:`` / ``localrule NAME:`` block and each ``Finished jobid: N (Rule: NAME)``."""
    start, per_rule, count = {}, collections.defaultdict(float), collections.Counter()
    stamp, pending = None, None
    for line in log.splitlines():
        m = _STAMP.match(line.strip())
        if m:
            stamp = dt.datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            continue
        s = line.strip()
        m = re.match(r"^(?:local)?rule (\w+):", s)
        if m:
            pending = (m.group(1), stamp)
            continue
        m = re.match(r"^jobid: (\d+)", s)
        if m and pending:
            start[m.group(1)] = pending
            pending = None
            continue
        m = re.match(r"^Finished jobid: (\d+)", s)
        if m and m.group(1) in start and stamp:
            rule, t0 = start.pop(m.group(1))
            per_rule[rule] += (stamp - t0).total_seconds()
            count[rule] += 1
    return {r: {"jobs": count[r], "seconds": per_rule[r]} for r in sorted(per_rule, key=per_rule.get, reverse=True)}


def import_costs(n=3) -> dict:
    """Per workflow script: seconds to import what it imports in a fresh interpreter."""
    out = {}
    for script in sorted((REPO / "workflow_scripts").glob("*.py")):
        lines = [
            ln.split("#")[0].strip()
            for ln in script.read_text().splitlines()
            if re.match(r"^(from archbench[\w.]* import|import archbench)", ln)
        ]
        code = "; ".join(lines) or "import archbench"
        probe = f"import time, sys; t=time.perf_counter(); {code}; print(time.perf_counter()-t, 'torch' in sys.modules)"
        secs, torch_loaded = [], False
        for _ in range(n):
            proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
            if proc.returncode:
                secs = None
                break
            t, tl = proc.stdout.split()[-2:]
            secs.append(float(t))
            torch_loaded = tl == "True"
        out[script.stem] = {
            "imports": code,
            "seconds": round(_common.median(secs), 3) if secs else None,
            "imports_torch": torch_loaded,
        }
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny config overlay for a fast check")
    ap.add_argument("--skip-run", action="store_true", help="only dry runs and import profile")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args(argv)

    result = {
        "benchmark": "pipeline",
        "machine": _common.machine(torch_info=False),
        "settings": {"quick": args.quick, "cores": args.cores, "snakemake": SNAKEMAKE},
    }
    import torch  # version only; the timings below run in subprocesses

    result["machine"]["torch"] = torch.__version__
    version = median_time([SNAKEMAKE, "--version"])
    result["machine"]["snakemake"] = subprocess.run(
        [SNAKEMAKE, "--version"], capture_output=True, text=True
    ).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="archbench-pipebench-"))
    base = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp)]
    dry_default = median_time(base + ["-n", "--quiet"])
    paper = [str(REPO / "config/presets/paper-grid.yaml")]
    dry_paper = median_time(base + ["-n", "--quiet", "--configfile", *paper])
    s, proc = timed(base + ["-n", "--configfile", *paper])
    n_jobs = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.M)
    result["dag"] = {
        "snakemake_version_s": round(version, 3),
        "dry_run_default_s": round(dry_default, 3),
        "dry_run_default_net_s": round(dry_default - version, 3),
        "dry_run_paper_grid_s": round(dry_paper, 3),
        "dry_run_paper_grid_net_s": round(dry_paper - version, 3),
        "paper_grid_jobs": int(n_jobs.group(1)) if n_jobs else None,
    }

    if not args.skip_run:
        cmd = base + ["--cores", str(args.cores)]
        if args.quick:
            overlay = tmp / "quick.yaml"
            overlay.write_text(QUICK_CONFIG)
            cmd += ["--configfile", str(overlay)]
        wall, proc = timed(cmd)
        log = proc.stderr + proc.stdout
        (tmp / "snakemake.log").write_text(log)
        rules = rule_times(log)
        jobs = sum(r["jobs"] for r in rules.values())
        result["run"] = {
            "command": " ".join(cmd),
            "returncode": proc.returncode,
            "wall_s": round(wall, 2),
            "jobs": jobs,
            "rules": rules,
            "log_tail": log[-1500:] if proc.returncode else None,
        }

    imports = import_costs()
    result["imports"] = imports
    if "run" in result:
        # fixed import cost paid per job = script import time x jobs of the rule(s) using it
        script_of = {}
        for smk in (REPO / "rules").glob("*.smk"):
            for m in re.finditer(r"rule (\w+):.*?workflow_scripts/(\w+)\.py", smk.read_text(), re.S):
                script_of.setdefault(m.group(1), m.group(2))
        overhead = {}
        for rule, r in result["run"]["rules"].items():
            sc = script_of.get(rule)
            if sc in imports and imports[sc]["seconds"] is not None:
                overhead[rule] = {
                    "jobs": r["jobs"],
                    "import_s_per_job": imports[sc]["seconds"],
                    "import_s_total": round(imports[sc]["seconds"] * r["jobs"], 2),
                    "share_of_rule_time": round(imports[sc]["seconds"] * r["jobs"] / max(r["seconds"], 1), 3),
                }
        result["import_overhead_per_rule"] = dict(sorted(overhead.items(), key=lambda kv: -kv[1]["import_s_total"]))
        result["import_overhead_total_s"] = round(sum(v["import_s_total"] for v in overhead.values()), 2)
    if args.keep:
        result["workdir"] = str(tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    _common.emit(result)


if __name__ == "__main__":
    main()
