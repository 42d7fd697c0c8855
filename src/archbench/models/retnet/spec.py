"""The torch-free spec of ``retnet`` (its package's docstring says what it is): checks, parameters, FLOPs,
description and its schema fragment; :mod:`.modeling` imports from here, the package adds its registry entry."""

from __future__ import annotations

from ..constraints import ConstraintError, common, hybrid
from ..hybrid import attention_params, kv_bytes, settings_layers, settings_pattern
from ..spec import dense, embedding_parameters, padded, softmax_attention

BLOCK = "RetNet block (GLU FFN, RMSNorm, no biases)"

# Automatic plan (chunkwise_above / chunk_size left at null): one chunk length per device type, measured
# with benchmarks/train.py --sweep (training step, 1 thread; numbers in benchmarks/README.md). Sequences
# up to the chunk length run parallel (one chunk IS the parallel form), longer ones chunkwise with it.
AUTO_CHUNK = {"cpu": 64}
AUTO_CHUNK_DEFAULT = 64  # devices not measured here (e.g. CUDA without fla)


def auto_chunk(device_type: str) -> int:
    return AUTO_CHUNK.get(device_type, AUTO_CHUNK_DEFAULT)


def value_embed_dim(settings: dict) -> int:
    """RetNet's value width: ``value_embed_dim``, or 2 x embed_dim when unset (as in torchscale)."""
    return settings.get("value_embed_dim") or 2 * settings["embed_dim"]


def check(s: dict) -> None:
    """Cross-key rules: the common ones, a hybrid's layers, value heads, chunk lengths."""
    common(s)
    hybrid(s)
    vdim, heads = value_embed_dim(s), s["heads"]
    if vdim % heads:
        raise ConstraintError(["value_embed_dim", "heads"], f"value_embed_dim {vdim} is not divisible by heads {heads}")
    for key in ("chunk_size", "chunkwise_above"):  # None: the automatic plan (see modeling.py)
        if s.get(key) is not None and s[key] < 1:
            raise ConstraintError([key], f"{key} must be >= 1 or null (automatic), got {s[key]}")


def params(s: dict, include_embeddings: bool = True) -> int:
    """q, k: D x D; v, g: D x Dv; out: Dv x D; GLU: 3 D F; two RMSNorm weights per layer; final norm.
    A hybrid's attention layers (models/hybrid.py) hold Llama's q / k / v / o instead of the retention."""
    D, F, L = s["embed_dim"], s["ffn_dim"], s["layers"]
    A = len(settings_layers(s))
    retention = 2 * D * D + 3 * D * value_embed_dim(s)
    n = (L - A) * retention + A * attention_params(s) + L * (3 * D * F + 2 * D) + D
    return n + (embedding_parameters(s) if include_embeddings else 0)


def state_bytes(s: dict, context: int, batch: int = 1, element_size: int = 4) -> int:
    """Decoding state after ``context`` tokens (what ``DecodeCache.nbytes`` holds): per retention layer
    the float32 state [H, dk, dv] whatever the context, per attention layer keys and values for every
    token (``element_size`` bytes each: the model's dtype)."""
    dk, dv = s["embed_dim"] // s["heads"], value_embed_dim(s) // s["heads"]
    recurrent = (s["layers"] - len(settings_layers(s))) * batch * s["heads"] * dk * dv * 4
    return recurrent + kv_bytes(s, context, batch, element_size)


def plan(s: dict, device_type: str = "cpu") -> tuple[str, int]:
    """(mode, chunk length) the model trains in at ``seq_len`` (modeling.retention_plan's rule)."""
    T = s["seq_len"]
    chunk = s.get("chunk_size") or auto_chunk(device_type)
    above = s["chunkwise_above"] if s.get("chunkwise_above") is not None else chunk
    if T > above:
        return "chunkwise", max(1, min(chunk, T))
    return "parallel", T


def flops(s: dict, device_type: str = "cpu") -> float:
    """Training FLOPs per token in the mode it trains in (:mod:`archbench.models.flops` explains the terms)."""
    T, d, h = s["seq_len"], s["embed_dim"], s["heads"]
    dv = value_embed_dim(s)
    mode, C = plan(s, device_type)
    n, length = padded(T, C)
    per_token = length / T * C * (8 * d + 6 * dv)  # q k^T, (.) v and their backward, per chunk
    if n > 1:  # chunk states U, their read-out q S, and the decay product A @ U (no gradient for A)
        per_token += length / T * 3 * 4 * d * dv / h + 2 * 2 * (n + 1) * n * d * dv / h / T
    attention = len(settings_layers(s))  # a hybrid's attention layers: dense softmax attention instead
    mixers = per_token * (s["layers"] - attention) + softmax_attention(s, attention)
    return dense(s, params(s, include_embeddings=False)) + mixers


def describe(s: dict | None = None) -> dict:
    s = s or {}
    if s.get("layers") and settings_layers(s):  # a hybrid: name its pattern (R = retention, A = attention)
        n, L = len(settings_layers(s)), s["layers"]
        mixer = f"multi-scale retention, softmax attention (RoPE) in {n} of {L} layers ({settings_pattern(s)})"
        return {"mixer": mixer, "block": BLOCK}
    return {"mixer": "multi-scale retention", "block": BLOCK}


SCHEMA_FRAGMENT = {
    "value_embed_dim": {
        "type": ["integer", "null"],
        "minimum": 8,
        "default": None,
        "description": "RetNet value dimension (null = 2 x embed_dim, as in torchscale).",
    },
    "chunk_size": {
        "type": ["integer", "null"],
        "minimum": 1,
        "default": None,
        "description": "RetNet chunk length in the chunkwise mode (null = automatic, the length measured "
        "fastest on the device; 64 on CPU).",
    },
    "chunkwise_above": {
        "type": ["integer", "null"],
        "minimum": 1,
        "default": None,
        "description": "RetNet uses the chunkwise mode for sequences longer than this (null = automatic, "
        "above the chunk length; one chunk is the parallel form). An explicit value overrides.",
    },
}
