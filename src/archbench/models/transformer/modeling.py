"""Transformer baseline on torchscale 0.3.0's ``Decoder``, as a Hugging Face model.

torchscale's ``Decoder`` has no position information by default; here it gets xPos (default, the
RetNet paper's baseline), rotary, or a learned absolute table. torchscale's attention re-applies
xPos to the whole cached key tensor at every decode step (O(n) extra work per token) and grows its
cache with ``torch.cat``; ours rotates each key once, by its absolute position, and writes it into
a preallocated cache indexed by position. LongNet (models/longnet/modeling.py) reuses all of this and only swaps
``Attention.attend``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torchscale.architecture import decoder as ts_decoder
from torchscale.architecture.config import DecoderConfig
from torchscale.component.embedding import TextEmbedding
from torchscale.component.gate_linear_unit import GLU
from torchscale.component.multihead_attention import MultiheadAttention
from torchscale.component.rms_norm import RMSNorm
from transformers import GenerationMixin
from transformers.modeling_layers import GradientCheckpointingLayer

from ..common import (
    HPARAMS,
    ArchbenchConfig,
    ArchbenchForCausalLM,
    ArchbenchModel,
    attention,
    init_linear,
    init_xavier,
    output_projection,
)
from ..constraints import ContextTooLong
from .spec import check as check_transformer

BLOCKS = ("transformer", "retnet")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")


class TransformerConfig(ArchbenchConfig):
    """Transformer hyperparameters; ``position`` in {"xpos", "rotary", "learned"}.

    ``block`` picks the block recipe around the attention: "transformer" (torchscale's: GELU FFN
    with biases and sub-LN, LayerNorms, biased projections) or "retnet" (RetNet's: gated GLU FFN,
    RMSNorms, no biases, no sub-LN), so that RetNet vs this Transformer differs only in the mixer.

    ``subln``: torchscale's Sub-LN (Magneto, arXiv 2210.06423; DecoderConfig's default): a LayerNorm on
    the attention output before ``out_proj`` and one inside the FFN, with fc1 / fc2 / v_proj / out_proj
    initialised x sqrt(log 2L). True (default) is torchscale's faithful decoder. The attention's Sub-LN
    output (unit scale) swamps the token embeddings (std d**-0.5, no sqrt(d) scale in torchscale's
    default): on MQAR (width 64, 2 layers, 4 / 8 pairs, lr 3e-3, 1000 steps) it recalls 28% / 14% of the
    answers, with ``subln: false`` 100% / 100% (docs/reproduce.md)."""

    model_type = "archbench_transformer"
    hparam_names: ClassVar[tuple] = HPARAMS + ("position", "block", "subln")
    check_settings: ClassVar = staticmethod(check_transformer)

    position: str = "xpos"
    block: str = "transformer"
    subln: bool = True
    xpos_scale_base: int = 512
    attention_dropout: float = 0.0
    layernorm_eps: float = 1e-5

    def to_torchscale(self) -> DecoderConfig:
        if self.block not in BLOCKS:  # a config file is checked by the schema's enum first
            raise ValueError(f"block must be one of {BLOCKS}, got {self.block!r}")
        args = DecoderConfig(
            vocab_size=self.vocab_size,
            decoder_embed_dim=self.embed_dim,
            decoder_attention_heads=self.heads,
            decoder_ffn_embed_dim=self.ffn_dim,
            decoder_layers=self.layers,
            dropout=self.dropout,
            activation_fn=self.activation_fn,
            attention_dropout=self.attention_dropout,
            layernorm_eps=self.layernorm_eps,
            share_decoder_input_output_embed=self.tie_word_embeddings,
            max_target_positions=self.max_seq_len,
            xpos_rel_pos=False,
            subln=self.subln,  # False: no Sub-LN LayerNorms and no Sub-LN init multiplier
        )  # we apply xPos ourselves, once per key
        args.block = self.block
        return args


def _rotate_every_two(x):
    return torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)


class XPos(nn.Module):
    """torchscale's xPos (or plain rotary) as a function of absolute positions.

    q.k after rotation depends only on the distance, so keys can be rotated once and cached.
    The xPos scale ``zeta**((p - center) / scale_base)`` is centred at ``max_seq_len // 2`` (a fixed
    centre: torchscale re-centres on the current length, which forces re-rotating all keys) so
    the scales stay in the range torchscale reaches at full length. No buffers: nothing to cast.
    """

    def __init__(self, head_dim: int, scale_base: int, center: int, use_scale: bool = True):
        super().__init__()
        self.head_dim, self.scale_base, self.center, self.use_scale = head_dim, scale_base, center, use_scale

    def forward(self, pos: torch.Tensor):
        """pos: [B|1, T] int -> (cos, sin, scale) each [B|1, T, 1, d] float32."""
        d, dev = self.head_dim, pos.device
        half = torch.arange(d // 2, device=dev, dtype=torch.float32)
        inv_freq = 1.0 / (10000 ** (half / (d // 2)))
        ang = pos.float().unsqueeze(-1) * inv_freq  # [B, T, d/2]
        sin, cos = (t.repeat_interleave(2, -1).unsqueeze(2) for t in (torch.sin(ang), torch.cos(ang)))
        if not self.use_scale:
            return cos, sin, None
        zeta = (torch.arange(0, d, 2, device=dev, dtype=torch.float32) + 0.4 * d) / (1.4 * d)
        scale = zeta ** ((pos.float() - self.center) / self.scale_base).unsqueeze(-1)
        return cos, sin, scale.repeat_interleave(2, -1).unsqueeze(2)

    @staticmethod
    def rotate(x, tables, key: bool):
        """x: [B, T, H, d]; keys are downscaled, queries upscaled (as torchscale)."""
        cos, sin, scale = tables
        if scale is not None:
            scale = 1.0 / scale if key else scale
            cos, sin = cos * scale, sin * scale
        return (x * cos + _rotate_every_two(x) * sin).to(x.dtype)


@dataclass
class AttnContext:
    """What every layer's attention needs for one forward call.

    qpos: [B|1, T] absolute position of each query (= its cache slot). prior: the cache already
    held tokens (decoding). uniform: all rows share one length (no key mask needed)."""

    qpos: torch.Tensor
    rope: tuple | None = None
    prior: bool = False
    uniform: bool = True
    start: int = 0  # first slot written when uniform
    total: int = 0  # number of key slots in use after this call


def kv_write(state: dict, k, v, ctx: AttnContext):
    """Write rotated keys / values [B, T, H, d] at their positions in a preallocated cache
    [B, capacity, H, d] (capacity doubles when full: amortised O(1) per token).
    Returns the keys / values of slots [0, ctx.total)."""
    B, T = k.shape[:2]
    if "k" not in state or state["k"].shape[1] < ctx.total:
        cap = max(ctx.total, 2 * state["k"].shape[1] if "k" in state else 0)
        cap = -(-cap // 64) * 64
        for name, t in (("k", k), ("v", v)):
            buf = t.new_zeros(B, cap, *t.shape[2:])
            if name in state:
                buf[:, : state[name].shape[1]] = state[name]
            state[name] = buf
    if ctx.uniform:
        state["k"][:, ctx.start : ctx.start + T] = k
        state["v"][:, ctx.start : ctx.start + T] = v
    else:  # rows at different positions: scatter per row
        rows = torch.arange(B, device=k.device)[:, None]
        state["k"][rows, ctx.qpos] = k
        state["v"][rows, ctx.qpos] = v
    return state["k"][:, : ctx.total], state["v"][:, : ctx.total]


class Attention(MultiheadAttention):
    """torchscale's projections and sub-LN with our positions, cache and kernels."""

    def archbench_linear_rules(self, scale: float = 1.0):
        """As built: torchscale's MultiheadAttention keeps nn.Linear's initialisation (it never calls its
        ``reset_parameters``), the "retnet" block's bias-free projections are xavier (TransformerLayer); then
        the Decoder's sub-LN scaling of v_proj and out_proj."""
        if getattr(self.args, "block", "transformer") == "retnet":
            rule = lambda name, s: functools.partial(init_xavier, gain=1.0 if name == "out_proj" else 2**-0.5, scale=s)
        else:
            rule = lambda name, s: functools.partial(init_linear, scale=s)
        return [(getattr(self, n), rule(n, scale if n in ("v_proj", "out_proj") else 1.0)) for n in PROJECTIONS]

    def forward(self, x, ctx: AttnContext, state: dict | None = None, output_attentions: bool = False):
        """x: [B, T, D] -> [B, T, D]; ``state`` is this layer's cache dict (updated). With
        ``output_attentions`` also the attention weights [B, H, T, S] (without dropout)."""
        B, T, D = x.shape
        H, d = self.num_heads, self.head_dim
        q = (self.q_proj(x) * self.scaling).view(B, T, H, d)
        k = self.k_proj(x).view(B, T, H, d)
        v = self.v_proj(x).view(B, T, H, d)
        if ctx.rope is not None:
            q = XPos.rotate(q, ctx.rope, key=False).to(v.dtype)
            k = XPos.rotate(k, ctx.rope, key=True).to(v.dtype)
        if state is not None:
            k_all, v_all = kv_write(state, k, v, ctx)
            if ctx.prior:  # otherwise the keys are this call's own: the same result with or without a cache
                k, v = k_all, v_all
        p = self.dropout_module.p if self.training else 0.0
        weights = None
        if output_attentions:  # attend() is linear in v: one-hot values give the weights of its pattern
            S = k.shape[1]
            eye = torch.eye(S, device=q.device)[None, :, None, :].expand(B, S, H, S)
            # float32: the math kernels (flash-attn needs v's width = q's, and fp16 / bf16)
            weights = self.attend(q.float(), k.float(), eye, ctx, 0.0).permute(0, 2, 1, 3).to(v.dtype)  # [B, H, T, S]
            # the output through them (on the autograd graph, as an eager attention)
            out = torch.einsum("bhts,bshd->bthd", F.dropout(weights, p, self.training), v).reshape(B, T, D)
        else:
            out = self.attend(q, k, v, ctx, p).reshape(B, T, D)
        if self.inner_attn_ln is not None:
            out = self.inner_attn_ln(out)
        out = self.out_proj(out)
        return out if weights is None else (out, weights)

    def attend(self, q, k, v, ctx: AttnContext, dropout_p: float):
        """Dense causal attention. q [B, T, H, d], k/v [B, S, H, d] -> [B, T, H, d]."""
        T, S = q.shape[1], k.shape[1]
        if not ctx.prior:  # keys are exactly the queries' tokens
            return attention(q, k, v, causal=True, dropout_p=dropout_p)
        if ctx.uniform and T == 1:  # one new token sees every filled slot
            return attention(q, k, v, dropout_p=dropout_p)
        slots = torch.arange(S, device=q.device)
        mask = (slots[None, None, :] <= ctx.qpos[:, :, None]).unsqueeze(1)  # [B, 1, T, S]
        return attention(q, k, v, mask=mask, dropout_p=dropout_p)


class TransformerLayer(GradientCheckpointingLayer, ts_decoder.DecoderLayer):
    attention_class = Attention

    def __init__(self, args, depth, **kwargs):
        super().__init__(args, depth, **kwargs)
        if getattr(args, "block", "transformer") == "retnet":
            self._retnet_block(args)

    def _retnet_block(self, args):
        """RetNet's recipe around the attention (torchscale RetNetDecoderLayer): RMSNorms, a GLU FFN,
        bias-free projections. Built before the Decoder's sub-LN init scaling, which then applies alike."""
        D = self.embed_dim
        self.self_attn_layer_norm = RMSNorm(D, eps=args.layernorm_eps)
        self.final_layer_norm = RMSNorm(D, eps=args.layernorm_eps)
        self.ffn = GLU(D, args.decoder_ffn_embed_dim, args.activation_fn, args.dropout, args.activation_dropout)
        attn = self.self_attn
        for name in PROJECTIONS:
            linear = nn.Linear(D, D, bias=False)
            nn.init.xavier_uniform_(linear.weight, gain=1.0 if name == "out_proj" else 2**-0.5)
            setattr(attn, name, linear)
        attn.inner_attn_ln = None

    def build_self_attention(self, embed_dim, args):
        return self.attention_class(
            args,
            embed_dim,
            args.decoder_attention_heads,
            dropout=args.attention_dropout,
            self_attention=True,
            subln=args.subln,
        )

    def forward(self, x, ctx: AttnContext, state: dict | None = None, output_attentions: bool = False):
        """Pre-norm block (torchscale's default): x [B, T, D] -> [B, T, D] (and the attention weights
        with ``output_attentions``)."""
        y = self.self_attn(self.self_attn_layer_norm(x), ctx, state, output_attentions)
        y, weights = y if output_attentions else (y, None)
        x = x + self.dropout_module(y)
        x = x + self.ffn(self.final_layer_norm(x))
        return (x, weights) if output_attentions else x


class TransformerBackbone(ts_decoder.Decoder):
    layer_class = TransformerLayer

    def __init__(self, args, **kwargs):
        super().__init__(args, **kwargs)
        if getattr(args, "block", "transformer") == "retnet" and self.layer_norm is not None:
            self.layer_norm = RMSNorm(args.decoder_embed_dim, eps=args.layernorm_eps)

    def build_decoder_layer(self, args, depth, is_moe_layer=False, is_encoder_decoder=False):
        return self.layer_class(args, depth, is_moe_layer=is_moe_layer)


class TransformerModel(ArchbenchModel):
    """Transformer backbone with xPos / rotary / learned positions and a preallocated, position-indexed
    KV cache."""

    config_class = TransformerConfig
    arch = "transformer"
    decoder_class = TransformerBackbone
    subln_scaled = True
    _no_split_modules = ["TransformerLayer"]

    def __init__(self, config: TransformerConfig, _head: list | None = None):
        super().__init__(config)
        args = config.to_torchscale()
        args.no_output_layer = True  # the head owns it (drawn here, where torchscale draws it)
        embed = TextEmbedding(config.vocab_size, config.embed_dim, config.pad_token_id)
        positions = None
        if config.position == "learned":
            positions = nn.Embedding(config.max_seq_len, config.embed_dim)
            nn.init.normal_(positions.weight, std=config.embed_dim**-0.5)
        head = output_projection(args, embed)
        if _head is not None:
            _head.append(head)
        self.decoder = self.decoder_class(args, embed_tokens=embed, embed_positions=positions)
        head_dim = config.embed_dim // config.heads
        self.rope = None
        if config.position in ("xpos", "rotary"):
            self.rope = XPos(
                head_dim, config.xpos_scale_base, config.max_seq_len // 2, use_scale=config.position == "xpos"
            )
        self.post_init()

    def _backbone(self, x, n_valid, cache, hiddens=None, attns=None):
        B, T, _ = x.shape
        dec = self.decoder
        prior = cache is not None and cache.lengths is not None
        idx = torch.arange(T, device=x.device)
        qpos = idx[None] + cache.lengths[:, None] if prior else idx[None]  # [B|1, T]
        x = dec.embed_scale * x
        if dec.embed_positions is not None:
            if (cache.max_length if prior else 0) + T > self.config.max_seq_len:
                raise ContextTooLong(f"learned positions stop at max_seq_len={self.config.max_seq_len}")
            x = x + dec.embed_positions(qpos)
        x = dec.dropout_module(x)
        uniform = not prior or cache.uniform
        ctx = AttnContext(
            qpos=qpos,
            rope=self.rope(qpos) if self.rope is not None else None,
            prior=prior,
            uniform=uniform,
            start=cache.max_length if prior else 0,
            total=(cache.max_length if prior else 0) + T,
        )
        for i, layer in enumerate(dec.layers):
            if hiddens is not None:
                hiddens.append(x)
            x = self._layer(layer, x, attns, ctx=ctx, state=cache.layers[i] if cache is not None else None)
        if cache is not None:
            if prior:
                cache.lengths = cache.lengths + T
                cache.max_length += T
            else:
                cache.lengths = n_valid if n_valid is not None else torch.full((B,), T, device=x.device)
                cache.max_length = T if n_valid is None else int(n_valid.max())
                cache.uniform = n_valid is None or bool((n_valid == n_valid[0]).all())
        return dec.layer_norm(x)


class TransformerForCausalLM(ArchbenchForCausalLM, GenerationMixin):
    """Decoder-only Transformer causal LM: :class:`TransformerModel` and the LM head."""

    config_class = TransformerConfig
    arch = "transformer"
    backbone_class = TransformerModel
    subln_scaled = True
    _no_split_modules = ["TransformerLayer"]


TransformerModelHF = TransformerForCausalLM
