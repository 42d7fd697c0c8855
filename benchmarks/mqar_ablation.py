"""Why does our Transformer fail MQAR where Llama solves it? One change at a time (issue 30, Step 1).

Mirrors the pipeline's training exactly (training/module.py: AdamW betas 0.9/0.98, weight decay 0.01 on
matrices only, linear warm-up then cosine to 0.1x, gradient clipping 1.0; the loss on the queries' answers
only, data/sources/mqar.py) without Snakemake, Lightning or files, so one setting costs one training.
Documents are the mqar source's own (``data.mqar.document``), one per window; accuracy is rule recall's
(``evaluation.recall.accuracy``, test stream) and the validation loss is on answers of the validation stream.

    python benchmarks/mqar_ablation.py base block_retnet lr=1e-3 ... [--steps 1000] [--out runs.jsonl]

Each variant name is in ``VARIANTS`` (a change to the built Transformer) or ``lr=<float>`` or ``llama``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time

import numpy as np
import torch

from archbench.data import mqar
from archbench.evaluation.recall import accuracy
from archbench.models import build_model
from archbench.models.common import lm_loss

CFG = {
    "pairs": [4, 8],
    "vocab_size": 256,
    "seq_len": 64,
    "documents": 20000,
    "eval_examples": 256,
    "seed": 0,
    "power_a": 0.01,  # schema defaults (the pipeline run used them)
    "random_fillers": True,
}
SETTINGS = {"embed_dim": 64, "ffn_dim": 128, "heads": 2, "layers": 2, "dropout": 0.0}


def _subln_scale(layers: int) -> float:
    return math.sqrt(math.log(layers * 2))  # torchscale Decoder's sub-LN init multiplier


def v_no_subln_ln(model):
    """Drop sub-LN's two extra LayerNorms (inside attention before out_proj, inside the FFN); init kept."""
    for layer in model.decoder.layers:
        layer.self_attn.inner_attn_ln = None
        layer.ffn.ffn_layernorm = None


def v_no_subln_init(model):
    """Undo sub-LN's init multiplier on fc1 / fc2 / out_proj / v_proj (weights and biases); LNs kept."""
    s = _subln_scale(len(model.decoder.layers))
    with torch.no_grad():
        for name, p in model.decoder.named_parameters():
            if any(k in name for k in ("fc1", "fc2", "out_proj", "v_proj")) and "output_projection" not in name:
                p.div_(s)


def v_rmsnorm(model):
    """LayerNorm -> RMSNorm for the pre-norms and the final norm (sub-LN's inner norms kept)."""
    from torchscale.component.rms_norm import RMSNorm

    D = model.config.embed_dim
    for layer in model.decoder.layers:
        layer.self_attn_layer_norm = RMSNorm(D, eps=1e-5)
        layer.final_layer_norm = RMSNorm(D, eps=1e-5)
    model.decoder.layer_norm = RMSNorm(D, eps=1e-5)


def v_glu(model):
    """GELU FFN with biases + sub-LN -> RetNet's GLU FFN (torchscale GLU, gelu, no bias), same init scale."""
    from torchscale.component.gate_linear_unit import GLU

    D, F = model.config.embed_dim, model.config.ffn_dim
    s = _subln_scale(len(model.decoder.layers))
    for layer in model.decoder.layers:
        layer.ffn = GLU(D, F, "gelu", 0.0, 0.0)
        with torch.no_grad():
            layer.ffn.fc1.weight.mul_(s)
            layer.ffn.fc2.weight.mul_(s)


def v_swiglu(model):
    v_glu(model)
    for layer in model.decoder.layers:
        layer.ffn.activation_fn = torch.nn.functional.silu


def v_nobias(model):
    """Every bias in the blocks zeroed and frozen (attention projections and FFN)."""
    for name, p in model.decoder.layers.named_parameters():
        if name.endswith("bias") and "norm" not in name and "_ln" not in name:
            with torch.no_grad():
                p.zero_()
            p.requires_grad_(False)


def v_embscale(model):
    model.decoder.embed_scale = math.sqrt(model.config.embed_dim)


def v_nopos(model):
    model.rope = None


def v_no_attn_subln(model):
    """Drop only the attention's inner LayerNorm (before out_proj)."""
    for layer in model.decoder.layers:
        layer.self_attn.inner_attn_ln = None


def v_no_ffn_subln(model):
    """Drop only the FFN's inner LayerNorm (after the activation)."""
    for layer in model.decoder.layers:
        layer.ffn.ffn_layernorm = None


def _subln_off():
    """What `model.subln: false` builds: torchscale's DecoderConfig(subln=False), i.e. neither
    sub-LN's LayerNorms nor its init multiplier (Decoder.__init__ reads args.subln for both)."""
    from archbench.models.transformer.modeling import TransformerConfig

    original = TransformerConfig.to_torchscale

    def to_torchscale(self):
        args = original(self)
        args.subln = False
        return args

    return original, to_torchscale


VARIANTS = {
    "base": ({}, None),
    "rotary": ({"position": "rotary"}, None),
    "learned": ({"position": "learned"}, None),
    "nopos": ({}, v_nopos),
    "block_retnet": ({"block": "retnet"}, None),
    "no_subln_ln": ({}, v_no_subln_ln),
    "no_attn_subln": ({}, v_no_attn_subln),
    "no_ffn_subln": ({}, v_no_ffn_subln),
    "no_subln_init": ({}, v_no_subln_init),
    "rmsnorm": ({}, v_rmsnorm),
    "glu": ({}, v_glu),
    "swiglu": ({}, v_swiglu),
    "nobias": ({}, v_nobias),
    "embscale": ({}, v_embscale),
    "subln_off": ({}, None),  # built with args.subln = False (see build)
}


def build(name: str):
    vocab = len(mqar.words(CFG["vocab_size"]))
    common = {**SETTINGS, "vocab_size": vocab, "max_seq_len": CFG["seq_len"]}
    if name.split("+")[0] == "llama":
        return build_model("llama", **common)
    extra, edits = {}, []
    for part in name.split("+"):
        if part.startswith("lr="):
            continue
        kw, fn = VARIANTS[part]
        extra.update(kw)
        edits.append(fn)
    if "subln_off" in name.split("+"):
        from archbench.models.transformer.modeling import TransformerConfig

        original, patched = _subln_off()
        TransformerConfig.to_torchscale = patched
        try:
            model = build_model("transformer", **common, **extra)
        finally:
            TransformerConfig.to_torchscale = original
    else:
        model = build_model("transformer", **common, **extra)
    for fn in edits:
        if fn is not None:
            fn(model)
    return model


def lr_of(name: str, default: float) -> float:
    for part in name.split("+"):
        if part.startswith("lr="):
            return float(part[3:])
    return default


@functools.cache
def train_documents() -> np.ndarray:
    """The first 90% of the corpus (the train split's share), each document + its </s>: [n, seq_len]."""
    n_train = int(CFG["documents"] * 0.9)
    return np.stack([np.append(mqar.document(CFG, CFG["seed"], i)[0], 2) for i in range(n_train)])


def batches(steps: int, batch_size: int, seed: int):
    docs = train_documents()
    n_train = len(docs)
    rng = np.random.default_rng(seed)
    order = np.array([], dtype=np.int64)
    for _ in range(steps):
        if len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(n_train)])
        idx, order = order[:batch_size], order[batch_size:]
        yield torch.from_numpy(docs[idx])


def train(name: str, steps: int, lr: float, batch_size: int = 64, warmup: int = 50, seed: int = 0) -> dict:
    train_documents()
    torch.manual_seed(seed)
    model = build(name)
    keys = mqar.key_ids(CFG["vocab_size"])
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98)
    )

    def lr_lambda(step):
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    t0 = time.perf_counter()
    model.train()
    for x in batches(steps, batch_size, seed):
        y = torch.cat([x[:, 1:], torch.full((len(x), 1), -100)], 1)
        y = y.masked_fill(~mqar.answer_targets(x, keys), -100)
        loss = lm_loss(model(input_ids=x).logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    train_s = time.perf_counter() - t0
    model.eval()
    out = {
        "variant": name,
        "lr": lr,
        "steps": steps,
        "train_s": round(train_s, 1),
        "final_train_loss": float(loss.detach()),
    }
    with torch.inference_mode():
        for pairs in CFG["pairs"]:
            correct, total, _ = accuracy(model, CFG, pairs, 64, "cpu", mqar.EVAL_STREAM)
            out[f"acc_{pairs}"] = correct / total
        losses = []
        for pairs in CFG["pairs"]:
            ids, _ = mqar.eval_examples(CFG, CFG["seed"], pairs, CFG["eval_examples"], mqar.VALIDATION_STREAM)
            x = torch.from_numpy(np.concatenate([ids, np.full((len(ids), 1), 2)], 1))
            y = torch.cat([x[:, 1:], torch.full((len(x), 1), -100)], 1).masked_fill(~mqar.answer_targets(x, keys), -100)
            losses.append(float(lm_loss(model(input_ids=x).logits, y)))
        out["val_loss"] = float(np.mean(losses))
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    out["params"] = sum(p.numel() for p in model.parameters())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.variants:
        res = train(name, args.steps, lr_of(name, args.lr), seed=args.seed)
        print(json.dumps(res), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
