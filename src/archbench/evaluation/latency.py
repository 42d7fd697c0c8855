"""Inference cost vs context length (RetNet paper Fig. 6): ``run_latency`` -> ``latency.json``.

For every context length x batch size, with the model loaded once and random token ids as the
context: one untimed warm-up, then ``trials`` times a prefill of the context followed by
``new_tokens`` greedy decode steps, each step timed alone (CUDA synchronised). Modes:

- ``recurrent`` (RetNet): one O(1) recurrent step per token from the state built by the prefill;
- ``kv_cache`` (Transformer, LongNet): one step attending over the preallocated KV cache;
- ``recompute`` (every architecture, contexts <= ``recompute_max_context``): the original
  study's method, a full forward over the whole prefix for every new token, for reference.

Schema of ``latency.json``::

    {"entries": [{"arch", "mode", "context", "batch_size",
                  "prefill_ms",                          # median over trials
                  "decode_ms_median", "decode_ms_p10", "decode_ms_p90",  # per token, all trials
                  "tokens_per_s",                        # batch_size * 1000 / decode_ms_median
                  "state_bytes",                         # carried state / KV cache after the prefill
                                                         # (null for recompute: nothing is carried)
                  "peak_rss_bytes",                      # peak process RSS during this entry
                  "peak_cuda_bytes",                     # peak CUDA allocation (null on CPU)
                  "threads", "load_1m",                  # torch threads; 1-minute load average after it
                  "timing_flag",                         # "", "noisy" or "under load" (provenance.timing_flag)
                  "beyond_trained_length",               # context > the model's max_seq_len
                  "skipped"}, ...],                      # reason when the model refused (else absent)
     "summary": {arch, device, threads, params, max_seq_len, batch_size, new_tokens, trials,
                 "decode_ms_median": {mode: {context: ms}},     # at the smallest batch size
                 "state_bytes": {mode: {context: bytes}},
                 "decode_growth": {mode: ms at largest context / ms at smallest},
                 "state_growth": {mode: bytes at largest context / bytes at smallest},
                 "recompute_speedup": {context: recompute ms / cached ms}}}

The statistic is the median over every decode step of every trial (``trials`` x ``new_tokens`` steps),
with its p10 and p90: a step whose spread p90 / p10 exceeds ``provenance.NOISY_SPREAD`` is flagged
"noisy", one taken while the 1-minute load average exceeded the job's threads "under load"; the report's
speed sentences leave flagged ones out.

Contexts beyond the trained ``max_seq_len`` are measured as they are (speed does not depend on
what the weights learned): RetNet's decay and xPos / rotary positions extend to any length; a
Transformer with ``position: learned`` has no embedding there and its entry is ``skipped``.
"""

from __future__ import annotations

import gc
import logging
import os
import resource
import statistics
import time

import torch

from archbench.evaluation.common import EvalRun, arch_of, max_context
from archbench.models.cache import cache_nbytes
from archbench.models.constraints import ContextTooLong
from archbench.models.hf.modeling import cache_keyword, decode_cache
from archbench.provenance import machine_load, timing_flag

MODES = ("recurrent", "kv_cache", "recompute")


def cached_mode(model) -> str:
    """The registry's decode-state kind of the model's architecture: "recurrent" or "kv_cache"."""
    from archbench.models.registry import get_arch

    return get_arch(arch_of(model)).state


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0), so each entry reports its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass  # elsewhere the peak is the process' lifetime peak (ru_maxrss)


def peak_rss() -> int:
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


@torch.inference_mode()
def trial(model, ids: torch.Tensor, mode: str, new_tokens: int):
    """Prefill ``ids`` [B, T] then decode ``new_tokens`` greedily.
    Returns (prefill seconds, [seconds per decode step], state bytes after the prefill or None)."""
    dev = ids.device
    _sync(dev)
    t0 = time.perf_counter()
    # Each model builds its own cache (archbench's DecodeCache, transformers' DynamicCache) on the
    # prefill; ``cache=`` / ``.cache`` is the keyword every one of them takes and returns.
    cached = mode != "recompute"
    out = model(ids, use_cache=cached, logits_to_keep=1)
    cache = decode_cache(out) if cached else None
    keyword = cache_keyword(output=out)  # RWKV takes its state back as state=, every other model as cache=
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    _sync(dev)
    prefill = time.perf_counter() - t0
    state = cache_nbytes(cache) if cache is not None else None
    seq, steps = ids, []
    for _ in range(new_tokens):
        t0 = time.perf_counter()
        if cache is None:  # the original method: the whole prefix again, for one more token
            seq = torch.cat([seq, nxt], 1)
            logits = model(seq, use_cache=False, logits_to_keep=1).logits
        else:
            logits = model(nxt, **{keyword: cache}, use_cache=True, logits_to_keep=1).logits
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        _sync(dev)
        steps.append(time.perf_counter() - t0)
    return prefill, steps, state


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1] if len(values) > 1 else values[0]


def measure(
    model,
    mode: str,
    context: int,
    batch_size: int,
    new_tokens: int,
    trials: int,
    warmup: int,
    device: torch.device,
    seed: int = 0,
) -> dict:
    """One latency.json entry (see the module docstring)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + context * 31 + batch_size)
    ids = torch.randint(4, model.config.vocab_size, (batch_size, context), generator=gen).to(device)
    entry = {
        "arch": arch_of(model),
        "mode": mode,
        "context": context,
        "batch_size": batch_size,
        "beyond_trained_length": context > max_context(model),
    }
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    reset_peak_rss()
    try:
        for _ in range(warmup):
            trial(model, ids, mode, min(new_tokens, 2))
        runs = [trial(model, ids, mode, new_tokens) for _ in range(trials)]
    except ContextTooLong as err:  # the one legitimate refusal; anything else is a bug and fails the job
        return {**entry, "skipped": str(err)}
    steps_ms = [s * 1e3 for _, steps, _ in runs for s in steps]
    median = statistics.median(steps_ms)
    p10, p90 = _quantile(steps_ms, 0.1), _quantile(steps_ms, 0.9)
    threads, load = torch.get_num_threads(), (machine_load()["load_avg"] or [None])[0]
    return {
        **entry,
        "prefill_ms": statistics.median(p * 1e3 for p, _, _ in runs),
        "decode_ms_median": median,
        "decode_ms_p10": p10,
        "decode_ms_p90": p90,
        "tokens_per_s": batch_size * 1e3 / median,
        "state_bytes": runs[0][2],
        "peak_rss_bytes": peak_rss(),
        "peak_cuda_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "threads": threads,
        "load_1m": load,
        "timing_flag": timing_flag(load, threads, p10, p90),
    }


def summarize(entries: list[dict]) -> dict:
    """Per-mode tables at the smallest batch size, and how they grow with the context."""
    ok = [e for e in entries if "skipped" not in e]
    if not ok:
        return {}
    batch = min(e["batch_size"] for e in ok)
    rows = sorted((e for e in ok if e["batch_size"] == batch), key=lambda e: e["context"])
    out = {
        "batch_size": batch,
        "decode_ms_median": {},
        "state_bytes": {},
        "decode_growth": {},
        "state_growth": {},
        "recompute_speedup": {},
    }
    for mode in MODES:
        mine = [e for e in rows if e["mode"] == mode]
        if not mine:
            continue
        out["decode_ms_median"][mode] = {str(e["context"]): e["decode_ms_median"] for e in mine}
        out["decode_growth"][mode] = mine[-1]["decode_ms_median"] / mine[0]["decode_ms_median"]
        if mine[0]["state_bytes"]:
            out["state_bytes"][mode] = {str(e["context"]): e["state_bytes"] for e in mine}
            out["state_growth"][mode] = mine[-1]["state_bytes"] / mine[0]["state_bytes"]
    cached = {e["context"]: e["decode_ms_median"] for e in rows if e["mode"] != "recompute"}
    for e in rows:
        if e["mode"] == "recompute" and e["context"] in cached:
            out["recompute_speedup"][str(e["context"])] = e["decode_ms_median"] / cached[e["context"]]
    return out


def latency_table(results: list[dict]) -> str:
    """Markdown table of per-token decode ms (median) by context: one column per arch x mode, for
    one or more latency.json contents (smallest batch size of each)."""
    cols, contexts = {}, set()
    for data in results:
        s = data["summary"]
        by_mode = s.get("decode_ms_median", {})
        for mode in (m for m in MODES if m in by_mode):  # JSON files come back with sorted keys
            cols[f"{s['arch']} {mode}"] = by_mode[mode]
            contexts.update(int(c) for c in by_mode[mode])
    import pandas as pd

    table = pd.DataFrame(
        {name: {c: f"{v[str(c)]:.2f}" if str(c) in v else "–" for c in sorted(contexts)} for name, v in cols.items()}
    )
    return table.rename_axis("context").to_markdown(colalign=["right"] * (len(cols) + 1), disable_numparse=True)


def run_latency(
    model_dir: str,
    out_json: str | None,
    contexts=(64, 256, 1024, 2048),
    batch_sizes=(1,),
    new_tokens: int = 16,
    trials: int = 3,
    warmup: int = 1,
    recompute_max_context: int = 256,
    device: str = "auto",
    dtype: str = "fp32",
    seed: int = 0,
    threads: int | None = None,
) -> dict:
    """Measure the model saved in ``model_dir``; write ``out_json`` (schema above) and return it."""
    with EvalRun("latency", locals()) as run:
        model, entries = run.model, []
        for batch in sorted(set(batch_sizes)):
            for context in sorted(set(contexts)):  # sorted() returns the list (list.sort() returns None)
                modes = [cached_mode(model)] + (["recompute"] if context <= recompute_max_context else [])
                for mode in modes:
                    entries.append(measure(model, mode, context, batch, new_tokens, trials, warmup, run.device, seed))
                    logging.getLogger(__name__).info("latency %s", entries[-1])  # progress, in the job's log
        summary = {
            "arch": arch_of(model),
            "device": str(run.device),
            "threads": run.threads,
            "params": run.params,
            "max_seq_len": max_context(model),
            "new_tokens": new_tokens,
            "trials": trials,
            "model_dir": os.path.abspath(model_dir),
            **summarize(entries),
        }
        return run.finish({"entries": entries, "summary": summary})


def show_latency(out: dict) -> None:
    """The CLI's display of a latency result: the decode-time table."""
    s = out["summary"]
    print(f"per-token decode time (ms, median), batch {s.get('batch_size')}, {s['device']}, {s['threads']} threads")
    print(latency_table([out]))
