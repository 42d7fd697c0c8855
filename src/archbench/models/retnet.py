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

import functools
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torchscale.architecture import retnet as ts_retnet
from torchscale.architecture.config import RetNetConfig as TSRetNetConfig
from torchscale.component.embedding import TextEmbedding
from torchscale.component.gate_linear_unit import GLU
from torchscale.component.multiscale_retention import MultiScaleRetention
from transformers import GenerationMixin

from .common import HPARAMS, ArchbenchConfig, ArchbenchPreTrainedModel
from .constraints import retnet as check_retnet
from .constraints import value_embed_dim as default_value_embed_dim

MODES = ("parallel", "chunkwise", "recurrent")


class RetNetConfig(ArchbenchConfig):
    """RetNet hyperparameters. ``value_embed_dim`` defaults to ``2 * embed_dim``; sequences
    longer than ``chunkwise_above`` run chunkwise with chunks of ``chunk_size`` tokens. None (the
    default) for either means automatic (:func:`retention_plan`): the measured chunk length of
    the device, parallel up to it and chunkwise above."""

    model_type = "archbench_retnet"
    hparam_names: ClassVar[tuple] = HPARAMS + ("value_embed_dim", "chunk_size", "chunkwise_above")
    check_settings: ClassVar = staticmethod(check_retnet)

    ffn_dim: int = 1024
    value_embed_dim: int | None = None
    chunk_size: int | None = None
    chunkwise_above: int | None = None
    layernorm_eps: float = 1e-6

    def __post_init__(self, **kwargs):
        self.value_embed_dim = default_value_embed_dim(vars(self))
        super().__post_init__(**kwargs)

    def to_torchscale(self) -> TSRetNetConfig:
        return TSRetNetConfig(
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


# Automatic plan (chunkwise_above / chunk_size left at null): one chunk length per device type, measured
# with benchmarks/train.py --sweep (training step, 1 thread; numbers in benchmarks/README.md). Sequences
# up to the chunk length run parallel (one chunk IS the parallel form), longer ones chunkwise with it.
AUTO_CHUNK = {"cpu": 64}
AUTO_CHUNK_DEFAULT = 64  # devices not measured here (e.g. CUDA without fla)


def auto_chunk(device_type: str) -> int:
    return AUTO_CHUNK.get(device_type, AUTO_CHUNK_DEFAULT)


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


def _norm_sum(decay: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """c(p) = sum_{j=0..p} g^j per head, closed form (expm1 keeps g -> 1 accurate).

    decay: [H] log g; pos: [B, T] -> [B, H, T, 1]; c(-1) = 0 (nothing absorbed yet)."""
    d = decay.view(1, -1, 1)
    return (torch.expm1(d * (pos.unsqueeze(1) + 1)) / torch.expm1(d)).unsqueeze(-1)


class ChunkTables(NamedTuple):
    """Position-only factors of the chunked retention (B' = 1 for plain positions, else B; the
    sequence is padded to N * C by repeating the last position).

    D [B', H, N | 1, C, C]: g^(p_i - p_j) inside a chunk, 0 above the diagonal. c [B', H, T, 1]: c(p)
    of each row (the group norm's eps is scaled by it instead of dividing rows by sqrt(c)).
    Across chunks (None when there is one chunk and no state in or out), with e'_0 = the incoming
    state's position and e'_{n+1} = the last position of chunk n: kd [B', H, N, C, 1] = g^(e_n - p_j)
    (weight of key j in its chunk's state), qd [B', H, N, C, 1] = g^(p_i - e'_n) (decay of the state
    a query of chunk n reads), A [B', H, N+1, N+1] = g^(e'_n - e'_m) for m <= n (states at the chunk
    boundaries from the chunks' own). s0 [B, H, 1, 1] = sqrt(c(p_start)) un-normalises the incoming
    state, s_out [B', H, 1, 1] = c(p_last)^-1/2 normalises the outgoing one.
    """

    C: int
    N: int
    D: torch.Tensor
    c: torch.Tensor
    kd: torch.Tensor | None = None
    qd: torch.Tensor | None = None
    A: torch.Tensor | None = None
    s0: torch.Tensor | None = None
    s_out: torch.Tensor | None = None
    plain: bool = False


def decay_tables(decay, pos, p_start, mode, chunk_size, need_state, plain=False):
    """Everything that depends only on positions, computed once per forward for all layers.

    decay: [H] log g; pos: [B|1, T] float positions (trailing pads repeat the last real one, so
    they neither decay nor advance the state); p_start: [B] position of the last token already in
    the state, or None when there is no state; chunk_size: the chunk length (ignored by "parallel",
    which is one chunk of T); plain: pos is 0..T-1, so every chunk has the same D (kept once, N = 1
    in its shape: padded keys are zero and padded queries dropped, so the last chunk may share it).
    Returns, for "recurrent", ``(a, b)`` [B, H, T, 1] with ``S_t = a_t S_{t-1} + b_t k_t v_t^T``;
    otherwise :class:`ChunkTables`.
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
    C = T if mode == "parallel" else max(1, min(chunk_size, T))
    N = -(-T // C)
    c = _norm_sum(decay, pos).clamp_min(1.0)  # clamp: only rows with no token yet
    if N * C > T:
        pos = torch.cat([pos, pos[:, -1:].expand(-1, N * C - T)], 1)
    Bp = pos.shape[0]
    d = decay.view(1, -1, 1, 1, 1)
    P = pos.view(Bp, 1, N, C, 1)
    causal = torch.ones(C, C, dtype=torch.bool, device=pos.device).tril()
    P0 = P[:, :, :1] if plain else P
    D = torch.exp((d * (P0 - P0.transpose(-1, -2))).masked_fill(~causal, float("-inf")))
    if N == 1 and p_start is None and not need_state:
        return ChunkTables(C, N, D, c, plain=plain)
    ends = pos.view(Bp, N, C)[:, :, -1]
    first = p_start[:, None] if p_start is not None else pos[:, :1] - 1  # no state: its weight is unused
    e = torch.cat([first, ends], 1)  # [B', N+1]
    kd = torch.exp(d * (ends.view(Bp, 1, N, 1, 1) - P))
    qd = torch.exp(d * (P - e[:, :N].view(Bp, 1, N, 1, 1)))
    tri = torch.ones(N + 1, N + 1, dtype=torch.bool, device=pos.device).tril()
    A = torch.exp(
        (decay.view(1, -1, 1, 1) * (e[:, None, :, None] - e[:, None, None, :])).masked_fill(~tri, float("-inf"))
    )
    s0 = _norm_sum(decay, p_start[:, None]).sqrt() if p_start is not None else None
    s_out = _norm_sum(decay, pos[:, -1:]).clamp_min(1.0).rsqrt() if need_state else None
    return ChunkTables(C, N, D, c, kd, qd, A, s0, s_out, plain)


class Retention(MultiScaleRetention):
    """Multi-scale retention with exact parallel / chunkwise / recurrent modes and carried state.

    The recurrent state of a layer is ``S~ = S / sqrt(c(p_last))`` [B, H, dk, dv] in float32 with
    ``S = sum_m g^(p_last - p_m) k~_m v_m^T`` (torchscale's layout for ``prev_key_value``).
    """

    def forward(self, x, rot, valid, tables, mode="parallel", state=None):
        """x: [B, T, D]; rot: [B|1, T, 1, dk/2] complex64 rotation; valid: [B, T] bool or None;
        tables: :func:`decay_tables` for ``mode``; state: None or this layer's cache dict
        (its "S" is read and updated in place). Returns [B, T, D]."""
        bsz, T, _ = x.shape
        H, _dk, dv = self.num_heads, self.key_dim, self.head_dim
        v = self.v_proj(x)
        g = self.g_proj(x)
        # rotation as a complex product (= torchscale's theta_shift), the key scaling folded in
        qr = _rotate(self.q_proj(x), rot, H).to(v.dtype)
        kr = _rotate(self.k_proj(x), rot * self.scaling, H).to(v.dtype)
        v = v.view(bsz, T, H, dv).transpose(1, 2)
        if valid is not None:  # padded keys contribute nothing (masked_fill: no 0 * inf)
            kr = kr.masked_fill(~valid[:, None, :, None], 0.0)
        S = state.get("S") if state is not None else None
        if mode == "recurrent":
            out, S = self._recurrent(qr, kr, v, S, *tables)
            eps = self.group_norm.eps
        elif mode == "chunkwise" and fla_usable(qr, tables, S, state):
            out = fla_retention(qr, kr, v)
        else:
            out, S = _chunked(qr, kr, v, S, tables, need_state=state is not None)
            eps = self.group_norm.eps * tables.c  # = GroupNorm_eps(out / sqrt(c)), see ChunkTables
        if state is not None:
            state["S"] = S
        # gate_fn: torchscale's swish = silu. Recomputed in backward: o and g are all it keeps
        return _recompute(lambda o, g: self.out_proj(_GateNorm.apply(o, eps, g)), out, g)

    @staticmethod
    def _recurrent(qr, kr, v, S, a, b):
        """Token-by-token recurrence, O(1) per token. Returns (o [B, H, T, dv], S)."""
        bsz, H, T, dk = qr.shape
        if S is None:
            S = torch.zeros(bsz, H, dk, v.shape[-1], dtype=torch.float32, device=qr.device)
        outs = []
        for t in range(T):
            kv = kr[:, :, t].float().unsqueeze(-1) * v[:, :, t].float().unsqueeze(-2)
            S = S * a[:, :, t].unsqueeze(-1) + kv * b[:, :, t].unsqueeze(-1)
            outs.append(qr[:, :, t : t + 1].float() @ S)
        return torch.cat(outs, 2), S


@functools.cache
def _fla_chunk_retention():
    """flash-linear-attention's chunk_retention when importable (optional ``[gpu]`` extra, CUDA
    only); never imported on the CPU path."""
    try:
        from fla.ops.retention import chunk_retention
    except Exception:  # not installed / no triton / no GPU build
        return None
    return chunk_retention


def fla_usable(q, tables, S, state) -> bool:
    """fla's kernel computes exactly our unnormalised sum for plain positions with no state in or
    out, with torchscale's decays (log(1 - 2^(-5-h)), fla's fixed ``g_gamma``)."""
    return (
        q.is_cuda
        and S is None
        and state is None
        and isinstance(tables, ChunkTables)
        and tables.plain
        and _fla_chunk_retention() is not None
    )


def fla_retention(q, k, v):
    """q/k [B, H, T, dk] (rotated, k scaled), v [B, H, T, dv] -> o [B, H, T, dv] * sqrt(c), as
    :func:`_chunked` returns it (the group norm's eps carries c)."""
    o, _ = _fla_chunk_retention()(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=1.0, head_first=False)
    return o.transpose(1, 2)


def _rotate(x, rot, H):
    """x [B, T, H * dk] -> rotated [B, H, T, dk] (float32: bf16 has no complex type)."""
    B, T, _ = x.shape
    xc = torch.view_as_complex(x.float().view(B, T, H, -1, 2))
    return torch.view_as_real(xc * rot).view(B, T, H, -1).transpose(1, 2)


def _chunked(q, k, v, S, t: ChunkTables, need_state: bool):
    """Parallel form inside chunks of t.C tokens, all chunks in one batched product; the state
    crosses chunks through one [N+1, N+1] decay product (no Python loop). q/k [B, H, T, dk],
    v [B, H, T, dv]; S: incoming state S~ or None. Returns (o [B, H, T, dv] * sqrt(c), S~ out)."""
    B, H, T, dk = q.shape
    dv = v.shape[-1]
    C, N = t.C, t.N
    # fp16 would need torchscale's range scaling (the eps trick makes any row scale exact, but not
    # overflow-proof): run it in fp32, which is cheap at chunk scale. bf16 / fp32 run as they are.
    dtype = torch.float32 if q.dtype == torch.float16 else q.dtype
    with torch.autocast(q.device.type, enabled=False):  # explicit dtypes below; the state stays fp32
        if N * C > T:
            q, k, v = (F.pad(x, (0, 0, 0, N * C - T)) for x in (q, k, v))
        # one contiguous copy each: splitting T of a [B, T, H, d] -> [B, H, T, d] view is still a view,
        # which every batched product below would otherwise copy again (and keep for backward)
        qc, kc, vc = (x.to(dtype).reshape(B, H, N, C, x.shape[-1]).contiguous() for x in (q, k, v))
        o = _IntraChunk.apply(qc, kc, vc, t.D.to(dtype))
        S_out = None
        if t.A is not None:
            U = ((kc * t.kd).float().transpose(-1, -2) @ vc.float()).view(B, H, N, dk * dv)
            A = t.A if need_state else t.A[:, :, :N]
            if S is None:
                states = A[..., 1:] @ U
            else:
                states = A @ torch.cat([(S * t.s0).view(B, H, 1, dk * dv), U], 2)
            states = states.view(B, H, -1, dk, dv)
            # qd is one factor per query row: scale the product, not q (nothing new to keep for backward)
            o = o + ((qc.float() @ states[:, :, :N]) * t.qd).to(o.dtype)
            if need_state:
                S_out = states[:, :, N] * t.s_out
    return o.view(B, H, N * C, dv)[:, :, :T], S_out


class _IntraChunk(torch.autograd.Function):
    """o = ((q k^T) * D) v per chunk ([..., C, d] operands). Backward recomputes the [C, C] products
    (as flash attention does) instead of keeping them: they were the largest retention activation."""

    @staticmethod
    def forward(ctx, q, k, v, D):
        ctx.save_for_backward(q, k, v, D)
        return ((q @ k.transpose(-1, -2)) * D) @ v

    @staticmethod
    def backward(ctx, do):
        q, k, v, D = ctx.saved_tensors
        do = do.to(v.dtype)
        dv = ((q @ k.transpose(-1, -2)) * D).transpose(-1, -2) @ do
        ds = (do @ v.transpose(-1, -2)) * D
        return ds @ k, ds.transpose(-1, -2) @ q, dv, None


class _GateNorm(torch.autograd.Function):
    """silu(g) * GroupNorm_eps(o), o [B, H, T, dv] -> [B, T, H * dv] in g's dtype (norm in at least
    fp32). eps: float or [B|1, H, T, 1]. Keeps only o, g and the row scales for backward (autograd
    would keep the normalised, transposed and gated copies too); the rest is recomputed."""

    @staticmethod
    def forward(ctx, o, eps, g):
        acc = torch.promote_types(o.dtype, torch.float32)
        r = torch.rsqrt(o.to(acc).square().mean(-1, keepdim=True) + eps)
        ctx.save_for_backward(o, r, g)
        y = (o.to(acc) * r).transpose(1, 2).reshape(g.shape)
        return (F.silu(g.to(acc)) * y).to(g.dtype)

    @staticmethod
    def backward(ctx, dout):
        o, r, g = ctx.saved_tensors
        B, H, T, dv = o.shape
        y = o.to(r.dtype) * r
        gf, dout = g.to(r.dtype), dout.to(r.dtype)
        sg = torch.sigmoid(gf)
        dg = dout * y.transpose(1, 2).reshape(g.shape) * (sg * (1 + gf * (1 - sg)))
        dy = (dout * gf * sg).view(B, T, H, dv).transpose(1, 2)
        do = r * (dy - y * (dy * y).mean(-1, keepdim=True))
        return do.to(o.dtype), None, dg.to(g.dtype)


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
        self._cache = {}

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._restore_fp32()
        self._cache.clear()
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
        if plain and key in self._cache:
            return self._cache[key]
        out = self.rotation(pos), decay_tables(self.decay, pos, p_start, mode, chunk, need_state, plain)
        if plain and out[1].D.numel() <= self.CACHE_MAX_ELEMENTS:
            while len(self._cache) >= self.CACHE_MAX_ENTRIES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = out
        return out


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


class RetNetLayer(ts_retnet.DecoderLayer):
    def build_retention(self, embed_dim, args):
        return Retention(args, embed_dim, args.decoder_value_embed_dim, args.decoder_retention_heads)

    def build_ffn(self, embed_dim, args):
        return LeanGLU(embed_dim, self.ffn_dim, args.activation_fn, args.dropout, args.activation_dropout)

    def forward(self, x, **retention_kw):
        """Pre-norm block: x [B, T, D] -> [B, T, D]."""
        x = x + self.dropout_module(self.retention(_recompute(self.retention_layer_norm, x), **retention_kw))
        return x + self.ffn(_recompute(self.final_layer_norm, x))


class RetNetBackbone(ts_retnet.RetNetDecoder):
    """torchscale's decoder with our layers and float32 relative positions."""

    def __init__(self, args, **kw):
        super().__init__(args, **kw)
        self.retnet_rel_pos = RelPos(args)

    def build_decoder_layer(self, args, depth, is_moe_layer=False):
        return RetNetLayer(args, depth, is_moe_layer=is_moe_layer)


class RetNetForCausalLM(ArchbenchPreTrainedModel, GenerationMixin):
    """RetNet causal LM. ``forward(..., retention_mode=...)`` forces a mode; by default
    :func:`retention_plan` picks parallel or chunkwise (``config.chunkwise_above`` /
    ``chunk_size``, automatic when None), and the recurrent step for single-token decoding with
    a cache (O(1) state per layer)."""

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
        mode, chunk = retention_plan(T, self.config, x.device.type, mode, has_state)
        p_start = cache.lengths.float() - 1 if has_state else None
        rot, tables = dec.retnet_rel_pos.tables(
            pos, p_start, mode, chunk, need_state=cache is not None, plain=n_valid is None and not has_state
        )
        for i, layer in enumerate(dec.layers):
            x = layer(
                x, rot=rot, valid=valid, tables=tables, mode=mode, state=cache.layers[i] if cache is not None else None
            )
        if cache is not None:
            added = n_valid if n_valid is not None else torch.full((bsz,), T, device=x.device)
            cache.lengths = cache.lengths + added if has_state else added
            cache.max_length = int(cache.lengths.max()) if n_valid is not None else cache.max_length + T
        return _recompute(dec.layer_norm, x)


RetNetModelHF = RetNetForCausalLM
