"""RetNet (arXiv 2307.08621) on torchscale 0.3.0's ``RetNetDecoder``, as a Hugging Face model.

torchscale supplies the modules and their initialisation; the retention computation is ours
(``Retention.forward``) because torchscale 0.3.0's chunkwise mode drifts from the parallel one,
its multi-token prefill crashes and its recurrent step reads the position from the token-tensor
length. All three modes here compute the same function::

    o_n = sum_{m<=n} g^(p_n - p_m) (q~_n . k~_m) v_m / sqrt(c(p_n)),  c(p) = sum_{j<=p} g^j
    out_n = GroupNorm_eps(o_n)

(``q~``/``k~`` rotated by position, ``g`` the per-head decay, ``p`` the per-row position). Any
mode may divide ``o_n`` by a per-row scale ``s`` for range (torchscale's parallel mode does);
the group norm then uses ``eps / s**2`` so the scale cancels exactly instead of approximately.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torchscale.architecture import retnet as ts_retnet
from torchscale.architecture.config import RetNetConfig as TSRetNetConfig
from torchscale.component.embedding import TextEmbedding
from torchscale.component.multiscale_retention import MultiScaleRetention, theta_shift
from transformers import GenerationMixin

from .common import HPARAMS, ArchbenchConfig, ArchbenchPreTrainedModel
from .constraints import retnet as check_retnet
from .constraints import value_embed_dim as default_value_embed_dim

MODES = ("parallel", "chunkwise", "recurrent")


class RetNetConfig(ArchbenchConfig):
    """RetNet hyperparameters. ``value_embed_dim`` defaults to ``2 * embed_dim``; sequences
    longer than ``chunkwise_above`` (None = never) run chunkwise with ``chunk_size``."""

    model_type = "archbench_retnet"
    hparam_names: ClassVar[tuple] = HPARAMS + ("value_embed_dim", "chunk_size", "chunkwise_above")
    check_settings: ClassVar = staticmethod(check_retnet)

    ffn_dim: int = 1024
    value_embed_dim: int | None = None
    chunk_size: int = 64
    chunkwise_above: int | None = None
    layernorm_eps: float = 1e-6

    def __post_init__(self, **kwargs):
        self.value_embed_dim = default_value_embed_dim(vars(self))
        super().__post_init__(**kwargs)

    def to_torchscale(self) -> TSRetNetConfig:
        return TSRetNetConfig(
            vocab_size=self.vocab_size, decoder_embed_dim=self.embed_dim,
            decoder_value_embed_dim=self.value_embed_dim, decoder_retention_heads=self.heads,
            decoder_ffn_embed_dim=self.ffn_dim, decoder_layers=self.layers, dropout=self.dropout,
            activation_fn=self.activation_fn, layernorm_eps=self.layernorm_eps,
            share_decoder_input_output_embed=self.tie_word_embeddings,
            max_target_positions=self.max_seq_len, recurrent_chunk_size=self.chunk_size)


def _norm_sum(decay: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """c(p) = sum_{j=0..p} g^j per head, closed form (expm1 keeps g -> 1 accurate).

    decay: [H] log g; pos: [B, T] -> [B, H, T, 1]; c(-1) = 0 (nothing absorbed yet)."""
    d = decay.view(1, -1, 1)
    return (torch.expm1(d * (pos.unsqueeze(1) + 1)) / torch.expm1(d)).unsqueeze(-1)


def decay_tables(decay, pos, p_start, mode, chunk_size, need_state):
    """Everything that depends only on positions, computed once per forward for all layers.

    decay: [H] log g; pos: [B|1, T] float positions (trailing pads repeat the last real one, so
    they neither decay nor advance the state); p_start: [B] position of the last token already in
    the state, or None when there is no state. Returns, for "recurrent", ``(a, b)`` [B, H, T, 1]
    with ``S_t = a_t S_{t-1} + b_t k_t v_t^T``; otherwise one tuple per chunk
    ``(slice, D [B, H, L, L], w [B, H, L, 1] | None, wk [B, H, L, 1] | None, a [B, H, 1, 1] | None)``:
    intra-chunk decay mask, weight of the incoming state per query, weight of each key in the
    outgoing state, and decay of the incoming state.
    """
    d = decay.view(1, -1, 1, 1)
    T = pos.shape[1]
    if mode == "recurrent":
        prev = pos.new_full((pos.shape[0], 1), -1.0) if p_start is None else p_start[:, None]
        p_prev = torch.cat([prev.expand(-1, 1), pos[:, :-1].expand(prev.shape[0], -1)], 1)
        c_new = _norm_sum(decay, pos).clamp_min(1.0)  # clamp: only rows with no token yet
        a = torch.exp(d * (pos - p_prev).unsqueeze(1).unsqueeze(-1)) * (_norm_sum(decay, p_prev) / c_new).sqrt()
        return a, c_new.rsqrt()
    if mode not in MODES:
        raise ValueError(f"retention mode must be one of {MODES}, got {mode!r}")
    step = chunk_size if mode == "chunkwise" else T
    chunks, prev = [], p_start
    for i in range(0, T, step):
        p = pos[:, i:i + step]
        L = p.shape[1]
        c_n = _norm_sum(decay, p).clamp_min(1.0)  # [B, H, L, 1]
        causal = torch.ones(L, L, dtype=torch.bool, device=p.device).tril()
        diff = (p[:, :, None] - p[:, None, :]).unsqueeze(1)  # [B, 1, L, L]
        D = torch.exp((diff * d).masked_fill(~causal, float("-inf"))) / c_n.sqrt()
        w = wk = a = None
        if prev is not None:
            c_prev = _norm_sum(decay, prev[:, None])  # [B, H, 1, 1]
            w = torch.exp(d * (p - prev[:, None]).unsqueeze(1).unsqueeze(-1)) * (c_prev / c_n).sqrt()
        if need_state or i + step < T:
            p_last = p[:, -1]
            c_last = _norm_sum(decay, p_last[:, None]).clamp_min(1.0)
            wk = torch.exp(d * (p_last[:, None] - p).unsqueeze(1).unsqueeze(-1)) / c_last.sqrt()
            if prev is not None:
                a = torch.exp(d * (p_last - prev).view(-1, 1, 1, 1)) * (c_prev / c_last).sqrt()
            prev = p_last
        chunks.append((slice(i, i + step), D, w, wk, a))
    return chunks


class Retention(MultiScaleRetention):
    """Multi-scale retention with exact parallel / chunkwise / recurrent modes and carried state.

    The recurrent state of a layer is ``S~ = S / sqrt(c(p_last))`` [B, H, dk, dv] in float32 with
    ``S = sum_m g^(p_last - p_m) k~_m v_m^T`` (torchscale's layout for ``prev_key_value``).
    """

    def forward(self, x, rot, valid, tables, mode="parallel", state=None):
        """x: [B, T, D]; rot: (sin, cos) each [B|1, 1, T, dk] float32; valid: [B, T] bool or
        None; tables: :func:`decay_tables` for ``mode``; state: None or this layer's cache dict
        (its "S" is read and updated in place). Returns [B, T, D]."""
        bsz, T, _ = x.shape
        H, dk, dv = self.num_heads, self.key_dim, self.head_dim
        q = self.q_proj(x).view(bsz, T, H, dk).transpose(1, 2)
        k = (self.k_proj(x) * self.scaling).view(bsz, T, H, dk).transpose(1, 2)
        v = self.v_proj(x).view(bsz, T, H, dv).transpose(1, 2)
        g = self.g_proj(x)
        sin, cos = rot
        qr = theta_shift(q, sin, cos).to(v.dtype)
        kr = theta_shift(k, sin, cos).to(v.dtype)
        if valid is not None:  # padded keys contribute nothing (masked_fill: no 0 * inf)
            kr = kr.masked_fill(~valid[:, None, :, None], 0.0)
        S = state.get("S") if state is not None else None
        if mode == "recurrent":
            out, scale, S = self._recurrent(qr, kr, v, S, *tables)
        else:
            out, scale, S = self._chunks(qr, kr, v, S, tables)
        if state is not None:
            state["S"] = S
        # group norm in fp32 with the eps that makes the per-row scale cancel exactly
        out = out.float()
        eps = self.group_norm.eps / scale.float() ** 2
        out = out * torch.rsqrt(out.pow(2).mean(-1, keepdim=True) + eps)
        out = out.transpose(1, 2).reshape(bsz, T, H * dv).to(g.dtype)
        return self.out_proj(self.gate_fn(g) * out)

    @staticmethod
    def _chunks(qr, kr, v, S, tables):
        """Parallel form inside each chunk, state across chunks. qr/kr [B, H, T, dk], v [B, H, T, dv].
        Returns (o [B, H, T, dv] divided by s, s [B, H, T, 1], S)."""
        outs, scales = [], []
        for sl, D, w, wk, a in tables:
            q, k, vc = qr[:, :, sl], kr[:, :, sl], v[:, :, sl]
            inner = (q @ k.transpose(-1, -2)) * D
            # torchscale's range normalisation: any per-row scale works, the eps absorbs it
            s = inner.detach().abs().sum(-1, keepdim=True).clamp_min(1.0)
            o = (inner / s).to(vc.dtype) @ vc
            if w is not None:
                o = o + ((q @ S.to(q.dtype)) * w / s).to(o.dtype)
            if wk is not None:
                with torch.autocast(qr.device.type, enabled=False):  # the state stays fp32
                    S_new = k.float().transpose(-1, -2) @ (vc.float() * wk)
                    S = S_new if a is None else S_new + S * a
            outs.append(o)
            scales.append(s)
        return torch.cat(outs, 2), torch.cat(scales, 2), S

    @staticmethod
    def _recurrent(qr, kr, v, S, a, b):
        """Token-by-token recurrence, O(1) per token. Returns (o [B, H, T, dv], s = 1, S)."""
        bsz, H, T, dk = qr.shape
        if S is None:
            S = torch.zeros(bsz, H, dk, v.shape[-1], dtype=torch.float32, device=qr.device)
        outs = []
        for t in range(T):
            kv = kr[:, :, t].float().unsqueeze(-1) * v[:, :, t].float().unsqueeze(-2)
            S = S * a[:, :, t].unsqueeze(-1) + kv * b[:, :, t].unsqueeze(-1)
            outs.append(qr[:, :, t:t + 1].float() @ S)
        return torch.cat(outs, 2), qr.new_ones(1, 1, 1, 1), S


class RelPos(ts_retnet.RetNetRelPos):
    """torchscale's rotation angles and decays, kept float32 whatever the model dtype
    (bf16 angles are inexact above position 256; a bf16 decay breaks the state)."""

    def __init__(self, args):
        super().__init__(args)
        self._dims = (args.decoder_embed_dim // args.decoder_retention_heads, args.decoder_retention_heads)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._restore_fp32()
        return self

    def _restore_fp32(self):
        """Recompute the tables (torchscale's formulas) if a cast or a bf16 default dtype at
        construction made them lower precision; a no-op on the meta device."""
        dev = self.angle.device
        if self.angle.dtype != torch.float32 and dev.type != "meta":
            key_dim, heads = self._dims
            f32 = dict(dtype=torch.float32, device=dev)
            angle = 1.0 / (10000 ** torch.linspace(0, 1, key_dim // 2, **f32))
            self.angle = angle.unsqueeze(-1).repeat(1, 2).flatten()
            self.decay = torch.log(1 - 2 ** (-5 - torch.arange(heads, **f32)))

    def rotation(self, pos: torch.Tensor):
        """pos [B|1, T] -> (sin, cos) each [B|1, 1, T, dk] float32."""
        self._restore_fp32()
        ang = pos.float().unsqueeze(-1) * self.angle
        return torch.sin(ang).unsqueeze(1), torch.cos(ang).unsqueeze(1)


class RetNetLayer(ts_retnet.DecoderLayer):
    def build_retention(self, embed_dim, args):
        return Retention(args, embed_dim, args.decoder_value_embed_dim, args.decoder_retention_heads)

    def forward(self, x, **retention_kw):
        """Pre-norm block: x [B, T, D] -> [B, T, D]."""
        x = x + self.dropout_module(self.retention(self.retention_layer_norm(x), **retention_kw))
        return x + self.ffn(self.final_layer_norm(x))


class RetNetBackbone(ts_retnet.RetNetDecoder):
    """torchscale's decoder with our layers and float32 relative positions."""

    def __init__(self, args, **kw):
        super().__init__(args, **kw)
        self.retnet_rel_pos = RelPos(args)

    def build_decoder_layer(self, args, depth, is_moe_layer=False):
        return RetNetLayer(args, depth, is_moe_layer=is_moe_layer)


class RetNetForCausalLM(ArchbenchPreTrainedModel, GenerationMixin):
    """RetNet causal LM. ``forward(..., retention_mode=...)`` forces a mode; by default the
    parallel mode is used, chunkwise above ``config.chunkwise_above`` tokens, and the
    recurrent step for single-token decoding with a cache (O(1) state per layer)."""

    config_class = RetNetConfig
    arch = "retnet"
    _no_split_modules = ["RetNetLayer"]
    _tied_weights_keys = {"decoder.output_projection.weight": "decoder.embed_tokens.weight"}

    def __init__(self, config: RetNetConfig):
        super().__init__(config)
        args = config.to_torchscale()
        embed = TextEmbedding(config.vocab_size, config.embed_dim, config.pad_token_id)
        self.decoder = RetNetBackbone(args, embed_tokens=embed)
        self.post_init()

    def _backbone(self, input_ids, n_valid, cache, mode=None):
        bsz, T = input_ids.shape
        dec = self.decoder
        x = dec.dropout_module(dec.embed_scale * dec.embed_tokens(input_ids))
        idx = torch.arange(T, device=x.device)
        has_state = cache is not None and cache.lengths is not None
        valid = None
        if n_valid is not None:  # packed rows: trailing pads keep the last real position
            valid = idx[None] < n_valid[:, None]
            pos = torch.minimum(idx[None], n_valid[:, None] - 1)  # -1 for an empty row
        else:
            pos = idx[None]
        if has_state:
            pos = pos + cache.lengths[:, None]
        pos = pos.float()
        if mode is None:
            if has_state and T == 1:
                mode = "recurrent"
            elif self.config.chunkwise_above is not None and T > self.config.chunkwise_above:
                mode = "chunkwise"
            else:
                mode = "parallel"
        rel = dec.retnet_rel_pos
        rot = rel.rotation(pos.clamp_min(0))  # (also restores fp32 tables)
        p_start = cache.lengths.float() - 1 if has_state else None
        tables = decay_tables(rel.decay, pos, p_start, mode, self.config.chunk_size,
                              need_state=cache is not None)
        for i, layer in enumerate(dec.layers):
            x = layer(x, rot=rot, valid=valid, tables=tables, mode=mode,
                      state=cache.layers[i] if cache is not None else None)
        if cache is not None:
            added = n_valid if n_valid is not None else torch.full((bsz,), T, device=x.device)
            cache.lengths = cache.lengths + added if has_state else added
            cache.max_length = int(cache.lengths.max()) if n_valid is not None else cache.max_length + T
        return dec.layer_norm(x)


RetNetModelHF = RetNetForCausalLM
