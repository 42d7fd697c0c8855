"""LongNet's dilated attention against explicit-mask references, and the xPos Transformer
against torchscale's own implementation."""

import pytest
import torch

from archbench.models import build_model
from archbench.models.longnet.modeling import DilatedAttention
from archbench.models.transformer.modeling import AttnContext

SMALL = dict(vocab_size=50, embed_dim=32, ffn_dim=48, heads=4, layers=2, max_seq_len=64)


pytestmark = pytest.mark.usefixtures("one_thread")


def _reference(q, k, v, segments, ratios):
    """Dilated attention with dense masks: head h, branch (w, r) lets query n see key j iff both
    are in the same segment, j <= n, and both positions are = h (mod r)."""
    B, T, H, d = q.shape
    n, j = torch.arange(T)[:, None], torch.arange(T)[None]
    outs, lses = [], []
    for w, r in zip(segments, ratios):
        h = torch.arange(H)[:, None, None] % r
        allowed = (n // w == j // w) & (j <= n) & (j % r == h) & (n % r == h)  # [H, T, T]
        s = torch.einsum("bthd,bshd->bhts", q, k).masked_fill(~allowed, float("-inf"))
        lse = torch.logsumexp(s, -1)  # [B, H, T]
        p = torch.exp(s - lse.unsqueeze(-1).clamp_min(-1e30))
        outs.append(torch.einsum("bhts,bshd->bthd", p, v))
        lses.append(lse.transpose(1, 2))
    wts = torch.softmax(torch.stack(lses), 0).unsqueeze(-1)
    return (wts * torch.stack(outs)).sum(0)


@pytest.mark.parametrize("T", [5, 16, 23])
def test_dilated_attention_matches_mask_reference_in_both_paths(T):
    torch.manual_seed(T)
    segments, ratios = [4, 8, 16], [1, 2, 4]
    attn = DilatedAttention.__new__(DilatedAttention)
    attn.args = type("A", (), {"segment_lengths": segments, "dilated_ratios": ratios})()
    q, k, v = (torch.randn(2, T, 4, 8) for _ in range(3))
    ref = _reference(q, k, v, segments, ratios)
    seg = attn.attend(q, k, v, AttnContext(qpos=torch.arange(T)[None]), 0.0)
    assert (seg - ref).abs().max().item() <= 1e-5
    # decode path: each query alone against the position-indexed keys
    for t in (0, T // 2, T - 1):
        ctx = AttnContext(qpos=torch.tensor([[t]]), prior=True)
        one = attn.attend(q[:, t : t + 1], k[:, : t + 1], v[:, : t + 1], ctx, 0.0)
        assert (one[:, 0] - ref[:, t]).abs().max().item() <= 1e-5
    # dilation matters: the dense result is different
    dense = _reference(q, k, v, [T], [1])
    assert (dense - ref).abs().max().item() > 1e-2


def test_one_full_segment_ratio_one_equals_dense_transformer():
    torch.manual_seed(0)
    dense = build_model("transformer", **SMALL).eval()
    longnet = build_model("longnet", segment_lengths=[64], dilated_ratios=[1], **SMALL).eval()
    longnet.load_state_dict(dense.state_dict())
    x = torch.randint(0, 50, (2, 29))
    with torch.no_grad():
        diff = (longnet(input_ids=x).logits - dense(input_ids=x).logits).abs().max().item()
    assert diff <= 1e-5
    dilated = build_model("longnet", segment_lengths=[8, 16], dilated_ratios=[1, 2], **SMALL).eval()
    dilated.load_state_dict(dense.state_dict())
    with torch.no_grad():
        assert (dilated(input_ids=x).logits - dense(input_ids=x).logits).abs().max().item() > 1e-3


def test_longnet_config_validation():
    with pytest.raises(ValueError, match="divide"):
        build_model("longnet", segment_lengths=[6], dilated_ratios=[4], **SMALL)
    with pytest.raises(ValueError, match="contain 1"):
        build_model("longnet", segment_lengths=[8, 16], dilated_ratios=[2, 4], **SMALL)
    with pytest.raises(ValueError, match="equal length"):
        build_model("longnet", segment_lengths=[8, 16], dilated_ratios=[1], **SMALL)


def test_xpos_transformer_matches_torchscale_xpos():
    """torchscale's Decoder with xpos_rel_pos=True on the same weights (it re-rotates every key
    per step; we rotate once with a fixed centre: same scores)."""
    from torchscale.architecture.decoder import Decoder
    from torchscale.component.embedding import TextEmbedding

    torch.manual_seed(1)
    model = build_model("transformer", **SMALL).eval()
    args = model.config.to_torchscale()
    args.xpos_rel_pos = True
    ts = Decoder(args, embed_tokens=TextEmbedding(50, 32, 0)).eval()
    weights = {**model.decoder.state_dict(), "output_projection.weight": model.lm_head.weight}
    missing = ts.load_state_dict(weights, strict=False).missing_keys
    assert all(key.endswith("xpos.scale") for key in missing)
    x = torch.randint(0, 50, (2, 37))
    with torch.no_grad():
        assert (ts(x)[0] - model(input_ids=x).logits).abs().max().item() <= 1e-5


def test_learned_positions_are_used_and_bounded():
    torch.manual_seed(2)
    model = build_model("transformer", position="learned", **SMALL).eval()
    x = torch.randint(0, 50, (1, 10))
    with torch.no_grad():
        a = model(input_ids=x).logits
        model.decoder.embed_positions.weight[3].add_(torch.randn(32))  # (a constant would be LN-invariant)
        b = model(input_ids=x).logits
    assert (a[0, :3] - b[0, :3]).abs().max() <= 1e-5 and (a[0, 3:] - b[0, 3:]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="max_seq_len"):
        model(input_ids=torch.ones(1, 65, dtype=torch.long))
