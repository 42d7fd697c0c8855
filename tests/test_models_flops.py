"""Architecture facts on the registry: FLOPs per token against torch's FLOP counter on the real models,
closed-form parameter counts against the built models, descriptions, and matching by layer count."""

from __future__ import annotations

import pytest
import torch

from archbench.models import build_model, count_parameters, longnet, transformer
from archbench.models.flop_count import counted_train_flops_per_token as counted_flops_per_token
from archbench.models.flops import budget_steps, train_flops_per_token
from archbench.models.matching import matched
from archbench.models.registry import ARCHS, get_arch
from archbench.models.retnet import plan as retnet_plan
from archbench.models.sizing import analytic_parameters, resolved_settings
from archbench.models.spec import dense

BUILTIN = ["retnet", "transformer", "longnet", "llama", "mamba2"]
SIZES = [
    dict(vocab_size=128, embed_dim=32, ffn_dim=64, heads=2, layers=2),
    dict(vocab_size=256, embed_dim=64, ffn_dim=160, heads=4, layers=3),
]


@pytest.mark.parametrize("arch", BUILTIN)
def test_flops_formula_matches_the_counter(arch):
    """Two sizes x two lengths (RetNet: 64 = one parallel chunk, 256 = chunkwise with the automatic
    chunk of 64; Mamba-2: a padded and a whole scan chunk; LongNet: branches at the context)."""
    ratios = {}
    for hp in SIZES:
        for T in (64, 256):
            kw = {**hp, "max_seq_len": T}
            formula = train_flops_per_token(arch, kw, T)
            ratios[(hp["embed_dim"], T)] = formula / counted_flops_per_token(arch, kw, T)
    assert all(abs(r - 1) <= 0.05 for r in ratios.values()), ratios


def test_flops_charge_each_architecture_its_own_mixer():
    """The terms that the issue found wrong: LongNet's branches fall as r^2, Mamba-2 has no attention
    term, RetNet's cost per token stops growing once it runs chunkwise."""
    hp = dict(vocab_size=256, embed_dim=64, ffn_dim=128, heads=4, layers=2)
    s = resolved_settings("longnet", **hp, max_seq_len=512, segment_lengths=[512], dilated_ratios=[1])
    s["seq_len"] = 512
    weights = dense(s, transformer.params(s, include_embeddings=False))
    full = longnet.flops(s) - weights
    assert full == 12 * 512 * 64 * 2  # one ratio-1 branch over the context = dense attention
    for r in (2, 4, 8):  # a second branch at ratio r adds full / r^2 (not full / r)
        two = {**s, "segment_lengths": [512, 512], "dilated_ratios": [1, r]}
        assert longnet.flops(two) - weights == pytest.approx(full * (1 + 1 / r**2))
    m = dict(hp, ssm_state_size=16, ssm_chunk_size=64)
    grow = train_flops_per_token("mamba2", m, 1024) - train_flops_per_token("mamba2", m, 256)
    assert 0 <= grow < 0.01 * train_flops_per_token("mamba2", m, 256)  # linear scan: flat per token
    assert retnet_plan({**hp, "seq_len": 256}) == ("chunkwise", 64)
    assert retnet_plan({**hp, "seq_len": 64}) == ("parallel", 64)
    r256, r4096 = (train_flops_per_token("retnet", hp, t) for t in (256, 4096))
    assert r4096 / r256 < 1.05  # chunkwise: nearly flat in T (the [N+1, N] state product), attention grows
    t256, t4096 = (train_flops_per_token("transformer", hp, t) for t in (256, 4096))
    assert t4096 / t256 > 2


@pytest.mark.parametrize("arch", BUILTIN)
def test_closed_form_parameters_match_the_model(arch):
    variants = [{}, {"tie_word_embeddings": True}]
    variants += {
        "retnet": [{"value_embed_dim": 96, "layers": 3}],
        "transformer": [{"position": "learned", "layers": 3}, {"block": "retnet"}],
        "longnet": [{"position": "learned"}, {"block": "retnet"}],
        "llama": [{"layers": 3, "ffn_dim": 96}],
        "mamba2": [{"ssm_head_dim": 16, "ssm_state_size": 8}, {"ssm_expand": 1, "ssm_conv_kernel": 3}],
    }[arch]
    for extra in variants:
        kw = {**SIZES[1], **extra}
        with torch.device("meta"):
            model = build_model(arch, **kw)
        for emb in (True, False):
            assert analytic_parameters(arch, emb, **kw) == count_parameters(model, emb), (extra, emb)


def test_descriptions_and_beyond_context_on_the_registry():
    assert get_arch("retnet").beyond_context == "chunkwise"
    assert get_arch("mamba2").beyond_context == "recurrent"
    assert get_arch("llama").beyond_context == "rope"
    assert get_arch("transformer").description({"block": "retnet"}) == {
        "mixer": "softmax attention",
        "block": "RetNet block (GLU FFN, RMSNorm, no biases)",
    }
    assert get_arch("longnet").description({})["block"].startswith("torchscale Transformer block")
    for name in BUILTIN:
        assert set(ARCHS[name].description({})) == {"mixer", "block"}


def test_an_entry_without_facts_still_works():
    """Plugin entries without params / flops / describe: counted on the meta device, no FLOPs, the
    display name as the description."""
    import dataclasses

    bare = dataclasses.replace(get_arch("llama"), params=None, flops=None, describe=None)
    assert bare.param_count() is None and bare.flops_fn() is None
    assert bare.description() == {"mixer": "Transformer++ (Llama)", "block": "Transformer++ (Llama)'s own block"}


def test_resolved_settings_fill_the_config_defaults():
    s = resolved_settings("retnet", vocab_size=100, embed_dim=32, heads=2, layers=1, ffn_dim=64, max_seq_len=64)
    assert s["value_embed_dim"] == 64 and s["chunk_size"] is None
    s = resolved_settings("longnet", vocab_size=100, embed_dim=32, heads=2, layers=1, ffn_dim=64, max_seq_len=64)
    assert s["segment_lengths"] == [16, 32, 64] and s["dilated_ratios"] == [1, 2, 4]


def test_match_by_layers_gives_mamba2_two_blocks_per_layer():
    hp = dict(SIZES[0], ssm_state_size=16)
    assert matched("mamba2", hp, "llama", hp, by="layers")["layers"] == 2 * hp["layers"]
    assert matched("transformer", hp, "retnet", hp, by="layers")["layers"] == hp["layers"]
    width = matched("mamba2", hp, "retnet", hp, by="width")
    assert width["layers"] == hp["layers"] and width["ssm_state_size"] != 16
    with pytest.raises(Exception, match="model.match_by"):
        matched("mamba2", hp, "retnet", hp, by="depth")


def test_budget_steps():
    s = {"tokens_per_param": 4, "batch_size": 8, "accumulate_grad_batches": 1, "seq_len": 128}
    assert budget_steps(s, 1_000_000) == 3907  # ceil(4e6 / 1024)
    assert budget_steps({**s, "tokens_per_param": None}, 1_000_000) is None


def test_descriptions_and_formulas_load_without_torch():
    """The report reads descriptions (and may compute FLOPs of stock models) in torch-free jobs."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom archbench.models.registry import ARCHS\nimport archbench.models.flops\n"
        "[a.description({}) for a in ARCHS.values()]\n"
        "from archbench.models.flops import train_flops_per_token\n"
        "train_flops_per_token('mamba2', dict(vocab_size=64, embed_dim=32, heads=2, layers=1), 64)\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
