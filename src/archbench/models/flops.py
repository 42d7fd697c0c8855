"""Training FLOPs per token (forward + backward) of each architecture, as our code computes them.

Each registry entry's ``flops`` names one function here, ``f(settings, device_type="cpu") -> float``
on resolved settings (pipeline names, defaults filled in, ``seq_len`` = the training length T).
Counted are the matrix products (2 FLOPs per multiply-add), the quantity
``torch.utils.flop_counter.FlopCounterMode`` measures and a test checks each formula against (within
10%, several sizes and lengths). Backward costs two products per forward product whose operands both
need gradients, so such terms are counted 3x.

Common to all: ``6 N + 6 d V`` with N the non-embedding parameters (each weight one multiply-add per
token, norms and biases included: a < 1% overcount) and d V the output projection (computed for every
token, tied or not; the embedding lookup is not a product). Per layer and token on top:

* softmax attention (Transformer, Llama): ``3 * 4 T d``. Scores and the weighted sum are counted
  dense over all T keys, as computed (SDPA's math path; causal kernels that skip the masked half do
  about half of this term).
* LongNet, per branch (segment w, ratio r; w' = min(w, T rounded up to r), m = w' / r keys per
  segment and head, ceil(T / w') segments): ``3 * 4 m^2 d * ceil(T / w') / T`` ~ ``12 w d / r^2`` —
  each head keeps 1/r of the queries and of the keys of a segment (LongNet paper, arXiv 2307.02486, 2.4).
* RetNet, in the mode it trains in (:func:`archbench.models.retnet.retention_plan`): parallel up to
  the chunk length, chunkwise with chunks of C above (the automatic plan: C = the device's measured
  chunk, 64 on CPU). Inside chunks ``(8 d + 6 d_v) C`` (our intra-chunk backward recomputes q k^T),
  across chunks ``3 * 4 d d_v / h`` (chunk states and their read-out) plus the [N+1, N] decay product
  of the states; padded chunk rows are computed too. (Long rows recompute the gate and norm in
  backward, not the out projection: checkpointing stops once the saved inputs are back.) On CUDA
  with flash-linear-attention the kernel's own chunking differs slightly. A hybrid's attention layers
  (models/hybrid.py) cost the softmax-attention term above instead, in every mode.
* Mamba-2's SSD scan (arXiv 2405.21060; transformers' chunked form, chunk Q = ssm_chunk_size, inner
  width I = h p, state N per head channel): ``3 * [2 Q (N h + I) + 4 N I]`` per token for the
  intra-chunk scores, the weighted inputs, the chunk states and their read-out, plus the
  [c+1, c+1] inter-chunk state product; T is padded to whole chunks. No attention term, except in a
  hybrid's attention layers (``model.attention_every``): the softmax term above for each of them, the
  scan term for each Mamba-2 layer.

Module-level torch-free (the registry and the Snakefile parse import around it).
"""

from __future__ import annotations

import math

from . import facts
from .constraints import value_embed_dim
from .hybrid import settings_layers
from .llama import params as llama_params
from .mamba2 import attention_indices as mamba2_attention
from .mamba2 import geometry as mamba2_geometry
from .mamba2 import params as mamba2_params


def _padded(t: int, chunk: int) -> tuple[int, int]:
    """(chunks, padded length) of t tokens cut into chunks of ``chunk``."""
    n = -(-t // chunk)
    return n, n * chunk


def dense(s: dict, params_non_embedding: float) -> float:
    """``6 N + 6 d V``: the weights and the output projection (see the module docstring)."""
    return 6 * params_non_embedding + 6 * s["embed_dim"] * s["vocab_size"]


def softmax_attention(s: dict, layers: int | None = None) -> float:
    """Dense scores and weighted sum over T keys, forward + backward, per token, over ``layers`` layers
    (default: all)."""
    return 3 * 4 * s["seq_len"] * s["embed_dim"] * (s["layers"] if layers is None else layers)


def transformer(s: dict, device_type: str = "cpu") -> float:
    return dense(s, facts.transformer_params(s, include_embeddings=False)) + softmax_attention(s)


def llama(s: dict, device_type: str = "cpu") -> float:
    return dense(s, llama_params(s, include_embeddings=False)) + softmax_attention(s)


def longnet(s: dict, device_type: str = "cpu") -> float:
    T, d = s["seq_len"], s["embed_dim"]
    per_token = 0.0
    for w, r in zip(s["segment_lengths"], s["dilated_ratios"]):
        w = min(w, -(-T // r) * r)  # a segment longer than the input is one shorter segment
        segments, m = -(-T // w), w // r
        per_token += 3 * 4 * m * m * d * segments / T
    return dense(s, facts.transformer_params(s, include_embeddings=False)) + per_token * s["layers"]


def retnet_plan(s: dict, device_type: str = "cpu") -> tuple[str, int]:
    """(mode, chunk length) the model trains in at ``seq_len`` (retnet.retention_plan's rule)."""
    T = s["seq_len"]
    chunk = s.get("chunk_size")
    if not chunk:
        # the automatic chunk length is measured per device and kept beside the retention code
        from .retnet import auto_chunk

        chunk = auto_chunk(device_type)
    above = s["chunkwise_above"] if s.get("chunkwise_above") is not None else chunk
    if T > above:
        return "chunkwise", max(1, min(chunk, T))
    return "parallel", T


def retnet(s: dict, device_type: str = "cpu") -> float:
    T, d, h = s["seq_len"], s["embed_dim"], s["heads"]
    dv = value_embed_dim(s)
    mode, C = retnet_plan(s, device_type)
    n, padded = _padded(T, C)
    per_token = padded / T * C * (8 * d + 6 * dv)  # q k^T, (.) v and their backward, per chunk
    if n > 1:  # chunk states U, their read-out q S, and the decay product A @ U (no gradient for A)
        per_token += padded / T * 3 * 4 * d * dv / h + 2 * 2 * (n + 1) * n * d * dv / h / T
    attention = len(settings_layers(s))  # a hybrid's attention layers: dense softmax attention instead
    mixers = per_token * (s["layers"] - attention) + softmax_attention(s, attention)
    return dense(s, facts.retnet_params(s, include_embeddings=False)) + mixers


def mamba2(s: dict, device_type: str = "cpu") -> float:
    T, N, Q = s["seq_len"], s["ssm_state_size"], s["ssm_chunk_size"]
    g = mamba2_geometry(s)
    inner, h = g["inner"], g["heads"]
    c, padded = _padded(T, Q)
    scan = padded * (2 * Q * (N * h + inner) + 4 * N * inner) + 2 * (c + 1) ** 2 * inner * N
    attn = len(mamba2_attention(s))
    per_layer_attention = softmax_attention(s) / s["layers"]
    return (
        dense(s, mamba2_params(s, include_embeddings=False))
        + 3 * scan / T * (s["layers"] - attn)
        + per_layer_attention * attn
    )


def train_flops_per_token(arch: str, hparams: dict, seq_len: int | None = None, device_type: str = "cpu"):
    """Training FLOPs per token of ``arch`` built from pipeline names ``hparams`` at the training length
    ``seq_len`` (default: ``max_seq_len``): the registry entry's ``flops``; None without one."""
    from .registry import get_arch
    from .sizing import resolved_settings

    fn = get_arch(arch).flops_fn()
    if fn is None:
        return None
    s = resolved_settings(arch, **hparams)
    s["seq_len"] = int(seq_len or s["max_seq_len"])
    return float(fn(s, device_type))


def budget_steps(settings: dict, params_non_embedding: int) -> int | None:
    """Optimizer steps for ``training.tokens_per_param`` x N tokens (None when no budget is set)."""
    per_param = settings.get("tokens_per_param")
    if not per_param:
        return None
    per_step = settings["batch_size"] * settings["accumulate_grad_batches"] * settings["seq_len"]
    return max(1, math.ceil(per_param * params_non_embedding / per_step))
