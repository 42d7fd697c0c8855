"""LongNet (arXiv 2307.02486): the Transformer with causal dilated attention.

PyPI torchscale 0.3.0 has no LongNet, so the dilated attention is ours. For each branch
(segment length w, dilation ratio r) the sequence is cut into segments of w tokens; in each
segment head h keeps the positions ``h % r, h % r + r, ...`` and attends causally among them.
Branch outputs are mixed by their softmax denominators: ``O = sum_i exp(lse_i - logsumexp_j lse_j) O_i``
where a query not kept by branch i has ``lse_i = -inf``. One segment covering the sequence with
r = 1 is dense causal attention. Segments are anchored at position 0 of each (packed) row.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from transformers import GenerationMixin

from ..common import attention_lse
from ..transformer.modeling import (
    Attention,
    AttnContext,
    TransformerBackbone,
    TransformerConfig,
    TransformerForCausalLM,
    TransformerLayer,
    TransformerModel,
)
from .spec import check as check_longnet
from .spec import segments as longnet_segments


class LongNetConfig(TransformerConfig):
    """Transformer hyperparameters plus the dilated-attention branches: ``segment_lengths[i]``
    with ``dilated_ratios[i]`` (each ratio divides its segment; one ratio must be 1 so every
    query is kept by some branch)."""

    model_type = "archbench_longnet"
    hparam_names: ClassVar[tuple] = TransformerConfig.hparam_names + ("segment_lengths", "dilated_ratios")

    segment_lengths: list[int] | None = None
    dilated_ratios: list[int] | None = None
    check_settings: ClassVar = staticmethod(check_longnet)

    def __post_init__(self, **kwargs):
        # unset: the paper's geometric pattern, ending at the context
        self.segment_lengths, self.dilated_ratios = longnet_segments(vars(self))
        super().__post_init__(**kwargs)

    def to_torchscale(self):
        args = super().to_torchscale()
        args.segment_lengths, args.dilated_ratios = self.segment_lengths, self.dilated_ratios
        return args


class DilatedAttention(Attention):
    """Same projections / cache as :class:`Attention`; only the score pattern differs."""

    def attend(self, q, k, v, ctx: AttnContext, dropout_p: float):
        """q [B, T, H, d], k/v [B, S, H, d] (slot = position) -> [B, T, H, d]."""
        branch = self._decode_branch if ctx.prior else self._segment_branch
        outs, lses = zip(
            *(
                branch(q, k, v, w, r, ctx, dropout_p)
                for w, r in zip(self.args.segment_lengths, self.args.dilated_ratios)
            )
        )
        lse = torch.stack(lses)  # [n_branch, B, T, H]
        weights = torch.softmax(lse, dim=0).unsqueeze(-1)  # exp(lse_i - logsumexp_j lse_j)
        return (weights * torch.stack(outs).float()).sum(0).to(q.dtype)

    @staticmethod
    def _segment_branch(q, k, v, w, r, ctx, dropout_p):
        """Keys are the queries' own tokens (positions 0..T-1): gather each head's dilated
        positions per segment and attend causally inside each segment, O(T * w / r)."""
        B, T, H, d = q.shape
        w = min(w, -(-T // r) * r)  # a segment longer than the input is one (shorter) segment
        Tp = -(-T // w) * w
        n_seg, m = Tp // w, w // r
        pad = (0, 0, 0, 0, 0, Tp - T)
        q, k, v = (torch.nn.functional.pad(t, pad) for t in (q, k, v))  # [B, Tp, H, d]
        offset = torch.arange(H, device=q.device) % r  # head h keeps positions = h (mod r)
        idx = (torch.arange(n_seg, device=q.device)[:, None] * w + torch.arange(m, device=q.device)[None] * r).reshape(
            -1, 1
        ) + offset  # [n_seg*m, H]
        dv = v.shape[-1]  # = d, except for the one-hot values that read the weights out
        gidx = idx[None, :, :, None].expand(B, -1, -1, d)
        vidx = idx[None, :, :, None].expand(B, -1, -1, dv)
        sub = [t.gather(1, gidx).reshape(B * n_seg, m, H, d) for t in (q, k)]
        sub.append(v.gather(1, vidx).reshape(B * n_seg, m, H, dv))
        # padding sits after every real token of the last segment: causality hides it
        out, lse = attention_lse(*sub, causal=True, dropout_p=dropout_p)
        out_full = q.new_zeros(B, Tp, H, dv).scatter_(1, vidx, out.reshape(B, n_seg * m, H, dv))
        lse_full = lse.new_full((B, Tp, H), float("-inf")).scatter_(
            1, idx[None].expand(B, -1, -1), lse.reshape(B, n_seg * m, H)
        )
        return out_full[:, :T], lse_full[:, :T]

    @staticmethod
    def _decode_branch(q, k, v, w, r, ctx, dropout_p):
        """Queries at positions ctx.qpos [B|1, T] against cached slots: gather, for each query
        and head, the <= w / r keys of its segment with its head's residue, O(w / r) per query."""
        B, T, H, d = q.shape
        S = k.shape[1]
        qpos = ctx.qpos.expand(B, T)
        offset = torch.arange(H, device=q.device) % r  # [H]
        keep_q = (qpos % r)[..., None] == offset  # [B, T, H]: query is in this head's pattern
        m = min(w // r, -(-S // r))
        kpos = ((qpos // w) * w)[..., None, None] + offset[:, None] + r * torch.arange(m, device=q.device)
        valid = (kpos <= qpos[..., None, None]) & keep_q[..., None]  # [B, T, H, m]
        kidx = kpos.clamp(max=S - 1)
        rows = torch.arange(B, device=q.device).view(B, 1, 1, 1)
        heads = torch.arange(H, device=q.device).view(1, 1, H, 1)
        kg, vg = k[rows, kidx, heads], v[rows, kidx, heads]  # [B, T, H, m, d]
        scores = torch.einsum("bthd,bthmd->bthm", q, kg).float().masked_fill(~valid, float("-inf"))
        lse = torch.logsumexp(scores, dim=-1)  # [B, T, H]
        probs = torch.exp(scores - lse.unsqueeze(-1).clamp_min(-1e30))
        if dropout_p > 0:
            probs = torch.nn.functional.dropout(probs, dropout_p)
        return torch.einsum("bthm,bthmd->bthd", probs.to(v.dtype), vg), lse


class LongNetLayer(TransformerLayer):
    attention_class = DilatedAttention


class LongNetBackbone(TransformerBackbone):
    layer_class = LongNetLayer


class LongNetModel(TransformerModel):
    """LongNet backbone: the Transformer's with dilated attention (same cache, positions)."""

    config_class = LongNetConfig
    arch = "longnet"
    decoder_class = LongNetBackbone
    _no_split_modules = ["LongNetLayer"]


class LongNetForCausalLM(TransformerForCausalLM, GenerationMixin):
    """LongNet causal LM: :class:`LongNetModel` and the LM head."""

    config_class = LongNetConfig
    arch = "longnet"
    backbone_class = LongNetModel
    _no_split_modules = ["LongNetLayer"]


LongNetModelHF = LongNetForCausalLM
