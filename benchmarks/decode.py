"""Per-token decoding cost: RetNet's recurrent state vs parameter-matched KV caches (our Transformer,
the Llama-style Transformer++) and Mamba-2's recurrent state, vs recomputing the whole prefix per
token (the original study's method). Prints ONE JSON object.

    python benchmarks/decode.py [--threads 1] [--contexts 64 256 1024 2048] [--tokens 64]

Batch 1, CPU, float32, random weights (cost does not depend on the weights). Each context is
prefilled once (parallel retention / causal attention), then ``--tokens`` single-token steps per
context are timed (round-robin over models and contexts) and the median is reported. Cache sizes are
the bytes of state held after the prefill. Every other model's width knob is matched to RetNet's
parameter count (``archbench.models.matching``); llama / mamba2 decode with transformers' own caches.
``ratios`` and ``targets`` (with pass/fail) compare the shortest and longest contexts:
recurrent t(hi)/t(lo) <= 1.3, full-prefix recompute / recurrent >= 100 at hi, recurrent faster than
the KV cache at hi, RetNet state bytes constant while the KV cache grows linearly.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import _common
import torch

from archbench.evaluation.latency import cache_nbytes
from archbench.models import build_model, count_parameters
from archbench.models.matching import match_width
from archbench.models.registry import get_arch


@torch.inference_mode()
def cached_step_ms(models: dict, contexts, tokens: int, warmup: int = 5):
    """Prefill every (model, context) once, then time single-token steps visiting all of them
    round-robin, so load drifting over time on a shared machine hits every cell alike.
    Returns {arch: ({context: median ms}, {context: state bytes after the prefill})}."""
    runs = {}
    for arch, model in models.items():
        for ctx in contexts:
            ids = torch.randint(3, model.config.vocab_size, (1, ctx))
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            runs[arch, ctx] = [out.cache, out.logits[:, -1:].argmax(-1), cache_nbytes(out.cache), []]
    for i in range(warmup + tokens):
        for (arch, _), run in runs.items():
            t0 = time.perf_counter()
            out = models[arch](input_ids=run[1], cache=run[0], use_cache=True)
            run[1] = out.logits[:, -1:].argmax(-1)
            if i >= warmup:
                run[3].append(time.perf_counter() - t0)
    return {
        arch: (
            {str(c): round(statistics.median(runs[arch, c][3]) * 1e3, 3) for c in contexts},
            {str(c): runs[arch, c][2] for c in contexts},
        )
        for arch in models
    }


@torch.inference_mode()
def recompute_ms(model, context: int, tokens: int):
    """The original study's decoding: one full forward over the prefix per generated token."""
    ids = torch.randint(3, model.config.vocab_size, (1, context))
    model(input_ids=ids, use_cache=False, logits_to_keep=1)  # warm-up
    times = []
    for _ in range(tokens):
        t0 = time.perf_counter()
        model(input_ids=ids, use_cache=False, logits_to_keep=1)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--contexts", type=int, nargs="+", default=[64, 256, 1024, 2048])
    ap.add_argument("--tokens", type=int, default=64, help="timed decode steps per context")
    ap.add_argument("--recompute-tokens", type=int, default=3)
    ap.add_argument("--embed-dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument(
        "--archs",
        nargs="+",
        default=["retnet", "transformer", "llama", "mamba2"],
        help="retnet is always measured (the reference)",
    )
    ap.add_argument(
        "--ssm-expand", type=int, default=4, help="mamba2 inner width / embed_dim (its SSM state size is then matched)"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    longest = max(args.contexts) + args.tokens + 8
    retnet_hp = dict(
        vocab_size=args.vocab_size,
        embed_dim=args.embed_dim,
        heads=args.heads,
        layers=args.layers,
        ffn_dim=2 * args.embed_dim,
        max_seq_len=longest,
    )
    hps = {"retnet": retnet_hp}
    for arch in args.archs:
        if arch != "retnet":
            own = {**retnet_hp, **({"ssm_expand": args.ssm_expand} if arch == "mamba2" else {})}
            hps[arch] = {**own, get_arch(arch).width_knob: match_width(arch, own, "retnet", retnet_hp)}
    models = {arch: build_model(arch, **hp).eval() for arch, hp in hps.items()}

    result = {
        "machine": _common.machine(args.threads),
        "settings": {"batch": 1, "dtype": "float32", "timed_tokens": args.tokens, **hps},
        "params": {
            a: {"total": count_parameters(m), "non_embedding": count_parameters(m, False)} for a, m in models.items()
        },
    }
    steps = cached_step_ms(models, args.contexts, args.tokens)
    for arch, model in models.items():
        per_ctx, nbytes = steps[arch]
        lo, hi = str(min(args.contexts)), str(max(args.contexts))
        key = get_arch(arch).state  # recurrent | kv_cache
        result[arch] = {
            f"{key}_ms_per_token": per_ctx,
            f"ratio_{hi}_over_{lo}": round(per_ctx[hi] / per_ctx[lo], 3),
            "state_bytes" if key == "recurrent" else "kv_cache_bytes": nbytes,
            "recompute_prefix_ms_per_token": {
                str(c): round(recompute_ms(model, c, args.recompute_tokens), 2)
                for c in (min(args.contexts), max(args.contexts))
            },
        }
    result["ratios"], result["targets"] = targets(result, args.contexts)
    print(json.dumps(result, indent=1))


def _check(value, op, target):
    ok = {"<=": value <= target, ">=": value >= target, ">": value > target, "<": value < target}[op]
    return {"value": round(float(value), 4), "target": f"{op} {target}", "pass": bool(ok)}


def targets(result: dict, contexts) -> tuple[dict, dict]:
    """The decode targets at the shortest (lo) and longest (hi) context."""
    lo, hi = str(min(contexts)), str(max(contexts))
    rec = result["retnet"]["recurrent_ms_per_token"]
    kv = result["transformer"]["kv_cache_ms_per_token"]
    state = result["retnet"]["state_bytes"]
    kvb = result["transformer"]["kv_cache_bytes"]
    recompute_rn = result["retnet"]["recompute_prefix_ms_per_token"][hi]
    recompute_tf = result["transformer"]["recompute_prefix_ms_per_token"][hi]
    ratios = {
        f"retnet_recurrent_{hi}_over_{lo}": rec[hi] / rec[lo],
        f"retnet_recompute_over_recurrent_{hi}": recompute_rn / rec[hi],
        f"transformer_recompute_over_retnet_recurrent_{hi}": recompute_tf / rec[hi],
        f"transformer_kv_over_retnet_recurrent_{hi}": kv[hi] / rec[hi],
        f"retnet_state_bytes_{hi}_over_{lo}": state[hi] / state[lo],
        f"transformer_kv_bytes_{hi}_over_{lo}": kvb[hi] / kvb[lo],
        "context_ratio": int(hi) / int(lo),
    }
    for arch in ("llama", "mamba2"):  # rows present when measured (--archs)
        if arch not in result:
            continue
        key = get_arch(arch).state
        t = result[arch][f"{key}_ms_per_token"]
        b = result[arch]["state_bytes" if key == "recurrent" else "kv_cache_bytes"]
        ratios[f"{arch}_{key}_{hi}_over_{lo}"] = t[hi] / t[lo]
        ratios[f"{arch}_{key}_over_retnet_recurrent_{hi}"] = t[hi] / rec[hi]
        ratios[f"{arch}_bytes_{hi}_over_{lo}"] = b[hi] / b[lo]
    ratios = {k: round(v, 3) for k, v in ratios.items()}
    state_flat = len(set(state.values())) == 1
    # linear: bytes proportional to the context (the cache may preallocate a little headroom)
    kv_linear = all(0.8 <= (kvb[c] / kvb[lo]) / (int(c) / int(lo)) <= 1.25 for c in kvb)
    checks = {
        f"recurrent_flat_{hi}_over_{lo}": _check(ratios[f"retnet_recurrent_{hi}_over_{lo}"], "<=", 1.3),
        f"recurrent_vs_recompute_{hi}": _check(ratios[f"retnet_recompute_over_recurrent_{hi}"], ">=", 100),
        f"recurrent_faster_than_kv_cache_{hi}": _check(ratios[f"transformer_kv_over_retnet_recurrent_{hi}"], ">", 1.0),
        "state_memory_constant_vs_kv_linear": {
            "value": {"retnet_state_bytes": state, "transformer_kv_cache_bytes": kvb},
            "target": "RetNet state equal at every context; KV cache proportional to context",
            "pass": bool(state_flat and kv_linear),
        },
    }
    if "mamba2" in result:  # Mamba-2 decodes from an O(1) state like RetNet
        checks["mamba2_state_constant"] = {
            "value": result["mamba2"]["state_bytes"],
            "target": "equal at every context",
            "pass": len(set(result["mamba2"]["state_bytes"].values())) == 1,
        }
        checks[f"mamba2_recurrent_flat_{hi}_over_{lo}"] = _check(ratios[f"mamba2_recurrent_{hi}_over_{lo}"], "<=", 1.3)
    return ratios, checks


if __name__ == "__main__":
    main()
