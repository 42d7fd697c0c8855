"""One command for the day a GPU is lent: is the GPU install healthy? Prints ONE JSON object.

    python benchmarks/gpu_check.py                              # CUDA, ~20-50M parameters, bf16, <= 8 min
    python benchmarks/gpu_check.py --device cpu --size toy      # the same code path on CPU in seconds

For every registered architecture (other widths matched to RetNet's non-embedding parameter count):

* ``parity``: each kernel against its reference where the kernel is installed — fla's
  ``chunk_retention`` vs our chunkwise retention (fp32), flash-attn vs SDPA (fp32), Mamba-2 with the
  mamba_ssm / causal_conv1d kernels vs the same weights on the PyTorch path; on CPU, fla's naive
  retention reference vs ours. Skipped entries say why.
* ``train``: tokens/s of bf16-autocast training steps (AdamW), peak memory, and model FLOPs
  utilisation = FLOPs per token x tokens/s / the card's dense bf16 peak (FLOPs per token from the
  registry's ``flops`` when present, else 6 N + 6 d V + 12 T d L for softmax attention).
* ``decode``: ms per token (batch 1, after prefilling each context), decoding-state bytes and peak
  memory, at contexts up to 16k.

``targets`` say what a healthy install shows (parity within tolerance, RetNet's and Mamba-2's decoding
state constant in the context while the KV caches grow with it, RetNet's per-token time flat in the
context, the whole check within its time budget); ``ratios`` compare RetNet with the Transformer
measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import statistics
import time

import _common
import torch

from archbench.evaluation.latency import cache_nbytes
from archbench.models import arch_names, build_model, count_parameters, get_arch
from archbench.models.matching import match_width

SIZES = {  # RetNet's settings; the others are width-matched to it
    "small": dict(vocab_size=32000, embed_dim=512, ffn_dim=1024, heads=8, layers=8),  # ~29M non-embedding
    "toy": dict(vocab_size=256, embed_dim=32, ffn_dim=64, heads=2, layers=1),
}
PLAN = {  # per size: training batch x length, timed steps, decode contexts, timed decode tokens
    "small": dict(batch=8, seq_len=2048, steps=5, contexts=[1024, 4096, 16384], tokens=32),
    "toy": dict(batch=2, seq_len=64, steps=2, contexts=[16, 64], tokens=4),
}
PEAK_BF16 = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense, per card
BUDGET_S = 480


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_bytes(device) -> int | None:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def settings_for(size: str, max_len: int) -> dict:
    base = {**SIZES[size], "max_seq_len": max_len}
    out = {"retnet": base}
    for arch in arch_names():
        if arch == "retnet":
            continue
        knob = get_arch(arch).width_knob
        try:
            out[arch] = {**base, knob: match_width(arch, base, "retnet", base)} if knob else dict(base)
        except Exception as err:  # cannot match (e.g. larger than RetNet at knob 1): its own width
            out[arch] = {**base, "match_error": str(err)}
    return out


def flops_per_token(arch: str, hp: dict, seq_len: int, n_non_embedding: int, device_type: str) -> tuple[float, str]:
    """(training FLOPs per token, source): the registry's formula when there is one, else an estimate."""
    entry = get_arch(arch)
    fn = entry.flops_fn() if callable(getattr(entry, "flops_fn", None)) else None
    if fn is not None:
        try:
            return float(fn({**hp, "seq_len": seq_len}, device_type)), "registry flops"
        except (KeyError, TypeError, ValueError):
            pass
    attention = 12 * seq_len * hp["embed_dim"] * hp["layers"] if entry.state == "kv_cache" else 0
    return 6 * n_non_embedding + 6 * hp["embed_dim"] * hp["vocab_size"] + attention, "estimate 6N + 6dV + 12TdL"


def peak_flops(device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16.items():  # "H100 PCIe" before "H100"
        if all(part in name for part in key.split()):
            return value
    return None


def train_check(arch, model, hp, plan, device) -> dict:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(3, hp["vocab_size"], (plan["batch"], plan["seq_len"] + 1), device=device)
    reset_peak(device)
    times = []
    for step in range(plan["steps"] + 1):  # the first step warms up (allocations, kernel choice)
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(input_ids=x[:, :-1], labels=x[:, :-1]).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        if step:
            times.append(time.perf_counter() - t0)
    tokens_per_s = plan["batch"] * plan["seq_len"] / statistics.median(times)
    n = count_parameters(model, include_embeddings=False)
    fpt, source = flops_per_token(arch, hp, plan["seq_len"], n, device.type)
    peak = peak_flops(device)
    del opt
    return {
        "tokens_per_s": round(tokens_per_s, 1),
        "loss_dtype": str(loss.dtype).removeprefix("torch."),
        "loss_finite": bool(torch.isfinite(loss)),
        "peak_memory_bytes": peak_bytes(device),
        "flops_per_token": fpt,
        "flops_source": source,
        "mfu": round(fpt * tokens_per_s / peak, 4) if peak else None,
    }


@torch.inference_mode()
def decode_check(model, hp, plan, device) -> dict:
    model.eval()
    ms, state, peak = {}, {}, {}
    for ctx in plan["contexts"]:
        reset_peak(device)
        ids = torch.randint(3, hp["vocab_size"], (1, ctx), device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            cache = getattr(out, "cache", None) or out.past_key_values  # archbench's DecodeCache / transformers'
            nxt, times = out.logits[:, -1:].argmax(-1), []
            state[str(ctx)] = cache_nbytes(cache)
            for i in range(plan["tokens"] + 2):  # two warm-up steps
                sync(device)
                t0 = time.perf_counter()
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                sync(device)
                if i >= 2:
                    times.append(time.perf_counter() - t0)
                nxt = out.logits[:, -1:].argmax(-1)
        ms[str(ctx)] = round(statistics.median(times) * 1e3, 3)
        peak[str(ctx)] = peak_bytes(device)
    return {"ms_per_token": ms, "state_bytes": state, "peak_memory_bytes": peak}


def _module(name):
    try:
        return importlib.import_module(name)
    except Exception as err:  # not installed, or no GPU build
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def parity(models, device) -> dict:
    """Each installed kernel against its reference (max |difference| / max |reference|)."""
    from archbench.models import common
    from archbench.models.retnet import retention

    g = torch.Generator(device="cpu").manual_seed(0)
    out = {}
    B, H, T, dk, dv = 2, 4, 512 if device.type == "cuda" else 96, 32, 64
    q, k, v = (torch.randn(B, H, T, d, generator=g).to(device) for d in (dk, dk, dv))
    k = k * dk**-0.5
    decay = torch.log(1 - 2 ** (-5 - torch.arange(float(H), device=device)))
    tables = retention.decay_tables(
        decay, torch.arange(float(T), device=device)[None], None, "chunkwise", 64, False, True
    )
    ours, _ = retention.chunked(q, k, v, None, tables, need_state=False)
    fla = _module("fla.ops.retention")
    if isinstance(fla, str):
        out["fla_vs_ours"] = {"skipped": f"fla not importable ({fla})"}
    elif device.type == "cuda":
        theirs, _ = fla.chunk_retention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=1.0)
        out["fla_vs_ours"] = _diff(theirs.transpose(1, 2), ours, "fla chunk_retention kernel, fp32", 1e-2)
    else:
        from fla.ops.retention.naive import naive_retention

        ref = naive_retention(q * dk**0.5, k, v)  # fla's reference scales q by dk**-0.5; k carries it here
        out["fla_vs_ours"] = _diff(ours, ref, "fla naive reference (no fla kernel without CUDA)", 1e-4)
    fa = _module("flash_attn")
    if isinstance(fa, str) or device.type != "cuda":
        out["flash_attn_vs_sdpa"] = {"skipped": "needs CUDA" if device.type != "cuda" else f"flash_attn: {fa}"}
    else:
        qa, ka, va = (torch.randn(2, 1024, 8, 64, generator=g).to(device) for _ in range(3))
        ref = common.attention(qa * 64**-0.5, ka, va, causal=True)  # fp32: SDPA
        got = fa.flash_attn_func(qa.bfloat16(), ka.bfloat16(), va.bfloat16(), causal=True)
        out["flash_attn_vs_sdpa"] = _diff(got.float(), ref, "flash_attn_func bf16 vs SDPA fp32", 2e-2)
    kernels = [_module(m) for m in ("mamba_ssm", "causal_conv1d")]
    if device.type != "cuda" or any(isinstance(m, str) for m in kernels) or "mamba2" not in models:
        why = "needs CUDA" if device.type != "cuda" else "; ".join(m for m in kernels if isinstance(m, str))
        out["mamba2_kernels_vs_torch"] = {"skipped": why or "mamba2 not registered"}
    else:
        model = models["mamba2"].eval()
        ids = torch.randint(3, model.config.vocab_size, (1, 512), generator=g)
        with torch.no_grad():
            got = model(input_ids=ids.to(device)).logits.float().cpu()
            ref = copy.deepcopy(model).cpu()(input_ids=ids).logits.float()
        out["mamba2_kernels_vs_torch"] = _diff(got, ref, "mamba2 fp32: CUDA kernels vs PyTorch path on CPU", 1e-3)
    return out


def _diff(got, ref, what, tol) -> dict:
    rel = ((got.float() - ref.float()).abs().max() / ref.float().abs().max().clamp_min(1e-30)).item()
    return {"what": what, "max_rel_diff": float(f"{rel:.3g}"), "target": f"<= {tol}", "pass": rel <= tol}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--archs", nargs="+", default=None, help="default: every registered architecture")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (--device cpu)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible (use --device cpu --size toy for the CPU run)")
    torch.manual_seed(0)
    plan = PLAN[args.size]
    hps = settings_for(args.size, max(plan["contexts"]) + plan["tokens"] + 8)
    archs = [a for a in (args.archs or arch_names()) if a in hps]
    models = {a: build_model(a, **{k: v for k, v in hps[a].items() if k != "match_error"}).to(device) for a in archs}
    result = {
        "machine": {
            **_common.machine(args.threads if device.type == "cpu" else None),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else _common.cpu_name(),
            "peak_bf16_flops": peak_flops(device),
            "kernels": {
                m: getattr(mod, "__version__", "installed") if not isinstance(mod, str) else None
                for m, mod in ((m, _module(m)) for m in ("fla", "flash_attn", "mamba_ssm", "causal_conv1d"))
            },
        },
        "settings": {"size": args.size, **plan, "dtype": "bf16 autocast", "models": hps},
        "params": {
            a: {"total": count_parameters(m), "non_embedding": count_parameters(m, False)} for a, m in models.items()
        },
        "parity": parity(models, device),
        "train": {},
        "decode": {},
    }
    for arch, model in models.items():
        result["train"][arch] = train_check(arch, model, hps[arch], plan, device)
        result["decode"][arch] = decode_check(model, hps[arch], plan, device)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["ratios"], result["targets"] = targets(result, plan)
    print(json.dumps(result, indent=1))
    return result


def targets(result: dict, plan: dict) -> tuple[dict, dict]:
    lo, hi = str(min(plan["contexts"])), str(max(plan["contexts"]))
    dec, tr = result["decode"], result["train"]
    ratios, checks = {}, {}
    if "retnet" in dec and "transformer" in dec:
        ratios = {
            f"transformer_over_retnet_decode_ms_{hi}": dec["transformer"]["ms_per_token"][hi]
            / dec["retnet"]["ms_per_token"][hi],
            f"transformer_over_retnet_state_bytes_{hi}": dec["transformer"]["state_bytes"][hi]
            / dec["retnet"]["state_bytes"][hi],
            "retnet_over_transformer_train_tokens_per_s": tr["retnet"]["tokens_per_s"]
            / tr["transformer"]["tokens_per_s"],
        }
        if tr["retnet"]["peak_memory_bytes"]:
            ratios["retnet_over_transformer_train_peak_memory"] = (
                tr["retnet"]["peak_memory_bytes"] / tr["transformer"]["peak_memory_bytes"]
            )
        ratios = {k: round(v, 3) for k, v in ratios.items()}
    for name, entry in result["parity"].items():
        if "pass" in entry:
            checks[f"parity_{name}"] = {
                "value": entry["max_rel_diff"],
                "target": entry["target"],
                "pass": entry["pass"],
            }
    for arch, d in dec.items():
        recurrent = get_arch(arch).state == "recurrent"
        sizes = d["state_bytes"]
        grow = sizes[hi] / sizes[lo]
        checks[f"{arch}_state_{'constant' if recurrent else 'grows'}"] = {
            "value": sizes,
            "target": "equal at every context" if recurrent else "grows with the context",
            "pass": bool(grow == 1.0) if recurrent else bool(grow > 1.5),
        }
        checks[f"{arch}_loss_fp32_finite"] = {
            "value": tr[arch]["loss_dtype"],
            "target": "float32, finite",
            "pass": tr[arch]["loss_dtype"] == "float32" and tr[arch]["loss_finite"],
        }
    if "retnet" in dec:
        flat = dec["retnet"]["ms_per_token"][hi] / dec["retnet"]["ms_per_token"][lo]
        checks[f"retnet_decode_flat_{hi}_over_{lo}"] = {
            "value": round(flat, 3),
            "target": "<= 1.5",
            "pass": flat <= 1.5,
        }
    checks["within_budget"] = {
        "value": result["wall_s"],
        "target": f"<= {BUDGET_S} s",
        "pass": result["wall_s"] <= BUDGET_S,
    }
    return ratios, checks


if __name__ == "__main__":
    main()
