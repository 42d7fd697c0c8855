"""Training tokens per CPU-second and peak memory: RetNet (automatic mode) against the matched
Transformer and every other registered architecture. Prints ONE JSON object.

    python benchmarks/train.py [--lengths 512 2048 4096] [--repeats 3] [--steps 4] [--before REF]
    python benchmarks/train.py --sweep [--lengths ...] [--chunks 32 64 128 256 512]

Cells (configuration x length) run in FRESH subprocesses, one thread each (``--threads``), visited
round-robin ``--repeats`` times (all configurations at all lengths, then again), so load drifting on a
shared machine hits every configuration alike. Per cell, medians over the repeats of:

- ``tokens_per_cpu_s``: batch x seq_len / median CPU time (``time.process_time``) of the steps after
  the first (warm-up). A step is forward + fp32 cross-entropy + backward + AdamW, as in training.
  CPU time, not wall time: on a shared machine wall time stretches several-fold with other load.
  ``tokens_per_s`` (wall) is reported too.
- ``peak_heap_mb`` (the memory target): peak in-use heap (glibc ``mallinfo2``, sampled after every
  aten op of one extra, untimed step) above its level before the step: what a training step needs
  (activations, gradients, AdamW state, RetNet's cached decay tables). Deterministic (identical
  in every step and run). tracemalloc would not see torch's allocations.
- ``peak_train_mb``: the process's peak resident memory (``ru_maxrss``) minus its resident memory
  just before the first step. A fresh process per cell, so the peak is that cell's own; but RSS
  also holds blocks glibc keeps after free (its mmap threshold moves with the allocation
  history), so readings vary ~5-10% between identical runs: reported, with its ratio, not targeted.

Configurations: ``retnet`` (automatic plan: ``chunkwise_above`` and ``chunk_size`` left unset), the
retention plan it ran is recorded in ``mode``; every other architecture in
``archbench.models.registry.ARCHS`` with its width knob sized to RetNet's non-embedding parameter
count (``match_ffn_dim``, else a bisection on meta-device models); ``retnet_parallel`` (forced
parallel) for reference. ``--before REF`` adds ``retnet_before``: RetNet from ``git show
REF:src/archbench/models/retnet.py`` (the implementation before the batched chunkwise rewrite) with that commit's default
plan (``--before-chunkwise-above`` 2048, chunk 512), measured in the same run.

``ratios``: RetNet / Transformer tokens per CPU-second and peak training memory per length, as the
median over rounds of the per-round ratio (paired: both measured minutes apart). ``targets`` (issue
16): tokens ratio >= 1.0 at 2048 and 4096, >= 0.9 at 512; memory ratio <= 1 at 4096.

``--sweep`` times forced retention plans (parallel, chunkwise with each ``--chunks`` length) in ONE
process, interleaved, and prints tokens per CPU-second per (length, plan): the measurement behind
``archbench.models.retnet.AUTO_CHUNK``.

Small model (embed 64, FFN 128, 4 heads, 2 layers, vocab 4096, batch 1) so a run fits in minutes on CPU.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import _common

TARGETS = {512: 0.9, 2048: 1.0, 4096: 1.0}  # RetNet(auto) / Transformer tokens per CPU-second
MODEL = dict(vocab_size=4096, embed_dim=64, ffn_dim=128, heads=4, layers=2, dropout=0.0)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]


def _heap_in_use() -> int:
    """Bytes malloc has handed out and not got back (glibc mallinfo2: heap + mmapped chunks)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    m = libc.mallinfo2()
    return m.uordblks + m.hblkhd


def peak_heap_mb(step) -> float:
    """Peak of the process's in-use heap during ``step()`` above its level before, sampled after
    every aten op (forward, backward, optimizer) by a dispatch mode: deterministic, and free of the
    allocator's retention that makes ``ru_maxrss`` vary between runs."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Peak(TorchDispatchMode):
        peak = _heap_in_use()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            Peak.peak = max(Peak.peak, _heap_in_use())
            return out

    base = _heap_in_use()
    with Peak():
        step()
    return (Peak.peak - base) / 2**20


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _arch_settings(arch: str, T: int) -> dict:
    """Settings an architecture needs to be sensible at length T (not parameter counts)."""
    if arch == "longnet":
        return dict(segment_lengths=[min(T, 512), T], dilated_ratios=[1, max(1, T // 512)])
    return {}


def matched_width(arch: str, hp: dict) -> dict:
    """``{width_knob: value}`` giving ``arch`` RetNet's non-embedding parameter count: the project's
    ``match_ffn_dim`` where it handles the architecture, else a bisection on meta-device models."""
    import torch

    from archbench.models import build_model, count_parameters, match_ffn_dim
    from archbench.models.registry import get_arch

    knob = get_arch(arch).width_knob
    if knob is None:
        return {}
    try:
        return {knob: match_ffn_dim(arch, **hp)}
    except (ValueError, KeyError, TypeError):
        pass

    def count(arch_name, **kw):
        with torch.device("meta"):
            return count_parameters(build_model(arch_name, **kw), include_embeddings=False)

    target, lo, hi = count("retnet", **hp), 1, 1 << 16
    while lo < hi:  # smallest width whose count reaches the target, then the closer neighbour
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(arch, **{**hp, knob: mid}) < target else (lo, mid)
    best = min((lo - 1, lo), key=lambda w: abs(count(arch, **{**hp, knob: max(w, 1)}) - target))
    return {knob: max(best, 1)}


def _load_before(ref: str):
    """RetNet's model module as of git ``ref``, imported inside archbench.models (same common.py)."""
    src = subprocess.run(
        ["git", "-C", str(_common.REPO), "show", f"{ref}:src/archbench/models/retnet.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = os.path.join(tempfile.mkdtemp(), "_retnet_before.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("archbench.models._retnet_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def build(spec: dict):
    """(model, forward kwargs) for one benchmark configuration at ``spec["seq_len"]``."""
    import archbench.models as models

    if hasattr(models, "register"):
        models.register()
    from archbench.models import build_model

    T, name = spec["seq_len"], spec["config"]
    hp = dict(MODEL, max_seq_len=T)
    if name == "retnet":
        return build_model("retnet", **hp), {}
    if name == "retnet_parallel":
        return build_model("retnet", **hp), {"retention_mode": "parallel"}
    if name.startswith("retnet_plan:"):  # --sweep: a forced mode / chunk length
        mode, _, chunk = name.split(":", 1)[1].partition(":")
        return build_model("retnet", **hp, chunk_size=int(chunk) if chunk else None), {"retention_mode": mode}
    if name == "retnet_before":
        mod = _load_before(spec["before"])
        cfg = mod.RetNetConfig(
            **hp, chunk_size=spec["before_chunk_size"], chunkwise_above=spec["before_chunkwise_above"]
        )
        return mod.RetNetForCausalLM(cfg), {}
    hp.update(_arch_settings(name, T))
    return build_model(name, **{**hp, **matched_width(name, hp)}), {}


def _plan(model, T: int, kw: dict):
    """The retention plan a RetNet model runs at length T (None for other architectures)."""
    from archbench.models.retnet import modeling as retnet

    if not isinstance(model, retnet.RetNetForCausalLM):
        above = getattr(model.config, "chunkwise_above", None)  # retnet_before: a fixed threshold
        if getattr(model.config, "model_type", "") != "archbench_retnet":
            return None
        return f"chunkwise (chunk {model.config.chunk_size})" if above is not None and T > above else "parallel"
    mode, chunk = retnet.retention_plan(T, model.config, "cpu", kw.get("retention_mode"))
    return f"{mode} (chunk {chunk})"


def train_step(model, opt, x, kw):
    import torch.nn.functional as F

    logits = model(input_ids=x[:, :-1], **kw).logits
    loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def worker(spec: dict) -> dict:
    import torch

    from archbench.models import count_parameters

    torch.set_num_threads(spec["threads"])
    T, B = spec["seq_len"], spec["batch"]
    torch.manual_seed(0)
    model, kw = build(spec)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
    x = torch.randint(3, MODEL["vocab_size"], (B, T + 1))
    rss0 = _rss_mb()
    times, cpu = [], []
    for _ in range(spec["steps"]):
        t0, c0 = time.perf_counter(), time.process_time()
        train_step(model, opt, x, kw)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    heap = peak_heap_mb(lambda: train_step(model, opt, x, kw))  # one more, untimed step
    s, c = statistics.median(times[1:] or times), statistics.median(cpu[1:] or cpu)
    return {
        "tokens_per_cpu_s": round(B * T / c, 1),
        "tokens_per_s": round(B * T / s, 1),
        "cpu_ms_per_step": round(c * 1e3, 1),
        "peak_heap_mb": round(heap, 1),
        "peak_train_mb": round(peak - rss0, 1),
        "peak_rss_mb": round(peak, 1),
        "params": count_parameters(model),
        "params_non_embedding": count_parameters(model, include_embeddings=False),
        "plan": _plan(model, T, kw),
    }


def sweep(args) -> dict:
    """Forced retention plans in one process, interleaved (reversed every other round)."""
    import torch

    torch.set_num_threads(args.threads)
    out = {}
    for T in args.lengths:
        plans = [f"retnet_plan:chunkwise:{c}" for c in args.chunks if c < T] + ["retnet_plan:parallel"]
        cells = {}
        for name in plans:
            torch.manual_seed(0)
            model, kw = build({"config": name, "seq_len": T})
            cells[name] = (model.train(), torch.optim.AdamW(model.parameters(), lr=1e-3), kw, [])
        x = torch.randint(3, MODEL["vocab_size"], (args.batch, T + 1))
        for r in range(args.sweep_rounds + 1):
            for name in plans if r % 2 else plans[::-1]:
                model, opt, kw, cpu = cells[name]
                c0 = time.process_time()
                train_step(model, opt, x, kw)
                if r:  # round 0 warms up
                    cpu.append(time.process_time() - c0)
        res = {name.split(":", 1)[1]: round(args.batch * T / statistics.median(c[3]), 1) for name, c in cells.items()}
        out[str(T)] = {"tokens_per_cpu_s": res, "best": max(res, key=res.get)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 4096])
    ap.add_argument(
        "--configs",
        nargs="+",
        default=None,
        help="default: retnet, every other registered architecture, retnet_parallel (+ retnet_before)",
    )
    ap.add_argument("--steps", type=int, default=4, help="training steps per process (the first warms up)")
    ap.add_argument("--repeats", type=int, default=3, help="round-robin rounds of fresh processes")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--before", metavar="REF", help="also time RetNet as of this git commit")
    ap.add_argument("--before-chunkwise-above", type=int, default=2048)
    ap.add_argument("--before-chunk-size", type=int, default=512)
    ap.add_argument("--no-parallel", action="store_true", help="skip the forced-parallel RetNet reference")
    ap.add_argument("--sweep", action="store_true", help="time forced retention plans instead")
    ap.add_argument("--chunks", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    ap.add_argument("--sweep-rounds", type=int, default=5)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    result = {
        "benchmark": "train",
        "machine": _common.machine(threads=args.threads),
        "settings": {
            "batch": args.batch,
            "steps": args.steps,
            "repeats": args.repeats,
            "lengths": args.lengths,
            "model": MODEL,
        },
    }
    if args.sweep:
        result["sweep"] = sweep(args)
        _common.emit(result)
        return

    from archbench.models.registry import ARCHS

    configs = args.configs or (
        ["retnet"]
        + [a for a in ARCHS if a != "retnet"]
        + ([] if args.no_parallel else ["retnet_parallel"])
        + (["retnet_before"] if args.before else [])
    )
    result["settings"]["configs"] = configs
    if args.before:
        result["settings"]["before"] = {
            "ref": args.before,
            "chunkwise_above": args.before_chunkwise_above,
            "chunk_size": args.before_chunk_size,
        }
    runs = {}  # (config, T) -> list of worker results, one per round
    for _ in range(args.repeats):
        for T in args.lengths:
            for name in configs:
                spec = dict(
                    config=name,
                    seq_len=T,
                    batch=args.batch,
                    steps=args.steps,
                    threads=args.threads,
                    before=args.before,
                    before_chunkwise_above=args.before_chunkwise_above,
                    before_chunk_size=args.before_chunk_size,
                )
                proc = subprocess.run(
                    [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True
                )
                if proc.returncode:
                    runs.setdefault((name, T), []).append({"error": proc.stderr.strip().splitlines()[-1:]})
                else:
                    runs.setdefault((name, T), []).append(json.loads(proc.stdout.strip().splitlines()[-1]))

    cells = {}
    for (name, T), rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            cells.setdefault(name, {})[str(T)] = rs[0]
            continue
        cell = {
            k: (statistics.median(r[k] for r in ok) if isinstance(v, (int, float)) else v) for k, v in ok[0].items()
        }
        cell["tokens_per_cpu_s_runs"] = [r["tokens_per_cpu_s"] for r in ok]
        cell["peak_train_mb_runs"] = [r["peak_train_mb"] for r in ok]
        cells.setdefault(name, {})[str(T)] = cell
    result["results"] = cells

    def paired(a, b, key, T):
        """Median over rounds of a/b for ``key`` (rounds where both ran)."""
        ra, rb = runs.get((a, T), []), runs.get((b, T), [])
        xs = [x[key] / y[key] for x, y in zip(ra, rb) if key in x and key in y and y[key]]
        return round(statistics.median(xs), 3) if xs else None

    ratios, targets = {}, {}
    for other in configs:
        if other == "retnet":
            continue
        for T in args.lengths:
            for key in ("tokens_per_cpu_s", "peak_heap_mb", "peak_train_mb"):
                r = paired("retnet", other, key, T)
                if r is not None:
                    ratios[f"retnet_over_{other}_{key}_{T}"] = r
    for T, target in TARGETS.items():
        r = ratios.get(f"retnet_over_transformer_tokens_per_cpu_s_{T}")
        if r is not None:
            targets[f"retnet_tokens_per_cpu_s_{T}_vs_transformer"] = _common.check(r, ">=", target)
    r = ratios.get("retnet_over_transformer_peak_heap_mb_4096")
    if r is not None:
        targets["retnet_peak_train_mem_4096_vs_transformer"] = _common.check(r, "<=", 1.0)
    result["ratios"] = ratios
    result["targets"] = targets
    _common.emit(result)


if __name__ == "__main__":
    main()
