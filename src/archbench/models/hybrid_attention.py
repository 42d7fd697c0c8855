"""The attention layer of a hybrid (models/hybrid.py says which layers): Llama's softmax attention as a
token mixer that any archbench block can hold in place of its recurrent one.

transformers' own ``LlamaAttention`` (q / k / v / o without biases, grouped-query heads through
``num_key_value_heads``) and ``LlamaRotaryEmbedding`` / ``apply_rotary_pos_emb`` (RoPE, rotate-half
layout, theta 10000), configured by a stock ``LlamaConfig``; only ``forward`` is ours, to read and write
archbench's position-indexed KV cache (``DecodeCache``, models/transformer/modeling.py's ``kv_write``, so left
padding and rows of different lengths decode exactly) and to run archbench's attention kernel
(:func:`archbench.models.common.attention`: flash-attn on CUDA when installed, SDPA otherwise; the
FLOP counter sees SDPA's math path). Initialisation: torchscale's attention (xavier-uniform, gain 2^-1/2
for q / k / v, 1 for o, as the Transformer's ``block: retnet``), drawn where the block would draw its
recurrent mixer. Only relative imports: ``save_pretrained`` copies this file next to the weights.
"""

from __future__ import annotations

import functools

import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (
    LlamaAttention,
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
    eager_attention_forward,
    repeat_kv,
)

from .common import _scaled, attention, init_xavier
from .transformer.modeling import AttnContext, kv_write

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


def llama_config(embed_dim: int, heads: int, kv_heads: int | None = None, max_seq_len: int = 2048) -> LlamaConfig:
    """The stock config of the attention layers (no biases, RoPE theta 10000, no attention dropout: the
    block's own dropout applies to the mixer's output, as to retention's)."""
    return LlamaConfig(
        hidden_size=embed_dim,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads or heads,
        max_position_embeddings=max_seq_len,
        attention_bias=False,
        attention_dropout=0.0,
        num_hidden_layers=1,
        vocab_size=1,
        pad_token_id=None,
        bos_token_id=None,
        eos_token_id=None,
    )


class HybridAttention(LlamaAttention):
    """``LlamaAttention`` over archbench's cache. ``forward(x [B, T, D], rope, ctx, state=None,
    output_attentions=False)``: ``rope`` = (cos, sin) of :class:`HybridRotary` at the tokens' positions,
    ``ctx`` the transformer's :class:`AttnContext` (cache slots, whether keys are already cached), ``state``
    this layer's cache dict (keys / values [B, capacity, kv heads, head dim] written in place)."""

    def __init__(self, config: LlamaConfig, layer_idx: int = 0):
        super().__init__(config, layer_idx)
        for linear, rule in self.archbench_linear_rules():
            rule(linear)

    def archbench_linear_rules(self, scale: float = 1.0):
        """torchscale's MultiheadAttention reset: xavier-uniform, gain 2^-1/2 for q / k / v, 1 for o."""
        return [
            (getattr(self, n), functools.partial(init_xavier, gain=1.0 if n == "o_proj" else 2**-0.5))
            for n in PROJECTIONS
        ]

    def forward(self, x, rope, ctx: AttnContext, state: dict | None = None, output_attentions: bool = False):
        B, T, _ = x.shape
        d = self.head_dim
        q = self.q_proj(x).view(B, T, -1, d).transpose(1, 2)
        k = self.k_proj(x).view(B, T, -1, d).transpose(1, 2)
        v = self.v_proj(x).view(B, T, -1, d).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, *rope)  # [B, H, T, d]
        q, k, v = (t.transpose(1, 2).to(v.dtype) for t in (q, k, v))  # [B, T, H, d]: the cache's layout
        if state is not None:
            k_all, v_all = kv_write(state, k, v, ctx)
            if ctx.prior:  # otherwise the keys are this call's own: the same result with or without a cache
                k, v = k_all, v_all
        mask = None
        if ctx.prior and not (ctx.uniform and T == 1):  # a single new token of equal rows sees every slot
            slots = torch.arange(k.shape[1], device=x.device)
            mask = (slots[None, None, :] <= ctx.qpos[:, :, None]).unsqueeze(1)  # [B, 1, T, S]
        causal = not ctx.prior
        p = self.attention_dropout if self.training else 0.0
        if output_attentions:  # transformers' eager path returns the weights [B, H, T, S]
            S = k.shape[1]
            allowed = mask if mask is not None else torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
            bias = torch.zeros(allowed.shape, dtype=q.dtype, device=x.device).masked_fill(~allowed, float("-inf"))
            out, weights = eager_attention_forward(
                self, q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), bias, self.scaling, p
            )
        else:
            g = self.num_key_value_groups
            k, v = (repeat_kv(t.transpose(1, 2), g).transpose(1, 2) for t in (k, v))
            out, weights = attention(q * self.scaling, k, v, mask=mask, causal=causal, dropout_p=p), None
        out = self.o_proj(out.reshape(B, T, -1))
        return out if weights is None else (out, weights)


class HybridRotary(LlamaRotaryEmbedding):
    """transformers' Llama RoPE tables, ``(cos, sin) = rotary(x, positions [B|1, T])``. Its inverse
    frequencies stay float32 whatever the model's dtype (a bf16 cast would round them) and are rebuilt
    by ``init_weights`` on a model built on the meta device; they are not saved (non-persistent)."""

    def _fresh_inv_freq(self):
        inv_freq, _ = self.compute_default_rope_parameters(self.config)
        return inv_freq.to(self.inv_freq.device)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        if self.inv_freq.dtype != torch.float32 and self.inv_freq.device.type != "meta":
            self.inv_freq = self.original_inv_freq = self._fresh_inv_freq()
        return self

    def archbench_init(self):
        inv_freq = self._fresh_inv_freq()
        _scaled(self.inv_freq, lambda t: t.copy_(inv_freq))
        _scaled(self.original_inv_freq, lambda t: t.copy_(inv_freq))
