"""Which layers of a hybrid are softmax attention: the one home of the layer pattern.

``model.attention_every: k`` (a grid axis like any other) makes every k-th layer attention, counted
from the first layer so the last layer of each group of k is attention (k = 4, 8 layers: RRRA RRRA, the
1-in-4 of Qwen3-Next; k = 8: Jamba's 1 in 8); 0 = no attention (the pure recurrent model); 1 = every
layer. ``model.attention_layers`` lists the attention layers' indices explicitly instead (set one of
the two). Torch-free: the config checks, parameter and FLOPs formulas read it before any model exists.
"""

from __future__ import annotations


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
