"""The wrapped stock models (llama = Transformer++, mamba2) and the same-block Transformer:
training step, Auto round trip without remote code, cached generate == uncached == naive loop,
left padding, parameter matching for every pair, Mamba-2's constant decoding state."""

import json

import pytest
import torch

from archbench.models import build_model, count_parameters, register
from archbench.models.matching import count, match_width
from archbench.models.registry import ARCHS

register()
NEW = 10
TINY = dict(vocab_size=60, embed_dim=32, ffn_dim=48, heads=4, layers=2, max_seq_len=64)
MODERN = {"llama": {}, "mamba2": {"ssm_chunk_size": 4}, "transformer_retnet_block": {"block": "retnet"}}

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(case, seed=0):
    torch.manual_seed(seed)
    arch = "transformer" if case.startswith("transformer") else case
    return build_model(arch, **TINY, **MODERN[case]).eval()


def _greedy(model, ids, **kw):
    return model.generate(
        ids,
        max_new_tokens=NEW,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=None,
        return_dict_in_generate=True,
        output_scores=True,
        **kw,
    )


def _naive(model, ids):
    with torch.no_grad():
        for _ in range(NEW):
            nxt = model(input_ids=ids, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], 1)
    return ids


def assert_greedy_consistent(model, prompt):
    """Cached greedy decoding = uncached = recomputing the whole prefix per token, and not a repeat."""
    cached, plain = _greedy(model, prompt, use_cache=True), _greedy(model, prompt, use_cache=False)
    assert torch.equal(cached.sequences, plain.sequences)
    assert torch.equal(cached.sequences, _naive(model, prompt))
    assert max((a - b).abs().max().item() for a, b in zip(cached.scores, plain.scores)) <= 1e-4
    assert len(set(cached.sequences[0, prompt.shape[1] :].tolist())) > 1  # not a degenerate repeat


def test_wrapped_models_are_the_stock_classes_with_pipeline_names():
    from transformers import LlamaForCausalLM, Mamba2ForCausalLM

    llama, mamba = _model("llama"), _model("mamba2")
    assert type(llama) is LlamaForCausalLM and type(mamba) is Mamba2ForCausalLM
    c = llama.config
    assert (c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_hidden_layers) == (32, 48, 4, 2)
    assert (c.max_position_embeddings, c.vocab_size, c.attention_bias, c.mlp_bias) == (64, 60, False, False)
    assert c._attn_implementation == "sdpa"  # CPU; flash_attention_2 only on CUDA with flash-attn
    assert not any(n.endswith("bias") for n, _ in llama.named_parameters())
    m = mamba.config  # inner 2 x 32 = 64 channels in `heads` = 4 SSM heads of 16
    assert (m.hidden_size, m.num_heads, m.head_dim, m.expand, m.state_size, m.chunk_size) == (32, 4, 16, 2, 16, 4)
    assert m.max_position_embeddings == 64
    with pytest.raises(TypeError, match="learning_rate"):
        build_model("llama", learning_rate=1.0, **TINY)


def test_constraints_name_the_keys():
    from archbench.models.constraints import ConstraintError

    with pytest.raises(ConstraintError, match=r"embed_dim 32 is not divisible by heads 5") as err:
        ARCHS["llama"].check()({"embed_dim": 32, "heads": 5})
    assert err.value.keys == ("embed_dim", "heads")
    with pytest.raises(ConstraintError, match=r"ssm_head_dim 24 must divide ssm_expand x embed_dim = 64") as err:
        ARCHS["mamba2"].check()({"embed_dim": 32, "heads": 4, "ssm_head_dim": 24})
    assert err.value.keys == ("ssm_head_dim", "ssm_expand", "embed_dim")
    ARCHS["mamba2"].check()({"embed_dim": 32, "heads": 4, "ssm_head_dim": 16})  # 4 heads of 16: fine
    ARCHS["mamba2"].check()({"embed_dim": 32, "heads": 6, "ssm_head_dim": 16})  # heads ignored when set
    with pytest.raises(ValueError, match="heads 6 must divide"):  # the settings class runs the same rule
        build_model("mamba2", **{**TINY, "heads": 6})


@pytest.mark.parametrize("case", list(MODERN))
def test_training_step_lowers_the_loss(case):
    from archbench.training.module import CausalLMModule

    arch = "transformer" if case.startswith("transformer") else case
    torch.manual_seed(0)
    module = CausalLMModule(arch, {**TINY, **MODERN[case]}, learning_rate=1e-2)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-2)
    batch = torch.randint(3, 60, (4, 17))
    losses = []
    for _ in range(5):
        loss = module._loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1
    assert all(p.grad is not None for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize("case", list(MODERN))
def test_save_pretrained_auto_round_trip_without_remote_code(case, tmp_path):
    from transformers import AutoModelForCausalLM

    model = _model(case)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    stock = not case.startswith("transformer")
    if stock:  # a stock type: no modeling code copied, nothing remote to trust
        assert saved["model_type"] == case and "auto_map" not in saved
        assert not list(tmp_path.glob("*.py"))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, trust_remote_code=not stock).eval()
    assert type(loaded) is type(model)
    ids = torch.randint(3, 60, (2, 12))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert count_parameters(loaded) == count_parameters(model)


@pytest.mark.parametrize("case", list(MODERN))
def test_greedy_cache_equals_no_cache_and_naive(case):
    model = _model(case)
    prompt = torch.randint(3, 60, (1, 9), generator=torch.Generator().manual_seed(100))
    assert_greedy_consistent(model, prompt)


@pytest.mark.parametrize("case", list(MODERN))
def test_left_padded_batch_equals_rows_alone(case):
    model = _model(case, seed=1)
    p0, p1 = torch.randint(3, 60, (1, 9)), torch.randint(3, 60, (1, 4))
    batch = torch.zeros(2, 9, dtype=torch.long)
    batch[0], batch[1, 5:] = p0, p1
    mask = torch.zeros_like(batch)
    mask[0], mask[1, 5:] = 1, 1
    both = _greedy(model, batch, attention_mask=mask)
    alone0, alone1 = _greedy(model, p0), _greedy(model, p1)
    assert torch.equal(both.sequences[0], alone0.sequences[0])
    assert torch.equal(both.sequences[1, 5:], alone1.sequences[0])
    assert max((s[1] - a[0]).abs().max().item() for s, a in zip(both.scores, alone1.scores)) <= 1e-4


def test_mamba2_state_bytes_are_constant_in_context_and_llama_cache_grows():
    from archbench.evaluation.latency import cached_mode, trial

    mamba, llama = _model("mamba2"), _model("llama")
    assert (cached_mode(mamba), cached_mode(llama)) == ("recurrent", "kv_cache")
    state = {T: trial(mamba, torch.randint(3, 60, (1, T)), "recurrent", 2)[2] for T in (8, 64, 300)}
    # From the model's own config, not one library release's layout: per layer the convolution window
    # (intermediate + 2 x groups x state channels x kernel taps) and the SSM state (heads x head dim x
    # state size), in the parameters' dtype.
    c, width = mamba.config, next(mamba.parameters()).element_size()
    conv = (c.expand * c.hidden_size + 2 * c.n_groups * c.state_size) * c.conv_kernel
    ssm = c.num_heads * c.head_dim * c.state_size
    assert set(state.values()) == {c.num_hidden_layers * (conv + ssm) * width}
    assert set(state.values()) == {2 * ((64 + 32) * 4 + 4 * 16 * 16) * 4}  # the test model's sizes, by hand
    kv = {T: trial(llama, torch.randint(3, 60, (1, T)), "kv_cache", 2)[2] for T in (8, 64)}
    lc = llama.config
    kv_width = lc.num_key_value_heads * (lc.hidden_size // lc.num_attention_heads)
    assert kv == {T: lc.num_hidden_layers * 2 * T * kv_width * 4 for T in (8, 64)}  # layers x (k, v) x T x width x fp32
    assert kv == {T: 2 * 2 * T * 32 * 4 for T in (8, 64)}


SWEEP = [
    dict(embed_dim=d, heads=4, layers=L, ffn_dim=f, vocab_size=512, max_seq_len=64)
    for d, L, f in ((32, 1, 48), (64, 2, 128), (128, 2, 256), (96, 3, 200), (256, 4, 512))
]


@pytest.mark.parametrize("reference", ["retnet", "llama"])
@pytest.mark.parametrize("arch", ["transformer", "longnet", "llama", "mamba2", "retnet"])
def test_matching_within_two_percent_over_a_size_sweep(arch, reference):
    if arch == reference:
        pytest.skip("an architecture is its own reference")
    knob = ARCHS[arch].width_knob
    for hp in SWEEP:
        width = match_width(arch, hp, reference, hp)
        mine = {**hp, knob: width}
        for emb in (False, True):
            a, b = count(arch, mine, emb), count(reference, hp, emb)
            assert abs(a - b) / b <= 0.02, (hp, emb, a, b)
        # the nearest width: one step either way is no closer
        near = [
            abs(count(arch, {**hp, knob: w}, False) - count(reference, hp, False))
            for w in (width - 1, width, width + 1)
        ]
        assert near[1] == min(near)


def test_default_size_matches_todays_numbers():
    hp = dict(vocab_size=4096, embed_dim=128, ffn_dim=256, heads=4, layers=2, max_seq_len=128)
    assert match_width("transformer", hp, "retnet", hp) == 628  # the default run's Transformer FFN
    assert match_width("transformer", {**hp, "block": "retnet"}, "retnet", hp) == 427
    assert match_width("llama", hp, "retnet", hp) == 427
    built = build_model("transformer", **{**hp, "ffn_dim": 628})
    assert count_parameters(built, False) == count("transformer", {**hp, "ffn_dim": 628}, False) == 459448


def test_model_kwargs_matches_every_arch_to_match_to():
    from archbench.training.run import model_kwargs

    settings = dict(
        embed_dim=128,
        ffn_dim=256,
        heads=4,
        layers=2,
        seq_len=128,
        dropout=0.0,
        match_params=True,
        match="params",
        match_by="width",
        match_to="retnet",
        accelerator="cpu",
        chunk_size=512,
        ssm_state_size=16,
        block="transformer",
    )
    assert model_kwargs("transformer", settings, 4096)["ffn_dim"] == 628
    assert model_kwargs("retnet", settings, 4096)["ffn_dim"] == 256
    kw = model_kwargs("mamba2", settings, 4096)
    assert "ffn_dim" not in kw and "chunk_size" not in kw and kw["ssm_state_size"] == 485
    to_llama = model_kwargs("retnet", {**settings, "match_to": "llama"}, 4096)
    assert abs(
        count("retnet", to_llama, False)
        - count("llama", model_kwargs("llama", {**settings, "match_to": "llama"}, 4096), False)
    ) <= 0.02 * count("retnet", to_llama, False)


def test_pair_kind_names_what_a_comparison_varies():
    from archbench.report.kinds import pair_kind

    assert pair_kind("retnet", "transformer", "retnet") == (
        "same block (RetNet block (GLU FFN, RMSNorm, no biases)), different token mixer: "
        "multi-scale retention vs softmax attention"
    )
    assert pair_kind("retnet", "transformer", "transformer").startswith("different block and mixer")
    assert pair_kind("retnet", "transformer").startswith("different block and mixer")  # the default block
    assert pair_kind("llama", "mamba2").startswith("different block and mixer: softmax attention with RoPE in a Llama")


def test_llama_picks_flash_attention_only_on_cuda_with_flash_attn(monkeypatch):
    from archbench.models import llama

    monkeypatch.setattr(llama, "flash_attn_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert llama.LlamaSettings(**TINY).to_hf()._attn_implementation == "sdpa"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert llama.attn_implementation() == "flash_attention_2"
    monkeypatch.setattr(llama, "flash_attn_available", lambda: False)
    assert llama.attn_implementation() == "sdpa"
