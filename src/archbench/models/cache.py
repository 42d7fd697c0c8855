"""How many bytes of decoding state a model's cache holds, whatever its class: what latency, throughput,
recall and the generic transformers entries measure and check."""

from __future__ import annotations

import torch


def cache_nbytes(cache) -> int:
    """Bytes of decoding state held by ``cache``: archbench's ``DecodeCache`` counts its filled slots;
    a transformers cache (llama's KV ``DynamicCache``, Mamba-2's convolution + SSM states) counts the
    tensors each layer holds. Zero-dimensional tensors are the cache's bookkeeping (transformers 5.25
    keeps a position counter per linear-attention layer), not decoding state, and are not counted."""
    if hasattr(cache, "nbytes"):
        return cache.nbytes()

    def tensors(value):  # KV layers hold tensors; linear-attention layers dicts of them per state index
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from tensors(v)

    # RWKV's state is a plain list of [batch, hidden, layers] tensors, not a Cache object
    values = (
        cache
        if isinstance(cache, (list, tuple))
        else [v for x in getattr(cache, "layers", []) for v in vars(x).values()]
    )
    return sum(t.numel() * t.element_size() for value in values for t in tensors(value) if t.dim() > 0)
