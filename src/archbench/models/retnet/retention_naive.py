"""Quadratic reference of retention.py's forms (the formula written out, float64), for tests."""

from __future__ import annotations

import torch


def naive_retention(q, k, v, decay, pos=None):
    """o_n = sum_{m<=n} g^(p_n - p_m) (q_n . k_m) v_m / sqrt(c(p_n)),  c(p) = sum_{j<=p} g^j.

    q/k [B, H, T, dk] (rotated, k scaled), v [B, H, T, dv], decay [H] log g, pos [B|1, T] positions
    (default 0..T-1). Returns o [B, H, T, dv] in float64 (before the group norm)."""
    q, k, v, g = q.double(), k.double(), v.double(), decay.double().view(1, -1, 1, 1)
    T = q.shape[2]
    pos = (torch.arange(T)[None] if pos is None else pos).double().to(q.device)
    dist = (pos[:, :, None] - pos[:, None, :]).unsqueeze(1)  # [B|1, 1, T, T]
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    w = torch.where(causal, torch.exp(g * dist.clamp_min(0)), 0.0)
    c = (1 - torch.exp(g * (pos[:, None, :, None] + 1))) / (1 - torch.exp(g))
    return ((q @ k.transpose(-1, -2)) * w) @ v / c.sqrt()
