"""Training FLOPs of a real model counted by torch (``FlopCounterMode``): the check on the closed forms
in :mod:`archbench.models.flops` (tests/test_models_flops.py, benchmarks/flops.py)."""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from . import build_model


def counted_train_flops_per_token(arch: str, hparams: dict, seq_len: int, batch: int = 1) -> float:
    """Forward + backward of one training step under FlopCounterMode, per token. SDPA is forced onto its
    math backend (on CPU the flash kernel is invisible to the counter). torch's formula for a convolution's
    backward ignores ``groups`` (a depthwise conv's backward is counted x channels), so that one op is
    replaced by twice the forward convolution (input and weight gradients), what it computes."""
    torch.manual_seed(0)
    model = build_model(arch, **hparams).train()
    x = torch.randint(5, hparams["vocab_size"], (batch, seq_len))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        logits = model(x).logits
        torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), x.flatten()).backward()
    ops = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    ops.pop("aten.convolution_backward", None)
    return (sum(ops.values()) + 2 * ops.get("aten.convolution", 0)) / (batch * seq_len)
