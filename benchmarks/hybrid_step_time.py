"""CPU time of one training step of a hybrid against its pure recurrent model, per attention ratio.
Prints ONE JSON object.

    python benchmarks/hybrid_step_time.py [--arch mamba2] [--every 0 8 4 2 1] [--batch 16] [--seq 64]
        [--width 64] [--layers 8] [--steps 8] [--repeats 3] [--match-to retnet] [--extra '{"ssm_chunk_size": 64}']

One process, one thread; the models (one per ``model.attention_every`` value) are built once, then
visited round-robin ``--repeats`` times, ``--steps`` steps each after one warm-up step, so load drifting
on a shared machine hits every ratio alike. A step is forward + fp32 cross-entropy + backward + AdamW,
as in training. Reported per ratio: the median CPU seconds per step (``time.process_time``; wall time
stretches with other load on a shared machine, ``wall_s`` is given too), its ratio to the pure model
(``every`` 0), the layer pattern, non-embedding parameters and training FLOPs per token (the registry's
formulas). ``--match-to REF`` first turns the width knob (mamba2: ssm_state_size) of each ratio to
REF's non-embedding parameters built from the same settings (``ffn_dim`` = 2 x width), as
``model.match_params`` does; without it every ratio keeps the same knob value.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from archbench.models import build_model
from archbench.models.flops import train_flops_per_token
from archbench.models.hybrid import pattern
from archbench.models.matching import count, matched
from archbench.models.registry import get_arch
from archbench.models.sizing import resolved_settings
from archbench.provenance import machine_load


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="mamba2")
    ap.add_argument("--every", type=int, nargs="+", default=[0, 8, 4, 2, 1])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--match-to", default=None)
    ap.add_argument("--extra", default='{"ssm_chunk_size": 64}', help="more model settings, JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    base = dict(
        vocab_size=args.vocab,
        embed_dim=args.width,
        heads=args.heads,
        layers=args.layers,
        max_seq_len=args.seq,
        **json.loads(args.extra),
    )
    reference = dict(base, ffn_dim=2 * args.width)
    reference = {k: v for k, v in reference.items() if not k.startswith("ssm_")}
    runs = {}
    for every in args.every:
        kw = {**base, "attention_every": every}
        if args.match_to and args.match_to != args.arch:
            try:
                kw = matched(args.arch, kw, args.match_to, reference)
            except Exception as err:  # all-attention has no knob left to turn, for one
                runs[every] = {"skipped": f"{type(err).__name__}: {err}"}
                continue
        torch.manual_seed(0)
        model = build_model(args.arch, **kw).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        knob = get_arch(args.arch).width_knob
        runs[every] = {
            "pattern": pattern(args.layers, every, mixer="M" if args.arch == "mamba2" else "R"),
            knob: resolved_settings(args.arch, **kw).get(knob),
            "params_non_embedding": count(args.arch, kw, include_embeddings=False),
            "train_flops_per_token": train_flops_per_token(args.arch, kw, args.seq),
            "_model": model,
            "_opt": opt,
            "cpu_s": [],
            "wall_s": [],
        }
    x = torch.randint(5, args.vocab, (args.batch, args.seq + 1), generator=torch.Generator().manual_seed(0))

    def step(run):
        logits = run["_model"](input_ids=x[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten())
        run["_opt"].zero_grad()
        loss.backward()
        run["_opt"].step()

    live = [r for r in runs.values() if "_model" in r]
    loads = []
    for _ in range(args.repeats):
        for run in live:
            step(run)  # warm-up
            for _ in range(args.steps):
                c0, w0 = time.process_time(), time.perf_counter()
                step(run)
                run["cpu_s"].append(time.process_time() - c0)
                run["wall_s"].append(time.perf_counter() - w0)
        loads.append(machine_load())
    pure = runs.get(0, {})
    pure_cpu = statistics.median(pure["cpu_s"]) if pure.get("cpu_s") else None
    out = {}
    for every, run in runs.items():
        if "_model" not in run:
            out[str(every)] = run
            continue
        cpu = statistics.median(run["cpu_s"])
        out[str(every)] = {k: v for k, v in run.items() if not k.startswith("_") and k not in ("cpu_s", "wall_s")} | {
            "cpu_s_per_step": round(cpu, 4),
            "cpu_s_p10_p90": [round(q, 4) for q in statistics.quantiles(run["cpu_s"], n=10)[::8]],
            "wall_s_per_step": round(statistics.median(run["wall_s"]), 4),
            "vs_pure": round(cpu / pure_cpu, 3) if pure_cpu else None,
        }
    print(
        json.dumps(
            {
                "arch": args.arch,
                "settings": {**base, "batch": args.batch, "seq_len": args.seq, "match_to": args.match_to},
                "threads": args.threads,
                "cpus": os.cpu_count(),
                "load": loads,
                "steps_timed": args.steps * args.repeats,
                "runs": out,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
