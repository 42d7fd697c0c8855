"""CPU stand-ins for CUDA-only kernel packages, with their exact signatures, for tests.

``flash_attn_func`` follows flash-attn 2's ``flash_attn/flash_attn_interface.py``
(Dao-AILab/flash-attention): the same parameters and defaults, layout [B, T, H, D], keys / values
with fewer heads (MQA / GQA), ``softmax_scale`` default D**-0.5, a causal mask aligned to the
bottom-right corner, a row with no allowed key giving out = 0 and ``softmax_lse`` = +inf (the
non-split kernel's marker), and with ``return_attn_probs`` the tuple ``(out, softmax_lse [B, H, T]
float32, S_dmask)`` (S_dmask is empty unless dropout is on: the kernel only returns it then). It is
explicit math in float32, cast back to the input dtype as the kernel's fp32 accumulators are. Unlike
the kernel it also takes float32 inputs, so paths can be compared at fp32 tolerance.
"""

from __future__ import annotations

import sys
import types

import torch


def flash_attn_func(
    q,
    k,
    v,
    dropout_p=0.0,
    softmax_scale=None,
    causal=False,
    window_size=(-1, -1),
    softcap=0.0,
    alibi_slopes=None,
    deterministic=False,
    return_attn_probs=False,
):
    if tuple(window_size) != (-1, -1) or softcap or alibi_slopes is not None:
        raise NotImplementedError("stand-in: sliding windows, softcap and ALiBi are not modelled")
    if q.dim() != 4 or k.dim() != 4 or q.shape[-1] != k.shape[-1] or q.shape[2] % k.shape[2]:
        raise ValueError(f"expected [B, T, H, D] q and [B, S, H_k, D] k/v, got {tuple(q.shape)}, {tuple(k.shape)}")
    B, T, H, D = q.shape
    S, groups = k.shape[1], H // k.shape[2]
    k, v = (x.repeat_interleave(groups, dim=2) for x in (k, v))
    scale = D**-0.5 if softmax_scale is None else softmax_scale
    scores = torch.einsum("bthd,bshd->bhts", q.float(), k.float()) * scale
    if causal:
        keep = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)  # bottom-right aligned
        scores = scores.masked_fill(~keep, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)  # [B, H, T]
    empty = lse == float("-inf")
    probs = torch.exp(scores - lse.masked_fill(empty, 0.0).unsqueeze(-1)).masked_fill(empty.unsqueeze(-1), 0.0)
    if dropout_p > 0:
        probs = torch.nn.functional.dropout(probs, dropout_p)
    out = torch.einsum("bhts,bshd->bthd", probs, v.float()).to(q.dtype)
    if not return_attn_probs:
        return out
    s_dmask = probs.to(q.dtype) if dropout_p > 0 else torch.empty(0, dtype=q.dtype, device=q.device)
    return out, lse.masked_fill(empty, float("inf")), s_dmask


def fake_package(name: str, **attrs) -> types.ModuleType:
    """A module object for ``sys.modules[name]`` (with a spec, so importlib.util.find_spec finds it)."""
    import importlib.machinery

    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)
    mod.__dict__.update(attrs)
    return mod


def install_flash_attn(monkeypatch):
    """Make ``import flash_attn`` return the stand-in for the rest of the test."""
    monkeypatch.setitem(sys.modules, "flash_attn", fake_package("flash_attn", flash_attn_func=flash_attn_func))
