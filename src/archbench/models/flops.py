"""Training FLOPs per token (forward + backward) of each architecture, as our code computes them.

Each registry entry's ``flops`` is its spec's function (``models/<name>/__init__.py``),
``f(settings, device_type="cpu") -> float`` on resolved settings (pipeline names, defaults filled in,
``seq_len`` = the training length T), built from the shared terms in :mod:`.spec` (``dense``,
``softmax_attention``). This module documents the formulas and asks the registry for them.
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
* RetNet, in the mode it trains in (:func:`archbench.models.retnet.plan`): parallel up to
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

Torch-free (the Snakefile parse imports around it).
"""

from __future__ import annotations

import math


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
