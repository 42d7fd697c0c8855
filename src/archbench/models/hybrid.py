"""Which layers of a hybrid are softmax attention: the one home of the layer pattern.

``model.attention_every: k`` (a grid axis like any other) makes every k-th layer attention, counted
from the first layer so the last layer of each group of k is attention (k = 4, 8 layers: RRRA RRRA, the
1-in-4 of Qwen3-Next; k = 8: Jamba's 1 in 8); 0 = no attention (the pure recurrent model); 1 = every
layer. ``model.attention_layers`` lists the attention layers' indices explicitly instead (set one of
the two). Torch-free: the config checks, parameter and FLOPs formulas read it before any model exists.
"""

from __future__ import annotations

HYBRID_KEYS = ("attention_every", "attention_layers")  # the settings (model config fields) of a hybrid


def attention_layers(layers: int, every: int = 0, explicit: list[int] | None = None) -> list[int]:
    """Indices (0-based, sorted) of the attention layers of a ``layers``-layer hybrid."""
    if explicit:
        if every:
            raise ValueError("model.attention_layers and model.attention_every are both set: set one")
        bad = [i for i in explicit if not 0 <= i < layers]
        if bad:
            raise ValueError(f"model.attention_layers {bad} outside 0..{layers - 1} ({layers} layers)")
        if len(set(explicit)) != len(explicit):
            raise ValueError(f"model.attention_layers {explicit} repeats a layer")
        return sorted(explicit)
    if every < 0:
        raise ValueError(f"model.attention_every must be >= 0, got {every}")
    return [i for i in range(layers) if every and (i + 1) % every == 0]


def pattern(layers: int, every: int = 0, explicit: list[int] | None = None, mixer: str = "R") -> str:
    """The layer pattern as letters: ``mixer`` for the recurrent layers, A for attention (RRRARRRA)."""
    attn = set(attention_layers(layers, every, explicit))
    return "".join("A" if i in attn else mixer for i in range(layers))


def settings_layers(s: dict) -> list[int]:
    """:func:`attention_layers` of resolved settings (pipeline / config field names; a missing or empty
    ``attention_every`` / ``attention_layers`` means none)."""
    return attention_layers(s["layers"], s.get("attention_every") or 0, list(s.get("attention_layers") or []) or None)


def settings_pattern(s: dict, mixer: str = "R") -> str:
    """:func:`pattern` of resolved settings."""
    return pattern(s["layers"], s.get("attention_every") or 0, list(s.get("attention_layers") or []) or None, mixer)


def is_hybrid(s: dict) -> bool:
    """Settings that ask for attention layers (the keys set, whatever the architecture)."""
    return bool(s.get("attention_every") or s.get("attention_layers"))


def pure(s: dict) -> dict:
    """``s`` without its attention layers: the pure recurrent model (the reference a hybrid's parameters
    are matched to, models/matching.py)."""
    return {k: v for k, v in s.items() if k not in HYBRID_KEYS}


def kv_heads(s: dict) -> int:
    """Key / value heads of the attention layers: as archbench's Llama's (``num_key_value_heads = heads``).
    The mixer (models/hybrid_attention.py) takes fewer (grouped-query attention); no setting asks for it yet."""
    return int(s["heads"])


def attention_params(s: dict) -> int:
    """Parameters of one attention layer's mixer: q and o D x D, k and v D x (kv heads x head dim), no
    biases (Llama's ``LlamaAttention``)."""
    D, h = s["embed_dim"], s["heads"]
    return 2 * D * D + 2 * D * kv_heads(s) * (D // h)


def kv_bytes(s: dict, context: int, batch: int = 1, element_size: int = 4) -> int:
    """KV-cache bytes of the attention layers after ``context`` tokens: keys and values, kv heads x head
    dim each, per token and attention layer."""
    per_token = 2 * kv_heads(s) * (s["embed_dim"] // s["heads"]) * element_size
    return len(settings_layers(s)) * batch * context * per_token
