"""Gradient checkpointing: peak memory and time of one training step with and without it. Prints ONE JSON object.

    python benchmarks/checkpointing.py [--seq-len 4096] [--archs retnet transformer llama] [--steps 2]

Each case (architecture x checkpointing off / on) runs in a FRESH subprocess with one thread: build the
model (embed 256, 4 layers, 4 heads, FFN 512, vocab 4096, batch 1) and AdamW, one warm-up step (gradients
and AdamW state allocated, as in every later step of a training run), then

- ``peak_heap_mb`` (the memory target): peak in-use heap above its level before one step (glibc
  ``mallinfo2`` sampled after every aten op, the recomputation in backward included:
  ``benchmarks/train.py``'s :func:`peak_heap_mb`). Deterministic; torch's CPU allocator returns
  memory to malloc, so this is what the step needs.
- ``peak_rss_mb``: the process's peak resident memory (``ru_maxrss``) minus its resident memory before the
  warm-up step, for the record (glibc keeps freed blocks: noisier, includes the warm-up's allocations).
- ``step_cpu_s``: median CPU time (``time.process_time``) of ``--steps`` timed steps.

A step is forward + fp32 cross-entropy + backward + AdamW with ``use_cache=False``, as the pipeline trains.
Checkpointing is ``model.activation_checkpointing_enable()`` (non-reentrant ``torch.utils.checkpoint``
around each block), what ``training.gradient_checkpointing: true`` switches on. Per architecture:
``memory_saving`` = 1 - peak_heap(on) / peak_heap(off) (target >= 0.40, issue 31) and ``time_ratio`` =
step_cpu_s(on) / step_cpu_s(off), both from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import _common
from train import _rss_mb, peak_heap_mb

MODEL = dict(vocab_size=4096, embed_dim=256, ffn_dim=512, heads=4, layers=4, dropout=0.0)
TARGET = 0.40  # memory saving with checkpointing, per architecture


def worker(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    from archbench.models import build_model
    from archbench.models.common import lm_loss

    T = spec["seq_len"]
    torch.manual_seed(0)
    model = build_model(spec["arch"], **MODEL, max_seq_len=T).train()
    if spec["checkpointing"]:
        model.activation_checkpointing_enable()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(3, MODEL["vocab_size"], (1, T + 1), generator=torch.Generator().manual_seed(1))

    def step():
        opt.zero_grad(set_to_none=False)
        logits = model(input_ids=x[:, :-1], use_cache=False).logits
        lm_loss(logits, x[:, 1:]).backward()
        opt.step()

    rss0 = _rss_mb()
    step()  # warm-up: gradients and AdamW state exist from here on
    heap = peak_heap_mb(step)
    times = []
    for _ in range(spec["steps"]):
        t0 = time.process_time()
        step()
        times.append(time.process_time() - t0)
    return {
        "peak_heap_mb": round(heap, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0, 1),
        "step_cpu_s": round(_common.median(times), 3),
        "step_cpu_s_all": [round(t, 3) for t in times],
    }


def run_case(spec: dict) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": str(spec["threads"])},
    )
    if res.returncode != 0:
        raise RuntimeError(f"case {spec} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=4096)
    parser.add_argument("--archs", nargs="+", default=["retnet", "transformer", "llama"])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case (median CPU time)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return {}
    out = {
        "benchmark": "checkpointing",
        "machine": _common.machine(threads=args.threads),
        "model": {**MODEL, "seq_len": args.seq_len, "batch": 1},
        "memory": "peak in-use heap of one training step after a warm-up step (mallinfo2 after every aten op)",
        "archs": {},
    }
    for arch in args.archs:  # both cases of an architecture back to back: the ratio is paired
        cases = {
            name: run_case(
                dict(arch=arch, checkpointing=on, seq_len=args.seq_len, steps=args.steps, threads=args.threads)
            )
            for name, on in (("off", False), ("on", True))
        }
        saving = 1 - cases["on"]["peak_heap_mb"] / cases["off"]["peak_heap_mb"]
        out["archs"][arch] = {
            **cases,
            "memory_saving": _common.check(saving, ">=", TARGET),
            "time_ratio": round(cases["on"]["step_cpu_s"] / cases["off"]["step_cpu_s"], 3),
        }
    out["all_pass"] = all(a["memory_saving"]["pass"] for a in out["archs"].values())
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
