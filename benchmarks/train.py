"""Training tokens/s and peak memory per architecture and sequence length; RetNet parallel vs
chunkwise, and the automatic switch (``chunkwise_above``). Prints ONE JSON object.

    python benchmarks/train.py [--lengths 512 2048 4096] [--steps 3] [--batch 1] [--threads N]

Each (configuration, length) runs in a FRESH subprocess, so its peak resident memory
(``ru_maxrss``) is its own. Reported per cell:

- ``tokens_per_s``: batch x seq_len / median step time (steps after the first, which warms up);
  a step is forward + fp32 cross-entropy + backward + AdamW step, as in training.
  ``tokens_per_cpu_s`` uses the process CPU time instead: far less sensitive to other load on a
  shared machine (wall time there can stretch several-fold; compare CPU-time ratios).
- ``peak_rss_mb``: ``ru_maxrss`` of the process; ``peak_train_mb``: that peak minus the resident
  memory just before the first step (interpreter, libraries, model and data already loaded): the
  memory the training steps themselves add (activations, gradients, optimizer state), which is what
  chunkwise retention is meant to save. The target uses ``peak_train_mb``.
- ``mode``: the retention mode(s) the model actually ran (recorded from ``decay_tables``).
- RetNet cells at the longest length run ``--repeats`` fresh processes; medians are reported (the
  allocator makes single peak readings vary by ~10%).

Configurations: ``retnet_parallel`` (chunkwise_above = null), ``retnet_chunkwise`` (always),
``retnet_auto`` (chunkwise_above = ``--chunkwise-above``, the config default 2048: parallel up to
2048 tokens, chunkwise above), ``transformer`` (FFN matched to RetNet's parameters) and ``longnet``.
Small model (embed 64, FFN 128, 4 heads, 2 layers, vocab 4096, chunk 512) so it fits in minutes on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import _common

TARGET_MEM_RATIO = 0.5


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(spec: dict) -> dict:
    import torch
    import torch.nn.functional as F

    import archbench.models.retnet as retnet_mod
    from archbench.models import build_model, count_parameters, match_ffn_dim

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    modes = set()
    orig = retnet_mod.decay_tables

    def recording(decay, pos, p_start, mode, *a, **kw):
        modes.add(mode)
        return orig(decay, pos, p_start, mode, *a, **kw)

    retnet_mod.decay_tables = recording
    T, B = spec["seq_len"], spec["batch"]
    hp = dict(vocab_size=4096, embed_dim=64, ffn_dim=128, heads=4, layers=2, dropout=0.0,
              max_seq_len=T, chunk_size=spec["chunk_size"])
    name = spec["config"]
    if name.startswith("retnet"):
        arch = "retnet"
        hp["chunkwise_above"] = {"retnet_parallel": None, "retnet_chunkwise": 1,
                                 "retnet_auto": spec["chunkwise_above"]}[name]
    else:
        arch = name
        hp["ffn_dim"] = match_ffn_dim(arch, **hp)
        if arch == "longnet":
            hp.update(segment_lengths=[min(T, 512), T], dilated_ratios=[1, max(1, T // 512)])
    torch.manual_seed(0)
    model = build_model(arch, **hp).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
    x = torch.randint(3, 4096, (B, T + 1))
    rss0 = _rss_mb()
    times, cpu = [], []
    for _ in range(spec["steps"]):
        t0, c0 = time.perf_counter(), time.process_time()
        logits = model(input_ids=x[:, :-1]).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del logits, loss
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    s = statistics.median(times[1:] or times)
    c = statistics.median(cpu[1:] or cpu)
    return {"tokens_per_s": round(B * T / s, 1), "ms_per_step": round(s * 1e3, 1),
            "cpu_ms_per_step": round(c * 1e3, 1), "tokens_per_cpu_s": round(B * T / c, 1),
            "peak_rss_mb": round(peak, 1), "rss_before_steps_mb": round(rss0, 1),
            "peak_train_mb": round(peak - rss0, 1), "mode": sorted(modes) or None,
            "params": count_parameters(model)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 4096])
    ap.add_argument("--configs", nargs="+",
                    default=["retnet_parallel", "retnet_chunkwise", "retnet_auto", "transformer", "longnet"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--chunk-size", type=int, default=512)
    ap.add_argument("--chunkwise-above", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3,
                    help="fresh processes per RetNet cell at the longest length (median memory)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    result = {"benchmark": "train", "machine": _common.machine(threads=args.threads),
              "settings": {"batch": args.batch, "steps": args.steps, "chunk_size": args.chunk_size,
                           "chunkwise_above": args.chunkwise_above, "lengths": args.lengths,
                           "model": "embed 64, ffn 128, heads 4, layers 2, vocab 4096"}}
    cells = {}
    for T in args.lengths:
        for name in args.configs:
            spec = dict(config=name, seq_len=T, batch=args.batch, steps=args.steps, threads=args.threads,
                        chunk_size=args.chunk_size, chunkwise_above=args.chunkwise_above)
            n = args.repeats if (T == max(args.lengths) and name.startswith("retnet")) else 1
            runs = []
            for _ in range(n):
                proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                                      capture_output=True, text=True)
                if proc.returncode:
                    runs = [{"error": proc.stderr.strip().splitlines()[-1:]}]
                    break
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            cell = runs[0]
            if len(runs) > 1:  # median per numeric field over the fresh processes
                cell = {k: (statistics.median(r[k] for r in runs) if isinstance(v, (int, float)) else v)
                        for k, v in runs[0].items()}
                cell["peak_train_mb_runs"] = [r["peak_train_mb"] for r in runs]
            cells.setdefault(name, {})[str(T)] = cell
    result["results"] = cells

    targets, ratios = {}, {}
    hi = str(max(args.lengths))
    par, chk, auto = (cells.get(k, {}).get(hi, {}) for k in ("retnet_parallel", "retnet_chunkwise", "retnet_auto"))
    if "peak_train_mb" in par and "peak_train_mb" in chk:
        r = chk["peak_train_mb"] / par["peak_train_mb"]
        ratios[f"chunkwise_over_parallel_peak_train_mem_{hi}"] = round(r, 3)
        ratios[f"chunkwise_over_parallel_peak_rss_{hi}"] = round(chk["peak_rss_mb"] / par["peak_rss_mb"], 3)
        ratios[f"chunkwise_over_parallel_tokens_per_cpu_s_{hi}"] = round(chk["tokens_per_cpu_s"] / par["tokens_per_cpu_s"], 3)
        targets[f"chunkwise_peak_mem_{hi}_vs_parallel"] = _common.check(r, "<=", TARGET_MEM_RATIO)
    if "retnet_auto" in cells:
        expect = {T: ["chunkwise" if T > args.chunkwise_above else "parallel"] for T in args.lengths}
        got = {T: cells["retnet_auto"].get(str(T), {}).get("mode") for T in args.lengths}
        ok = all(got[T] == expect[T] for T in args.lengths)
        switch = {"value": {str(T): got[T] for T in args.lengths}, "target": f"chunkwise above {args.chunkwise_above}", "pass": ok}
        if "peak_train_mb" in auto and "peak_train_mb" in par:
            r = auto["peak_train_mb"] / par["peak_train_mb"]
            ratios[f"auto_over_parallel_peak_train_mem_{hi}"] = round(r, 3)
            switch["pass"] = ok and r <= TARGET_MEM_RATIO
            switch["auto_mem_ratio_at_" + hi] = round(r, 3)
        targets["auto_switch_chunkwise_above"] = switch
    result["ratios"] = ratios
    result["targets"] = targets
    _common.emit(result)


if __name__ == "__main__":
    main()
