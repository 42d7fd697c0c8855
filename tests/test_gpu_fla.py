"""RetNet's fla branch on CPU: our call into flash-linear-attention's ``chunk_retention`` checked against
the installed fla (fla-core, the ``[gpu]`` and ``[test]`` extras).

fla imports on CPU, but its Triton kernels need a GPU driver ("0 active drivers" on CPU, also with
TRITON_INTERPRET=1). So the real ``chunk_retention`` runs (its argument checks, its fixed decays
``g_gamma``) with only its kernel, ``chunk_simple_gla``, swapped for fla's own naive retention
reference (``fla.ops.retention.naive.naive_retention``), and the model's fla branch runs end to end.
"""

import inspect

import pytest
import torch

from archbench.models import build_model

fla_retention_ops = pytest.importorskip("fla.ops.retention", reason="fla (fla-core) is not installed")
from fla.ops.retention import chunk as fla_chunk  # noqa: E402
from fla.ops.retention.naive import naive_retention  # noqa: E402

from archbench.models.retnet import retention  # noqa: E402

SMALL = dict(vocab_size=50, embed_dim=32, ffn_dim=48, heads=4, layers=2, max_seq_len=256, chunk_size=16)

pytestmark = pytest.mark.usefixtures("one_thread")


def _naive_kernel(calls):
    """``chunk_simple_gla`` as ``chunk_retention`` calls it, computed by fla's naive retention
    (head-first layout, q scaled by dk**-0.5 inside): [B, T, H, d] in, [B, T, H, dv] out."""

    def kernel(q, k, v, scale, g_gamma, initial_state=None, output_final_state=False, cu_seqlens=None, chunk_size=None):
        calls.append(dict(scale=scale, g_gamma=g_gamma, initial_state=initial_state, cu_seqlens=cu_seqlens))
        dk = q.shape[-1]
        qh, kh, vh = (x.transpose(1, 2) for x in (q, k, v))
        o = naive_retention(qh * (scale * dk**0.5), kh, vh).transpose(1, 2)
        return o, None

    return kernel


@pytest.fixture
def fla_on_cpu(monkeypatch):
    calls = []
    monkeypatch.setattr(fla_chunk, "chunk_simple_gla", _naive_kernel(calls))
    monkeypatch.setattr(retention, "FLA_DEVICES", ("cpu",))
    return calls


def test_our_chunkwise_equals_fla_naive_reference_on_the_layout_and_scale_we_pass(fla_on_cpu):
    """Exactly what Retention hands the hook: rotated q, k scaled by dk**-0.5, [B, H, T, d]; fla's
    reference on the [B, T, H, d] tensors fla_retention passes equals our unnormalised chunked sum."""
    torch.manual_seed(0)
    B, H, T, dk, dv = 2, 4, 70, 8, 16
    q, k, v = torch.randn(B, H, T, dk), torch.randn(B, H, T, dk) * dk**-0.5, torch.randn(B, H, T, dv)
    decay = torch.log(1 - 2 ** (-5 - torch.arange(float(H))))  # torchscale's decays = fla's g_gamma
    tables = retention.decay_tables(decay, torch.arange(float(T))[None], None, "chunkwise", 16, False, plain=True)
    assert retention.fla_usable(q, tables, None, False)
    ours, _ = retention.chunked(q, k, v, None, tables, need_state=False)
    theirs = retention.fla_retention(q, k, v)
    assert (ours - theirs).abs().max().item() <= 1e-5
    (call,) = fla_on_cpu
    assert call["scale"] == 1.0 and call["initial_state"] is None and call["cu_seqlens"] is None
    assert torch.allclose(call["g_gamma"], decay)


def test_model_fla_branch_runs_end_to_end_and_matches_ours(fla_on_cpu):
    """The whole chunkwise branch of the model (the group norm's eps after the fla call included)."""
    torch.manual_seed(1)
    model = build_model("retnet", **SMALL).eval()
    x = torch.randint(3, 50, (2, 100))
    with torch.no_grad():
        # use_cache follows the config (True): training's call (no state out) is the one fla serves
        fla = model(input_ids=x, retention_mode="chunkwise", use_cache=False).logits
        assert len(fla_on_cpu) == SMALL["layers"]  # every layer took the fla branch
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(retention, "FLA_DEVICES", ())
            ours = model(input_ids=x, retention_mode="chunkwise", use_cache=False).logits
    assert len(fla_on_cpu) == SMALL["layers"]
    assert (fla - ours).abs().max().item() <= 1e-4


def test_fla_is_skipped_where_it_cannot_compute_ours(fla_on_cpu):
    """Carried state or a cache out (decoding prefill) and packed rows take our chunked path."""
    torch.manual_seed(2)
    model = build_model("retnet", **SMALL).eval()
    x = torch.randint(3, 50, (2, 40))
    mask = torch.ones_like(x)
    mask[0, :5] = 0
    with torch.no_grad():
        model(input_ids=x, retention_mode="chunkwise", use_cache=True)
        model(input_ids=x, attention_mask=mask, retention_mode="chunkwise")
    assert fla_on_cpu == []


def test_our_call_matches_the_installed_chunk_retention_signature():
    """Every keyword we pass is a named parameter of the installed chunk_retention (fla >= 0.5 rejects
    ``head_first``, which only its **kwargs would have taken), and the positional ones are q, k, v."""
    seen = {}

    def record(*args, **kwargs):
        seen.update(args=args, kwargs=kwargs)
        return args[2], None

    q = torch.zeros(1, 2, 3, 4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(retention, "fla_chunk_retention", lambda: record)
        retention.fla_retention(q, q, torch.zeros(1, 2, 3, 5))
    sig = inspect.signature(fla_retention_ops.chunk_retention)
    bound = sig.bind(*seen["args"], **seen["kwargs"])
    named = [n for n, p in sig.parameters.items() if p.kind is not p.VAR_KEYWORD]
    assert list(bound.arguments)[:3] == ["q", "k", "v"] == named[:3]
    assert set(seen["kwargs"]) <= set(named), f"passed through **kwargs: {set(seen['kwargs']) - set(named)}"
    assert seen["args"][0].shape == (1, 3, 2, 4)  # [B, T, H, d]
