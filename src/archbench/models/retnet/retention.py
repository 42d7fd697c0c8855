"""Retention (arXiv 2307.08621) as plain operations, apart from the model (models/retnet/modeling.py).

All three forms compute the same function of rotated queries / keys ``q``, ``k`` (the key
scaling folded into ``k``), values ``v`` and per-head log decays ``log g``::

    o_n = sum_{m<=n} g^(p_n - p_m) (q_n . k_m) v_m / sqrt(c(p_n)),  c(p) = sum_{j<=p} g^j

(``p`` the per-row position) and share ONE signature, :func:`retention`. A form may return ``o``
times a per-row factor ``sqrt(s)`` for range; it then returns ``s`` too, and ``GroupNorm_eps(o_true)
= GroupNorm_{eps * s}(o_returned)`` exactly (see :class:`GateNorm`). retention_naive.py is the
short quadratic reference they are tested against. Only relative imports: ``save_pretrained`` copies
this file next to the weights (``trust_remote_code`` loading without archbench).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
import torch.nn.functional as F

MODES = ("parallel", "chunkwise", "recurrent")


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


class StepTables(NamedTuple):
    """Recurrent form: ``S_t = a_t S_{t-1} + b_t k_t v_t^T`` with a, b [B, H, T, 1] (S normalised)."""

    a: torch.Tensor
    b: torch.Tensor


def decay_tables(decay, pos, p_start, mode, chunk_size, need_state, plain=False):
    """Everything that depends only on positions, computed once per forward for all layers.

    decay: [H] log g; pos: [B|1, T] float positions (trailing pads repeat the last real one, so
    they neither decay nor advance the state); p_start: [B] position of the last token already in
    the state, or None when there is no state; chunk_size: the chunk length (ignored by "parallel",
    which is one chunk of T); plain: pos is 0..T-1, so every chunk has the same D (kept once, N = 1
    in its shape: padded keys are zero and padded queries dropped, so the last chunk may share it).
    Returns :class:`StepTables` for "recurrent", otherwise :class:`ChunkTables`.
    """
    d = decay.view(1, -1, 1, 1)
    T = pos.shape[1]
    if mode == "recurrent":
        prev = pos.new_full((pos.shape[0], 1), -1.0) if p_start is None else p_start[:, None]
        p_prev = torch.cat([prev.expand(-1, 1), pos[:, :-1].expand(prev.shape[0], -1)], 1)
        c_new = _norm_sum(decay, pos).clamp_min(1.0)  # clamp: only rows with no token yet
        a = torch.exp(d * (pos - p_prev).unsqueeze(1).unsqueeze(-1)) * (_norm_sum(decay, p_prev) / c_new).sqrt()
        return StepTables(a, c_new.rsqrt())
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


class TableCache:
    """Position tables of plain positions (0..T-1, no state), kept per key (at most ``max_entries``,
    oldest dropped; tables over ``max_elements`` in D, e.g. long forced-parallel runs, are not kept)."""

    def __init__(self, max_entries: int = 8, max_elements: int = 1 << 22):
        self.max_entries, self.max_elements = max_entries, max_elements
        self._entries: dict = {}

    def get(self, key, make):
        """``make()``'s (rotation, tables), cached under ``key``."""
        if key in self._entries:
            return self._entries[key]
        out = make()
        if out[1].D.numel() <= self.max_elements:
            while len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = out
        return out

    def clear(self):
        self._entries.clear()

    def __len__(self):
        return len(self._entries)

    def __contains__(self, key):
        return key in self._entries

    def last(self):
        return self._entries[next(reversed(self._entries))]


def rotate(x, rot, H):
    """x [B, T, H * dk] -> rotated [B, H, T, dk] (float32: bf16 has no complex type); rot: [B|1, T,
    1, dk/2] complex64 (torchscale's theta_shift as a complex product)."""
    B, T, _ = x.shape
    xc = torch.view_as_complex(x.float().view(B, T, H, -1, 2))
    return torch.view_as_real(xc * rot).view(B, T, H, -1).transpose(1, 2)


def retention(q, k, v, tables, mode="chunkwise", S=None, need_state=False):
    """The one entry point of every form.

    q/k [B, H, T, dk] (rotated; the key scaling folded into k), v [B, H, T, dv]; tables:
    :func:`decay_tables` for ``mode``; S: the incoming normalised state ``S~ = S / sqrt(c(p_last))``
    [B, H, dk, dv] float32 or None; need_state: return the outgoing state. Returns ``(o [B, H, T,
    dv], S~ out or None, s)`` with ``o = o_true * sqrt(s)``; ``s`` is 1.0 or [B|1, H, T, 1].
    "chunkwise" on CUDA runs fla's kernel when it can (:func:`fla_usable`).
    """
    if mode == "recurrent":
        o, S = recurrent(q, k, v, S, *tables)
        return o, S, 1.0
    if mode == "chunkwise" and fla_usable(q, tables, S, need_state):
        return fla_retention(q, k, v), None, tables.c
    o, S = chunked(q, k, v, S, tables, need_state=need_state)
    return o, S, tables.c


def recurrent(q, k, v, S, a, b):
    """Token-by-token recurrence, O(1) per token. Returns (o [B, H, T, dv], S~)."""
    bsz, H, T, dk = q.shape
    if S is None:
        S = torch.zeros(bsz, H, dk, v.shape[-1], dtype=torch.float32, device=q.device)
    outs = []
    for t in range(T):
        kv = k[:, :, t].float().unsqueeze(-1) * v[:, :, t].float().unsqueeze(-2)
        S = S * a[:, :, t].unsqueeze(-1) + kv * b[:, :, t].unsqueeze(-1)
        outs.append(q[:, :, t : t + 1].float() @ S)
    return torch.cat(outs, 2), S


def chunked(q, k, v, S, t: ChunkTables, need_state: bool):
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
        o = IntraChunk.apply(qc, kc, vc, t.D.to(dtype))
        S_out = None
        if t.A is not None:
            U = ((kc * t.kd).float().transpose(-1, -2) @ vc.float()).view(B, H, N, dk * dv)
            if S is not None:
                U = torch.cat([(S * t.s0).view(B, H, 1, dk * dv), U], 2)
            cols = slice(1, None) if S is None else slice(None)
            # the states the queries read, then (separately, so they are the same numbers whether or not
            # a state is wanted) the outgoing one
            states = (t.A[:, :, :N, cols] @ U).view(B, H, N, dk, dv)
            # qd is one factor per query row: scale the product, not q (nothing new to keep for backward)
            o = o + ((qc.float() @ states) * t.qd).to(o.dtype)
            if need_state:
                S_out = (t.A[:, :, N:, cols] @ U).view(B, H, dk, dv) * t.s_out
    return o.view(B, H, N * C, dv)[:, :, :T], S_out


class IntraChunk(torch.autograd.Function):
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


class GateNorm(torch.autograd.Function):
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


# ----------------------------------------------------------------------------- fla hook

FLA_DEVICES = ("cuda",)  # fla's Triton kernels; tests add "cpu" with the kernel swapped for fla's reference


@functools.cache
def fla_chunk_retention():
    """flash-linear-attention's ``chunk_retention`` (fla-core, the optional ``[gpu]`` extra) when
    importable; looked up only on a device in FLA_DEVICES."""
    try:
        from fla.ops.retention import chunk_retention
    except Exception:  # not installed / no triton
        return None
    return chunk_retention


def fla_usable(q, tables, S, need_state) -> bool:
    """fla's kernel computes exactly our unnormalised sum for plain positions with no state in or
    out, with torchscale's decays (log(1 - 2^(-5-h)), fla's fixed ``g_gamma``)."""
    return (
        q.device.type in FLA_DEVICES
        and S is None
        and not need_state
        and isinstance(tables, ChunkTables)
        and tables.plain
        and fla_chunk_retention() is not None
    )


def fla_retention(q, k, v):
    """q/k [B, H, T, dk] (rotated, k scaled), v [B, H, T, dv] -> o [B, H, T, dv] * sqrt(c), as
    :func:`chunked` returns it. fla >= 0.5 takes [B, T, H, d] only (``head_first`` was removed) and
    applies ``scale`` to q: 1.0, the scaling is already in k."""
    o, _ = fla_chunk_retention()(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=1.0)
    return o.transpose(1, 2)
