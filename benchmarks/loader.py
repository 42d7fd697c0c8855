"""Training data loader throughput vs the tokens/s a training step consumes, and zero padding.
Prints ONE JSON object.

    python benchmarks/loader.py [--steps 10] [--epochs 2] [--threads N] [--workdir DIR | --bin FILE]

- loader: ``archbench.data.loader.make_dataloader`` over the packed train split of the DEFAULT
  corpus (built with the package's stage functions into ``--workdir``; reused if present),
  default config shapes (seq_len 128, batch 16, shuffled, ``num_workers=0`` i.e. in the training
  process itself), full epochs; tokens/s counts the ``seq_len`` targets per window.
- step: one training step of the default-size model (config/config.yaml: embed 128, FFN 256,
  4 heads, 2 layers, seq_len 128, batch 16, vocab 4096; the Transformer's FFN matched to RetNet's
  parameter count as the pipeline does): forward, fp32 cross-entropy, backward, AdamW step.
  Median over ``--steps`` steps after warm-up, per architecture. The target ratio uses the FASTEST
  architecture (the hardest one for the loader to keep up with).
- padding: every batch is checked against the packed file: each row must equal
  ``tokens[i*seq_len : i*seq_len + seq_len + 1]`` for the window index the sampler yields, every
  batch is (batch, seq_len + 1), and the pad id never appears (the packed file has none).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import _common

TARGET = 20.0


def loader_epochs(bin_path, seq_len, batch, epochs, verify):
    """Iterate ``epochs`` full epochs; returns (seconds of the UNVERIFIED epochs, tokens, checks)."""
    import numpy as np
    import torch

    from archbench.data.loader import load_tokens, make_dataloader
    from archbench.data.tokenizer import PAD_ID

    dl = make_dataloader(bin_path, seq_len, batch, shuffle=True, seed=0, drop_last=True)
    tokens = np.asarray(load_tokens(bin_path))
    checks = {
        "batches": 0,
        "rows_checked": 0,
        "rows_mismatched": 0,
        "pad_tokens_in_batches": 0,
        "pad_tokens_in_file": int((tokens == PAD_ID).sum()),
        "bad_shapes": 0,
    }
    times, n_tok = [], 0
    for epoch in range(epochs):
        dl.sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        count = 0
        for b in dl:
            count += b.shape[0] * (b.shape[1] - 1)
        times.append(time.perf_counter() - t0)
        n_tok = count
    if verify:  # separate, untimed pass: same sampler order, compared row by row with the file
        dl.sampler.set_epoch(0)
        order = list(iter(dl.sampler))
        dl.sampler.set_epoch(0)
        k = 0
        for b in dl:
            checks["batches"] += 1
            if tuple(b.shape) != (batch, seq_len + 1) or b.dtype != torch.int64:
                checks["bad_shapes"] += 1
            checks["pad_tokens_in_batches"] += int((b == PAD_ID).sum())
            for row in b:
                s = order[k] * seq_len
                ref = torch.from_numpy(tokens[s : s + seq_len + 1].astype(np.int64))
                checks["rows_checked"] += 1
                checks["rows_mismatched"] += int(not torch.equal(row, ref))
                k += 1
    return statistics.median(times), n_tok, checks


def step_tokens_per_s(arch, hp, seq_len, batch, steps, warmup=3):
    import torch
    import torch.nn.functional as F

    from archbench.models import build_model, count_parameters

    torch.manual_seed(0)
    model = build_model(arch, **hp).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
    x = torch.randint(3, hp["vocab_size"], (batch, seq_len + 1))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        logits = model(input_ids=x[:, :-1]).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    return {
        "ms_per_step": round(s * 1e3, 2),
        "tokens_per_s": round(batch * seq_len / s),
        "params": count_parameters(model),
        "ffn_dim": hp["ffn_dim"],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3, help="timed loader epochs (median)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "archbench-bench-data"))
    ap.add_argument("--bin", help="existing packed train .bin (with .json) instead of building one")
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    info = _common.machine()
    bin_path = args.bin or _common.default_corpus_inputs(args.workdir)["train_bin"]

    from archbench.models import match_ffn_dim

    seq_len, batch = 128, 16
    hp = dict(vocab_size=4096, embed_dim=128, ffn_dim=256, heads=4, layers=2, dropout=0.0, max_seq_len=seq_len)
    hps = {"retnet": hp, "transformer": {**hp, "ffn_dim": match_ffn_dim("transformer", **hp)}}

    load_s, n_tok, checks = loader_epochs(bin_path, seq_len, batch, args.epochs, verify=True)
    loader_tps = n_tok / load_s
    steps = {a: step_tokens_per_s(a, h, seq_len, batch, args.steps) for a, h in hps.items()}
    fastest = max(steps, key=lambda a: steps[a]["tokens_per_s"])
    ratio = loader_tps / steps[fastest]["tokens_per_s"]
    no_padding = (
        checks["rows_mismatched"] == 0
        and checks["bad_shapes"] == 0
        and checks["pad_tokens_in_batches"] == checks["pad_tokens_in_file"] == 0
    )
    assert no_padding, checks
    result = {
        "benchmark": "loader",
        "machine": info,
        "settings": {
            "bin": bin_path,
            "seq_len": seq_len,
            "batch_size": batch,
            "num_workers": 0,
            "shuffle": True,
            "drop_last": True,
            "loader_epochs": args.epochs,
            "steps": args.steps,
        },
        "loader": {
            "tokens_per_epoch": n_tok,
            "seconds_per_epoch": round(load_s, 4),
            "tokens_per_s": round(loader_tps),
            "us_per_batch": round(load_s / (n_tok / (batch * seq_len)) * 1e6, 1),
        },
        "train_step": steps,
        "padding_check": {**checks, "zero_padding": no_padding},
        "ratios": {
            f"loader_over_{fastest}_step": round(ratio, 2),
            **{f"loader_over_{a}_step": round(loader_tps / s["tokens_per_s"], 2) for a, s in steps.items()},
        },
        "targets": {
            "loader_vs_train_step": _common.check(ratio, ">=", TARGET),
            "zero_padding": {"value": no_padding, "target": "true", "pass": no_padding},
        },
    }
    _common.emit(result)


if __name__ == "__main__":
    main()
