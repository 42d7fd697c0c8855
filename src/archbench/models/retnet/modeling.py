"""RetNet (arXiv 2307.08621) on torchscale 0.3.0's ``RetNetDecoder``, as a Hugging Face model.

torchscale supplies the modules and their initialisation; the retention computation is ours
(models/retnet/retention.py, called from ``Retention.forward``) because torchscale 0.3.0's chunkwise mode
drifts from the parallel one, its multi-token prefill crashes and its recurrent step reads the
position from the token-tensor length. All three modes here compute the same function::

    o_n = sum_{m<=n} g^(p_n - p_m) (q~_n . k~_m) v_m / sqrt(c(p_n)),  c(p) = sum_{j<=p} g^j
    out_n = GroupNorm_eps(o_n)

(``q~``/``k~`` rotated by position, ``g`` the per-head decay, ``p`` the per-row position). Any
mode may return ``o_n * sqrt(s)`` for a per-row ``s`` (the chunked forms skip the division by
sqrt(c)); the group norm then uses ``eps * s``, so the scale cancels exactly instead of approximately.

Relation to torchscale, exactly: this is torchscale's *recurrent* formulation (its
``recurrent_forward``, state divided by sqrt(c)), equal to it token by token to float precision
(≤ 2e-6 in log-probabilities, also with q/k weights x10). torchscale's own *parallel* mode differs
from its recurrent one: it divides each row by its clamped absolute row sum before a fixed-eps group
norm, so the eps does not cancel; measured on a 2-layer model (tests/test_models_retnet.py): 1.5e-6
to 4.6e-6 at initialisation, 1.3e-4 to 5.4e-4 in log-probabilities with q/k weights x10.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import torch
import torch.utils.checkpoint
from torchscale.architecture import retnet as ts_retnet
from torchscale.architecture.config import RetNetConfig as TSRetNetConfig
from torchscale.component.embedding import TextEmbedding
from torchscale.component.gate_linear_unit import GLU
from torchscale.component.multiscale_retention import MultiScaleRetention
from transformers import GenerationMixin
from transformers.modeling_layers import GradientCheckpointingLayer

from ..common import (
    HPARAMS,
    ArchbenchConfig,
    ArchbenchForCausalLM,
    ArchbenchModel,
    _scaled,
    init_xavier,
    output_projection,
)
from ..hybrid import settings_layers
from .retention import MODES, GateNorm, TableCache, _norm_sum, decay_tables, retention, rotate
from .spec import auto_chunk
from .spec import check as check_retnet
from .spec import value_embed_dim as default_value_embed_dim


class RetNetConfig(ArchbenchConfig):
    """RetNet hyperparameters. ``value_embed_dim`` defaults to ``2 * embed_dim``; sequences
    longer than ``chunkwise_above`` run chunkwise with chunks of ``chunk_size`` tokens. None (the
    default) for either means automatic (:func:`retention_plan`): the measured chunk length of
    the device, parallel up to it and chunkwise above.

    Hybrids: ``attention_every`` (every k-th layer, 0 = none) or ``attention_layers`` (indices) make
    those layers' token mixer softmax attention (models/hybrid_attention.py: Llama's, RoPE), the block
    otherwise unchanged; models/hybrid.py resolves which layers."""

    model_type = "archbench_retnet"
    hparam_names: ClassVar[tuple] = HPARAMS + (
        "value_embed_dim",
        "chunk_size",
        "chunkwise_above",
        "attention_every",
        "attention_layers",
    )
    check_settings: ClassVar = staticmethod(check_retnet)

    ffn_dim: int = 1024
    value_embed_dim: int | None = None
    chunk_size: int | None = None
    chunkwise_above: int | None = None
    layernorm_eps: float = 1e-6
    attention_every: int = 0
    attention_layers: list[int] | None = None

    def __post_init__(self, **kwargs):
        self.value_embed_dim = default_value_embed_dim(vars(self))
        super().__post_init__(**kwargs)

    def to_torchscale(self) -> TSRetNetConfig:
        args = TSRetNetConfig(
            vocab_size=self.vocab_size,
            decoder_embed_dim=self.embed_dim,
            decoder_value_embed_dim=self.value_embed_dim,
            decoder_retention_heads=self.heads,
            decoder_ffn_embed_dim=self.ffn_dim,
            decoder_layers=self.layers,
            dropout=self.dropout,
            activation_fn=self.activation_fn,
            layernorm_eps=self.layernorm_eps,
            share_decoder_input_output_embed=self.tie_word_embeddings,
            max_target_positions=self.max_seq_len,
            recurrent_chunk_size=self.chunk_size or auto_chunk("cpu"),
        )  # unused: our retention chunks
        args.attention_layers = settings_layers(vars(self))  # their mixer is softmax attention
        return args


def retention_plan(
    T: int, config, device_type: str = "cpu", mode: str | None = None, has_state: bool = False
) -> tuple[str, int]:
    """(mode, chunk length) for ``T`` new tokens: ``mode`` forces one; otherwise the recurrent step
    for one token after a state, else parallel up to ``chunkwise_above`` tokens (null: the chunk
    length) and chunkwise above. The chunk length is ``chunk_size`` (null: :func:`auto_chunk`)."""
    chunk = config.chunk_size or auto_chunk(device_type)
    if mode is None:
        if has_state and T == 1:
            mode = "recurrent"
        else:
            above = config.chunkwise_above if config.chunkwise_above is not None else chunk
            mode = "chunkwise" if T > above else "parallel"
    if mode not in MODES:
        raise ValueError(f"retention mode must be one of {MODES}, got {mode!r}")
    return mode, (T if mode == "parallel" else max(1, min(chunk, T)))


class Retention(MultiScaleRetention):
    """Multi-scale retention with exact parallel / chunkwise / recurrent modes and carried state.

    The recurrent state of a layer is ``S~ = S / sqrt(c(p_last))`` [B, H, dk, dv] in float32 with
    ``S = sum_m g^(p_last - p_m) k~_m v_m^T`` (torchscale's layout for ``prev_key_value``).
    """

    def archbench_linear_rules(self, scale: float = 1.0):
        """torchscale's ``reset_parameters`` (no sub-LN scaling in its RetNetDecoder)."""
        qkvg = functools.partial(init_xavier, gain=2**-2.5)
        return [
            *((getattr(self, n), qkvg) for n in ("q_proj", "k_proj", "v_proj", "g_proj")),
            (self.out_proj, init_xavier),
        ]

    def forward(self, x, rot, valid, tables, mode="parallel", state=None, weights=None):
        """x: [B, T, D]; rot: [B|1, T, 1, dk/2] complex64 rotation; valid: [B, T] bool or None;
        tables: :func:`decay_tables` for ``mode``; state: None or this layer's cache dict
        (its "S" is read and updated in place); weights: None, or the decay matrix [B|1, H, T, T]
        (:meth:`RelPos.retention_matrix`) to also return the retention matrix. Returns [B, T, D]
        (and the [B, H, T, T] matrix when ``weights`` is given)."""
        bsz, T, _ = x.shape
        H, _dk, dv = self.num_heads, self.key_dim, self.head_dim
        v = self.v_proj(x)
        g = self.g_proj(x)
        # rotation as a complex product (= torchscale's theta_shift), the key scaling folded in
        qr = rotate(self.q_proj(x), rot, H).to(v.dtype)
        kr = rotate(self.k_proj(x), rot * self.scaling, H).to(v.dtype)
        v = v.view(bsz, T, H, dv).transpose(1, 2)
        if valid is not None:  # padded keys contribute nothing (masked_fill: no 0 * inf)
            kr = kr.masked_fill(~valid[:, None, :, None], 0.0)
        S = state.get("S") if state is not None else None
        if weights is not None:  # the parallel form through the matrix it returns (on the autograd graph)
            weights = (qr.float() @ kr.float().transpose(-1, -2)) * weights
            out, s = (weights @ v.float()).to(v.dtype), 1.0
        if weights is None or state is not None:
            out_r, S, s_r = retention(qr, kr, v, tables, mode, S, need_state=state is not None)
            if state is not None:
                state["S"] = S
            if weights is None:
                out, s = out_r, s_r
        eps = self.group_norm.eps * s  # = GroupNorm_eps(out / sqrt(s)), see retention.py
        # gate_fn: torchscale's swish = silu. Recomputed in backward: o and g are all it keeps
        y = _recompute(lambda o, g: self.out_proj(GateNorm.apply(o, eps, g)), out, g)
        return y if weights is None else (y, weights)


class RelPos(ts_retnet.RetNetRelPos):
    """torchscale's rotation angles and decays, kept float32 whatever the model dtype
    (bf16 angles are inexact above position 256; a bf16 decay breaks the state). Rotation and
    decay tables of plain positions (0..T-1, no state) are cached per (T, mode, chunk, device):
    they depend on nothing else, and recomputing them every step costs ~D's size in exp()."""

    CACHE_MAX_ENTRIES = 8
    CACHE_MAX_ELEMENTS = 1 << 22  # larger tables (long forced-parallel runs) are not kept

    def __init__(self, args):
        super().__init__(args)
        self._dims = (args.decoder_embed_dim // args.decoder_retention_heads, args.decoder_retention_heads)
        self._cache = TableCache(self.CACHE_MAX_ENTRIES, self.CACHE_MAX_ELEMENTS)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._restore_fp32()
        self._cache.clear()
        return self

    def _restore_fp32(self):
        """Recompute the tables (torchscale's formulas) if a cast or a bf16 default dtype at
        construction made them lower precision; a no-op on the meta device."""
        if self.angle.dtype != torch.float32 and self.angle.device.type != "meta":
            self.angle, self.decay = self._tables_fp32()

    def _tables_fp32(self):
        """torchscale's angle / decay formulas in float32."""
        key_dim, heads = self._dims
        f32 = dict(dtype=torch.float32, device=self.angle.device)
        angle = 1.0 / (10000 ** torch.linspace(0, 1, key_dim // 2, **f32))
        return angle.unsqueeze(-1).repeat(1, 2).flatten(), torch.log(1 - 2 ** (-5 - torch.arange(heads, **f32)))

    def archbench_init(self):
        """The buffers as the constructor makes them (bit-identical)."""
        angle, decay = self._tables_fp32()
        _scaled(self.angle, lambda t: t.copy_(angle))
        _scaled(self.decay, lambda t: t.copy_(decay))
        self._cache.clear()

    def retention_matrix(self, pos: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """[B|1, H, T, T]: g^(p_n - p_m) / sqrt(c(p_n)) for keys m <= n (valid ones), else 0: times
        q~_n . k~_m it is the weight of v_m in o_n (the parallel form's matrix)."""
        T = pos.shape[1]
        d = self.decay.view(1, -1, 1, 1)
        P = pos[:, None, :, None].float()
        keep = torch.ones(T, T, dtype=torch.bool, device=pos.device).tril()
        if valid is not None:
            keep = keep & valid[:, None, None, :]
        D = torch.exp(d * (P - P.transpose(-1, -2))).masked_fill(~keep, 0.0)
        return D * _norm_sum(self.decay, pos.float()).clamp_min(1.0).rsqrt()

    def rotation(self, pos: torch.Tensor) -> torch.Tensor:
        """pos [B|1, T] -> e^(i p theta) [B|1, T, 1, dk/2] complex64 (torchscale's angles come in
        equal pairs: one per complex component)."""
        self._restore_fp32()
        ang = pos.float().clamp_min(0).unsqueeze(-1) * self.angle[::2]
        return torch.polar(torch.ones_like(ang), ang).unsqueeze(2)

    def tables(self, pos, p_start, mode, chunk, need_state, plain=False):
        """(rotation, decay tables) for ``pos`` [B|1, T]; cached when ``plain`` (pos = 0..T-1, no state)."""
        self._restore_fp32()
        plain = plain and p_start is None and mode != "recurrent"
        key = (
            pos.shape[1],
            mode,
            chunk,
            need_state,
            pos.device,
            torch.is_inference_mode_enabled(),
            self.decay._version,
            self.angle._version,
        )
        make = lambda: (self.rotation(pos), decay_tables(self.decay, pos, p_start, mode, chunk, need_state, plain))
        return self._cache.get(key, make) if plain else make()


RECOMPUTE_MIN_ELEMENTS = 1 << 17  # per sequence, e.g. 2048 tokens x width 64


def _recompute(fn, *args):
    """fn(*args), keeping only ``args`` for backward and recomputing fn's intermediates there.

    For cheap element-wise blocks (RMSNorm, the GLU's activation x gate, group norm + gate +
    out_proj) whose intermediates autograd would otherwise keep: fused kernels (LayerNorm, flash
    attention) keep that little in the Transformer, torchscale's Python RMSNorm / GLU do not.
    Short sequences skip it (counted per sequence, so a large batch of short windows does not switch it on):
    their activations are small and the recomputation costs ~10% of a step."""
    if torch.is_grad_enabled() and args[0][0].numel() >= RECOMPUTE_MIN_ELEMENTS:
        return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class LeanGLU(GLU):
    """torchscale's GLU (same parameters) keeping fc1(x) and gate(x) only for backward."""

    def _act_gate(self, h, g):
        return self.activation_dropout_module(self.activation_fn(h.float()).type_as(h) * g)

    def forward(self, x):
        x_shape = x.shape
        x = x.reshape(-1, x.size(-1))
        h = _recompute(self._act_gate, self.fc1(x), self.gate(x))
        return self.dropout_module(self.fc2(h).view(x_shape))


class RetNetLayer(GradientCheckpointingLayer, ts_retnet.DecoderLayer):
    """torchscale's RetNet block; in a hybrid's attention layer (``depth in args.attention_layers``) the
    mixer is :class:`HybridAttention` (``self_attn``, built where the retention would be), not retention."""

    def __init__(self, args, depth, **kwargs):
        self.__dict__["is_attention"] = depth in getattr(args, "attention_layers", ())  # read by build_retention
        self.__dict__["depth"] = depth
        super().__init__(args, depth, **kwargs)
        if self.is_attention:
            self.self_attn = self._modules.pop("retention")

    def build_retention(self, embed_dim, args):
        if self.is_attention:
            from ..hybrid_attention import HybridAttention, llama_config

            config = llama_config(embed_dim, args.decoder_retention_heads, max_seq_len=args.max_target_positions)
            return HybridAttention(config, layer_idx=self.depth)
        return Retention(args, embed_dim, args.decoder_value_embed_dim, args.decoder_retention_heads)

    def build_ffn(self, embed_dim, args):
        return LeanGLU(embed_dim, self.ffn_dim, args.activation_fn, args.dropout, args.activation_dropout)

    def forward(self, x, output_attentions=False, **retention_kw):
        """Pre-norm block: x [B, T, D] -> [B, T, D] (and the retention matrix with ``output_attentions``,
        which needs ``weights`` among ``retention_kw``). An attention layer takes ``rope``, ``ctx`` and
        ``state`` (:class:`HybridAttention`) and returns its softmax weights instead."""
        h = _recompute(self.retention_layer_norm, x)
        if self.is_attention:
            y = self.self_attn(h, output_attentions=output_attentions, **retention_kw)
        else:
            y = self.retention(h, **retention_kw)
        y, weights = y if output_attentions else (y, None)
        x = x + self.dropout_module(y)
        x = x + self.ffn(_recompute(self.final_layer_norm, x))
        return (x, weights) if output_attentions else x


class RetNetBackbone(ts_retnet.RetNetDecoder):
    """torchscale's decoder with our layers and float32 relative positions."""

    def __init__(self, args, **kw):
        super().__init__(args, **kw)
        self.retnet_rel_pos = RelPos(args)

    def build_decoder_layer(self, args, depth, is_moe_layer=False):
        return RetNetLayer(args, depth, is_moe_layer=is_moe_layer)


class RetNetModel(ArchbenchModel):
    """RetNet backbone (embeddings, layers, final norm). ``forward(..., retention_mode=...)`` forces a mode;
    by default :func:`retention_plan` picks parallel or chunkwise (``config.chunkwise_above`` /
    ``chunk_size``, automatic when None), and the recurrent step for single-token decoding with a cache
    (O(1) state per layer). A hybrid's attention layers attend over all tokens in every mode and decode
    from a KV cache in the same ``DecodeCache`` (retention state ``S`` for retention layers, keys ``k`` and
    values ``v`` by position for attention layers)."""

    config_class = RetNetConfig
    arch = "retnet"
    _no_split_modules = ["RetNetLayer"]
    backbone_kwargs: ClassVar[tuple] = ("retention_mode",)

    def __init__(self, config: RetNetConfig, _head: list | None = None):
        super().__init__(config)
        args = config.to_torchscale()
        args.no_output_layer = True  # the head owns it (drawn here, where torchscale draws it)
        embed = TextEmbedding(config.vocab_size, config.embed_dim, config.pad_token_id)
        head = output_projection(args, embed)
        if _head is not None:
            _head.append(head)
        self.decoder = RetNetBackbone(args, embed_tokens=embed)
        self.rotary = None  # a hybrid's RoPE tables (no parameters, nothing drawn)
        if args.attention_layers:
            from ..hybrid_attention import HybridRotary

            attn = next(layer.self_attn for layer in self.decoder.layers if layer.is_attention)
            self.rotary = HybridRotary(attn.config)
        self.post_init()

    def _backbone(self, x, n_valid, cache, hiddens=None, attns=None, retention_mode=None):
        bsz, T, _ = x.shape
        dec = self.decoder
        x = dec.dropout_module(dec.embed_scale * x)
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
        mode, chunk = retention_plan(T, self.config, x.device.type, retention_mode, has_state)
        p_start = cache.lengths.float() - 1 if has_state else None
        rot, tables = dec.retnet_rel_pos.tables(
            pos, p_start, mode, chunk, need_state=cache is not None, plain=n_valid is None and not has_state
        )
        weights = dec.retnet_rel_pos.retention_matrix(pos, valid) if attns is not None else None
        attn_kw = self._attention_kw(x, idx, pos, cache, has_state) if self.rotary is not None else None
        for i, layer in enumerate(dec.layers):
            if hiddens is not None:
                hiddens.append(x)
            state = cache.layers[i] if cache is not None else None
            if layer.is_attention:
                kw = dict(attn_kw, state=state)
            else:
                kw = dict(rot=rot, valid=valid, tables=tables, mode=mode, state=state)
                if weights is not None:
                    kw["weights"] = weights
            x = self._layer(layer, x, attns, **kw)
        if cache is not None:
            added = n_valid if n_valid is not None else torch.full((bsz,), T, device=x.device)
            cache.lengths = cache.lengths + added if has_state else added
            cache.max_length = int(cache.lengths.max()) if n_valid is not None else cache.max_length + T
            if not has_state and self.rotary is not None:  # rows of different lengths: the KV cache masks per row
                cache.uniform = n_valid is None or bool((n_valid == n_valid[0]).all())
        return _recompute(dec.layer_norm, x)

    def _attention_kw(self, x, idx, pos, cache, has_state) -> dict:
        """What a hybrid's attention layers read: RoPE at the retention's positions (a packed row's
        pads repeat its last position) and the cache slots (slot = the token's position in its row, as
        the Transformer's cache; a packed row's pads fill the slots after it, overwritten as it decodes)."""
        from ..hybrid_attention import AttnContext

        start = cache.max_length if has_state else 0
        qpos = idx[None] + cache.lengths[:, None] if has_state else idx[None]
        ctx = AttnContext(
            qpos=qpos,
            prior=has_state,
            uniform=not has_state or cache.uniform,
            start=start,
            total=start + x.shape[1],
        )
        return dict(rope=self.rotary(x, pos), ctx=ctx)


class RetNetForCausalLM(ArchbenchForCausalLM, GenerationMixin):
    """RetNet causal LM: :class:`RetNetModel` and the LM head (``retention_mode`` as the backbone)."""

    config_class = RetNetConfig
    arch = "retnet"
    backbone_class = RetNetModel
    _no_split_modules = ["RetNetLayer"]


RetNetModelHF = RetNetForCausalLM
