"""flash-attn paths on CPU: models/common.py's flash branches (Transformer, LongNet with its log-sum-exp
branch combination) run end to end on a stand-in with flash-attn 2's exact signature and semantics
(tests/gpu_standins.py; flash-attn itself needs CUDA to import) and match the default SDPA / explicit
path; llama's ``flash_attention_2`` selection picks the package when present and falls back otherwise."""

import inspect
import sys

import pytest
import torch
import torch.nn.functional as F

from archbench.models import build_model, common
from gpu_standins import flash_attn_func, install_flash_attn

SMALL = dict(vocab_size=50, embed_dim=32, ffn_dim=48, heads=4, layers=2, max_seq_len=64)
LONGNET = dict(segment_lengths=[4, 8, 16], dilated_ratios=[1, 2, 4])

# flash-attn 2.x, flash_attn/flash_attn_interface.py (Dao-AILab/flash-attention), read from the source
FLASH_ATTN_2_SIGNATURE = (
    "(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0, "
    "alibi_slopes=None, deterministic=False, return_attn_probs=False)"
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def flash(monkeypatch):
    """The stand-in behind common.py's flash branches, on CPU and for fp32 too; records every call."""
    calls = []

    def spy(*args, **kwargs):
        inspect.signature(flash_attn_func).bind(*args, **kwargs)  # our call fits flash-attn's signature
        calls.append(kwargs)
        return flash_attn_func(*args, **kwargs)

    monkeypatch.setattr(common, "_flash_attn_func", lambda: spy)
    monkeypatch.setattr(common, "FLASH_DEVICES", ("cpu",))
    monkeypatch.setattr(common, "FLASH_DTYPES", (torch.float32, torch.bfloat16))
    return calls


def test_standin_has_flash_attn_2_signature():
    assert str(inspect.signature(flash_attn_func)) == FLASH_ATTN_2_SIGNATURE


@pytest.mark.parametrize("causal", [False, True])
def test_standin_semantics_against_sdpa(causal):
    """Layout [B, T, H, D], default scale D**-0.5, softmax_lse [B, H, T], GQA heads."""
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 7, 4, 8), torch.randn(2, 7, 2, 8), torch.randn(2, 7, 2, 8)
    out, lse, s_dmask = flash_attn_func(q, k, v, causal=causal, return_attn_probs=True)
    kk, vv = (x.repeat_interleave(2, 2).transpose(1, 2) for x in (k, v))
    ref = F.scaled_dot_product_attention(q.transpose(1, 2), kk, vv, is_causal=causal).transpose(1, 2)
    assert (out - ref).abs().max().item() <= 1e-5
    scores = (q.transpose(1, 2) @ kk.transpose(-1, -2)) * 8**-0.5
    if causal:
        scores = scores.masked_fill(~torch.ones(7, 7, dtype=torch.bool).tril(), float("-inf"))
    assert lse.shape == (2, 4, 7) and lse.dtype == torch.float32
    assert (lse - torch.logsumexp(scores, -1)).abs().max().item() <= 1e-5
    assert s_dmask.numel() == 0  # only returned with dropout
    assert torch.equal(flash_attn_func(q, k, v, causal=causal), out)


def test_standin_causal_mask_is_bottom_right_and_empty_rows_are_marked():
    """seqlen_q = 5 > seqlen_k = 2: rows 0-2 see no key (out 0, lse +inf as the kernel writes it)."""
    q, k, v = torch.randn(1, 5, 1, 4), torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4)
    out, lse, _ = flash_attn_func(q, k, v, causal=True, return_attn_probs=True)
    assert torch.equal(out[0, :3], torch.zeros(3, 1, 4))
    assert lse[0, 0, :3].tolist() == [float("inf")] * 3 and lse[0, 0, 3:].isfinite().all()
    last = F.softmax(q[0, 4, 0] @ k[0, :, 0].T / 2, -1) @ v[0, :, 0]  # the last row sees both keys
    assert (out[0, 4, 0] - last).abs().max() <= 1e-6


def test_attention_lse_flash_branch_maps_empty_rows_to_minus_inf(flash):
    """common.attention_lse promises lse = -inf for a row with no key whichever kernel runs."""
    torch.manual_seed(1)
    q, k, v = torch.randn(1, 5, 2, 4), torch.randn(1, 2, 2, 4), torch.randn(1, 2, 2, 4)
    out, lse = common.attention_lse(q, k, v, causal=True)
    assert flash and flash[-1]["return_attn_probs"] is True
    ref_out, ref_lse = _default(common.attention_lse, q, k, v, causal=True)
    assert torch.equal(lse.isinf(), ref_lse.isinf()) and (lse[:, :3] == float("-inf")).all()
    assert (lse[:, 3:] - ref_lse[:, 3:]).abs().max().item() <= 1e-5
    assert (out - ref_out).abs().max().item() <= 1e-5


def _default(fn, *args, **kwargs):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(common, "FLASH_DEVICES", ())
        return fn(*args, **kwargs)


def _model(arch, seed):
    torch.manual_seed(seed)
    return build_model(arch, **SMALL, **(LONGNET if arch == "longnet" else {}))


@pytest.mark.parametrize("arch", ["transformer", "longnet"])
def test_flash_path_matches_default_path_fp32(flash, arch):
    """Forward and backward through the flash branch (LongNet: attention_lse + its branch mix) vs SDPA."""
    model = _model(arch, 2)
    x = torch.randint(3, 50, (2, 37))
    out = model(input_ids=x, labels=x)
    out.loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    n = len(flash)
    assert n >= SMALL["layers"] * (len(LONGNET["segment_lengths"]) if arch == "longnet" else 1)
    assert all(c["causal"] and c["softmax_scale"] == 1.0 for c in flash)
    assert all(c.get("return_attn_probs") for c in flash) == (arch == "longnet")
    model.zero_grad()
    ref = _default(model, input_ids=x, labels=x)
    _default(ref.loss.backward)
    assert len(flash) == n  # the default path did not call it
    assert (out.logits - ref.logits).abs().max().item() <= 1e-5
    for g, p in zip(grads, model.parameters()):
        assert (g - p.grad).abs().max().item() <= 1e-5


def test_flash_branches_match_default_in_bf16_to_one_rounding(flash):
    """bf16 operands: the two kernels differ only in rounding their fp32 results to bf16, so outputs agree
    to one bf16 step (2**-7 relative) and the fp32 log-sum-exps closely (the default path forms bf16 scores)."""
    torch.manual_seed(5)
    q, k, v = (torch.randn(2, 40, 4, 8).bfloat16() for _ in range(3))
    q = q * 8**-0.5
    out = common.attention(q, k, v, causal=True)
    ref = _default(common.attention, q, k, v, causal=True)
    assert out.dtype == torch.bfloat16 and (out - ref).abs().max() <= 2**-7 * ref.abs().max()
    (out, lse), (ref, ref_lse) = (
        common.attention_lse(q, k, v, causal=True),
        _default(common.attention_lse, q, k, v, causal=True),
    )
    assert (out - ref).abs().max() <= 2**-7 * ref.abs().max()
    assert (lse - ref_lse).abs().max().item() <= 2e-2


@pytest.mark.parametrize("arch", ["transformer", "longnet"])
def test_flash_path_matches_default_path_under_bf16_autocast(flash, arch):
    """bf16 autocast, as training with precision bf16-mixed runs: the flash branch is taken for the bf16
    queries. Per-step rounding differences compound through the layers (measured: logits differ by up to
    0.06 between the two bf16 paths, as much as either differs from fp32), so the check is on the
    next-token probabilities: within 1e-2 (measured 3.3e-3)."""
    model = _model(arch, 3).eval()
    x = torch.randint(3, 50, (2, 37))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fl = model(input_ids=x).logits
        assert flash and len(flash) >= SMALL["layers"]
        ref = _default(model, input_ids=x).logits
    assert (fl.softmax(-1) - ref.softmax(-1)).abs().max().item() <= 1e-2


def test_decode_steps_use_flash_without_mask(flash):
    """A single decoded token (uniform cache) takes the flash path too; prefill + steps = full forward."""
    model = _model("transformer", 4).eval()
    x = torch.randint(3, 50, (1, 12))
    with torch.no_grad():
        full = _default(model, input_ids=x).logits
        out = model(input_ids=x[:, :8], use_cache=True)
        steps = [out.logits]
        for t in range(8, 12):
            out = model(input_ids=x[:, t : t + 1], cache=out.cache, use_cache=True)
            steps.append(out.logits)
    assert any(not c["causal"] for c in flash)
    assert (torch.cat(steps, 1) - full).abs().max().item() <= 1e-5


def test_llama_selects_flash_attention_2_only_with_cuda_and_the_package(monkeypatch):
    from archbench.models import llama

    def pick(cuda: bool, package: bool):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch.cuda, "is_available", lambda: cuda)
            if package:
                install_flash_attn(mp)
            else:
                mp.setitem(sys.modules, "flash_attn", None)  # import (and find_spec) fails
            llama.flash_attn_available.cache_clear()
            try:
                return llama.attn_implementation(), llama.LlamaSettings(vocab_size=50, embed_dim=32).to_hf()
            finally:
                llama.flash_attn_available.cache_clear()

    impl, cfg = pick(cuda=True, package=True)
    assert impl == cfg._attn_implementation == "flash_attention_2"
    for cuda, package in ((True, False), (False, True), (False, False)):
        impl, cfg = pick(cuda, package)
        assert impl == cfg._attn_implementation == "sdpa", (cuda, package)
