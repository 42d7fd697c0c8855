"""Closed-form facts of the torchscale-based architectures (RetNet, Transformer, LongNet): parameter
counts and what their token mixer and block are. Torch-free (the report reads the descriptions); the
registry entries name these functions, and ``llama`` / ``mamba2`` keep theirs in their own modules.

Every function takes *resolved* settings: pipeline names with the config class's defaults filled in
(:func:`archbench.models.sizing.resolved_settings`).
"""

from __future__ import annotations

from .constraints import value_embed_dim
from .hybrid import attention_params, kv_bytes, settings_layers, settings_pattern

RETNET_BLOCK = "RetNet block (GLU FFN, RMSNorm, no biases)"
TORCHSCALE_BLOCK = "torchscale Transformer block (GELU FFN, LayerNorm, biases, Sub-LN)"
TORCHSCALE_BLOCK_NO_SUBLN = "torchscale Transformer block without Sub-LN (GELU FFN, LayerNorm, biases)"


def embedding_parameters(s: dict, learned_positions: bool = False) -> int:
    """Token embedding, the output projection when untied, and a learned position table."""
    n = s["vocab_size"] * s["embed_dim"] * (1 if s.get("tie_word_embeddings") else 2)
    return n + (s["max_seq_len"] * s["embed_dim"] if learned_positions else 0)


def retnet_params(s: dict, include_embeddings: bool = True) -> int:
    """q, k: D x D; v, g: D x Dv; out: Dv x D; GLU: 3 D F; two RMSNorm weights per layer; final norm.
    A hybrid's attention layers (models/hybrid.py) hold Llama's q / k / v / o instead of the retention."""
    D, F, L = s["embed_dim"], s["ffn_dim"], s["layers"]
    A = len(settings_layers(s))
    retention = 2 * D * D + 3 * D * value_embed_dim(s)
    n = (L - A) * retention + A * attention_params(s) + L * (3 * D * F + 2 * D) + D
    return n + (embedding_parameters(s) if include_embeddings else 0)


def retnet_state_bytes(s: dict, context: int, batch: int = 1, element_size: int = 4) -> int:
    """Decoding state after ``context`` tokens (what ``DecodeCache.nbytes`` holds): per retention layer
    the float32 state [H, dk, dv] whatever the context, per attention layer keys and values for every
    token (``element_size`` bytes each: the model's dtype)."""
    dk, dv = s["embed_dim"] // s["heads"], value_embed_dim(s) // s["heads"]
    recurrent = (s["layers"] - len(settings_layers(s))) * batch * s["heads"] * dk * dv * 4
    return recurrent + kv_bytes(s, context, batch, element_size)


def transformer_params(s: dict, include_embeddings: bool = True) -> int:
    """torchscale's block: q, k, v, out with biases, sub-LN in attention and FFN, two LayerNorms, a
    biased GELU FFN. ``block: retnet``: bias-free projections, a GLU FFN, two RMSNorms, no sub-LN."""
    D, F, L = s["embed_dim"], s["ffn_dim"], s["layers"]
    if s.get("block") == "retnet":
        n = L * (4 * D * D + 3 * D * F + 2 * D) + D
    elif s.get("subln") is False:  # no Sub-LN LayerNorms: 2 F + 2 D fewer per layer
        n = L * (4 * D * D + 2 * D * F + F + 9 * D) + 2 * D
    else:
        n = L * (4 * D * D + 2 * D * F + 3 * F + 11 * D) + 2 * D
    learned = s.get("position") == "learned"
    return n + (embedding_parameters(s, learned) if include_embeddings else 0)


def _attention_block(s: dict) -> str:
    if s.get("block") == "retnet":
        return RETNET_BLOCK
    return TORCHSCALE_BLOCK_NO_SUBLN if s.get("subln") is False else TORCHSCALE_BLOCK


def retnet_describe(s: dict | None = None) -> dict:
    s = s or {}
    if s.get("layers") and settings_layers(s):  # a hybrid: name its pattern (R = retention, A = attention)
        n, L = len(settings_layers(s)), s["layers"]
        mixer = f"multi-scale retention, softmax attention (RoPE) in {n} of {L} layers ({settings_pattern(s)})"
        return {"mixer": mixer, "block": RETNET_BLOCK}
    return {"mixer": "multi-scale retention", "block": RETNET_BLOCK}


def transformer_describe(s: dict | None = None) -> dict:
    return {"mixer": "softmax attention", "block": _attention_block(s or {})}


def longnet_describe(s: dict | None = None) -> dict:
    return {"mixer": "dilated attention", "block": _attention_block(s or {})}
