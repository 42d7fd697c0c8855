"""The native Mamba-2 hybrid (model.attention_every / model.attention_layers on mamba2): transformers' stock
NemotronH with only Mamba-2 and attention layers. attention_every 0 stays the stock Mamba2ForCausalLM bit
for bit; at 1-in-4 and 1-in-2 attention: the Mamba-2 block is Mamba2ForCausalLM's, cached greedy ==
uncached == naive, the chunked forward == step-by-step decoding, closed-form parameters exact, FLOPs
against torch's counter, state bytes of the mixed cache, parameter matching within 2%, Auto round trip
without remote code. Tiny sizes; scan chunk = the inputs' length (the reference scan pads to chunks)."""

from __future__ import annotations

import json

import pytest
import torch

from archbench.models import build_model, count_parameters, register
from archbench.models.constraints import ConstraintError
from archbench.models.flop_count import counted_train_flops_per_token
from archbench.models.flops import train_flops_per_token
from archbench.models.mamba2 import Mamba2Settings, state_bytes
from archbench.models.mamba2.modeling import build
from archbench.models.matching import count, match_width
from archbench.models.registry import ARCHS
from archbench.models.sizing import analytic_parameters, make_config, resolved_settings
from test_models_modern import (  # generate / the whole prefix per token, NEW = 10 tokens
    _greedy,
    assert_greedy_consistent,
)

register()
pytestmark = pytest.mark.usefixtures("one_thread")

T = 16  # test inputs' length = the scan chunk
TINY = dict(vocab_size=60, embed_dim=32, heads=4, layers=4, max_seq_len=64, ssm_chunk_size=T)
CASES = {"1-in-4": dict(attention_every=4), "1-in-2": dict(attention_every=2)}
PATTERNS = {"1-in-4": "MMMA", "1-in-2": "MAMA"}


def _model(case, seed=0, **extra):
    torch.manual_seed(seed)
    return build_model("mamba2", **TINY, **CASES[case], **extra).eval()


def _ids(n=2, t=T, seed=7):
    return torch.randint(3, 60, (n, t), generator=torch.Generator().manual_seed(seed))


def test_attention_every_0_is_the_stock_mamba2_bit_for_bit():
    from transformers import Mamba2ForCausalLM

    torch.manual_seed(0)
    reference = Mamba2ForCausalLM(Mamba2Settings(**TINY).to_hf()).eval()  # how main builds mamba2
    for off in ({}, {"attention_every": 0}, {"attention_layers": []}, {"attention_every": 0, "attention_layers": []}):
        torch.manual_seed(0)
        model = build_model("mamba2", **TINY, **off).eval()
        assert type(model) is Mamba2ForCausalLM
        assert model.config.to_dict() == reference.config.to_dict()
        ours, theirs = model.state_dict(), reference.state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
        with torch.no_grad():
            assert torch.equal(model(_ids()).logits, reference(_ids()).logits)
    assert "attention_every" not in make_config("mamba2", **TINY, attention_every=0).to_dict()


@pytest.mark.parametrize("case", list(CASES))
def test_hybrid_is_the_stock_nemotron_h_with_mamba2_and_attention_layers_only(case):
    from transformers import NemotronHForCausalLM

    model = _model(case)
    c = model.config
    assert type(model) is NemotronHForCausalLM and c.model_type == "nemotron_h"
    assert c.hybrid_override_pattern == PATTERNS[case].replace("A", "*")  # M = Mamba-2, * = attention
    assert set(c.layers_block_type) == {"linear_attention", "full_attention"}  # no MLP / MoE layers
    assert (c.num_attention_heads, c.num_key_value_heads, c.head_dim) == (4, 4, 8)  # Llama's geometry
    assert (c.mamba_num_heads, c.mamba_head_dim, c.ssm_state_size, c.n_groups, c.chunk_size) == (4, 16, 16, 1, T)
    assert c.archbench_arch == "mamba2" and c.max_position_embeddings == 64
    assert not any(n.endswith(".bias") and "conv1d" not in n for n, _ in model.named_parameters())
    for i, layer in enumerate(model.model.layers):  # a block = RMSNorm + mixer + residual, nothing else
        assert {n for n, _ in layer.named_children()} == {"norm", "mixer"}
        want = {"M": "NemotronHMamba2Mixer", "A": "NemotronHAttention"}[PATTERNS[case][i]]
        assert type(layer.mixer).__name__ == want
    assert (
        ARCHS["mamba2"]
        .description(resolved_settings("mamba2", **TINY, **CASES[case]))["mixer"]
        .endswith(f"layers {PATTERNS[case]} ({PATTERNS[case].count('A')} of 4 attention)")
    )


def test_the_mamba2_block_is_mamba2s_and_a_hybrid_starts_from_the_pure_model_of_its_seed():
    """An all-Mamba-2 NemotronH given a stock Mamba2ForCausalLM's weights computes the same logits bit for
    bit (the two libraries' blocks are one computation), and the hybrid of a seed holds the pure model of
    that seed in every Mamba-2 layer, its embeddings, final norm and head."""
    torch.manual_seed(0)
    pure = build_model("mamba2", **TINY).eval()
    torch.manual_seed(0)
    all_mamba = build(Mamba2Settings(**TINY)._hybrid([])).eval()  # no attention layer: NemotronH, all M
    with torch.no_grad():
        assert torch.equal(all_mamba(_ids(), use_cache=False).logits, pure(_ids()).logits)
    hybrid = _model("1-in-4")
    ours, theirs = hybrid.state_dict(), pure.state_dict()
    for i in range(3):
        layer = {k.split(f"layers.{i}.", 1)[1]: v for k, v in theirs.items() if f"layers.{i}." in k}
        assert all(torch.equal(ours[f"model.layers.{i}.{k}"], v) for k, v in layer.items())
    assert torch.equal(ours["model.embeddings.weight"], theirs["backbone.embeddings.weight"])
    assert torch.equal(ours["lm_head.weight"], theirs["lm_head.weight"])
    q = ours["model.layers.3.mixer.q_proj.weight"]
    assert abs(q.std().item() - 0.02) < 0.004  # attention: Llama's N(0, 0.02)


@pytest.mark.parametrize("case", list(CASES))
def test_cached_greedy_equals_uncached_and_naive(case):
    model = _model(case)
    prompt = _ids(1, 9, seed=100)
    assert_greedy_consistent(model, prompt)


@pytest.mark.parametrize("case", list(CASES))
def test_chunked_forward_equals_step_by_step_decoding(case):
    """One chunked (training) forward over T tokens against T one-token steps through the mixed cache
    (convolution + SSM state in the Mamba-2 layers, keys / values in the attention layers), and a
    prefill of half then steps; 1e-4 as the stock Mamba-2's cached-vs-uncached test."""
    model = _model(case)
    ids = _ids()
    with torch.no_grad():
        full = model(ids, use_cache=False).logits
        out = model(ids[:, :1], use_cache=True)
        steps = [out.logits]
        for t in range(1, T):
            out = model(ids[:, t : t + 1], cache=out.cache, use_cache=True)
            steps.append(out.logits)
        kinds = [type(layer).__name__ for layer in out.cache.layers]
        half = model(ids[:, : T // 2], use_cache=True)
        rest = [half.logits]
        for t in range(T // 2, T):
            half = model(ids[:, t : t + 1], cache=half.cache, use_cache=True)
            rest.append(half.logits)
    assert kinds == ["DynamicLayer" if c == "A" else "LinearAttentionLayer" for c in PATTERNS[case]]
    assert (torch.cat(steps, 1) - full).abs().max().item() <= 1e-4
    assert (torch.cat(rest, 1) - full).abs().max().item() <= 1e-4


@pytest.mark.parametrize("case", list(CASES))
def test_left_padded_batch_equals_rows_alone(case):
    model = _model(case, seed=1)
    p0, p1 = _ids(1, 9, seed=1), _ids(1, 4, seed=2)
    batch = torch.zeros(2, 9, dtype=torch.long)
    batch[0], batch[1, 5:] = p0, p1
    mask = torch.zeros_like(batch)
    mask[0], mask[1, 5:] = 1, 1
    both = _greedy(model, batch, attention_mask=mask)
    alone0, alone1 = _greedy(model, p0), _greedy(model, p1)
    assert torch.equal(both.sequences[0], alone0.sequences[0])
    assert torch.equal(both.sequences[1, 5:], alone1.sequences[0])


VARIANTS = [{}, {"ssm_head_dim": 8, "ssm_state_size": 8}, {"ssm_expand": 1, "ssm_conv_kernel": 3, "layers": 6}]


@pytest.mark.parametrize("case", list(CASES))
def test_closed_form_parameters_are_exact(case):
    for extra in [*VARIANTS, {"attention_every": 0, "attention_layers": [0, 2]}]:
        kw = {**TINY, **CASES[case], **extra}
        with torch.device("meta"):
            model = build_model("mamba2", **kw)
        for emb in (True, False):
            assert analytic_parameters("mamba2", emb, **kw) == count_parameters(model, emb), (extra, emb)
    # an attention layer in place of a Mamba-2 layer: q, k, v, o (4 D^2) instead of the Mamba-2 mixer
    D = TINY["embed_dim"]
    pure = analytic_parameters("mamba2", False, **TINY)
    mamba_layer = (pure - D) // 4
    a = PATTERNS[case].count("A")
    assert analytic_parameters("mamba2", False, **TINY, **CASES[case]) == pure - a * mamba_layer + a * (4 * D * D + D)


@pytest.mark.parametrize("case", list(CASES))
def test_flops_formula_matches_the_counter(case):
    """One whole scan chunk (T = chunk) and four chunks (chunk 16 at T = 64): within 5%, as the pure
    mamba2's test; the attention layers add the dense softmax term, the Mamba-2 layers the scan."""
    ratios = {}
    for t, chunk in ((64, 64), (64, 16)):
        kw = {**TINY, **CASES[case], "max_seq_len": t, "ssm_chunk_size": chunk}
        ratios[(t, chunk)] = train_flops_per_token("mamba2", kw, t) / counted_train_flops_per_token("mamba2", kw, t)
    assert all(abs(r - 1) <= 0.05 for r in ratios.values()), ratios
    kw = {**TINY, "max_seq_len": 64, "ssm_chunk_size": 64}
    grow = [train_flops_per_token("mamba2", {**kw, **CASES[case]}, t) for t in (64, 1024)]
    pure = [train_flops_per_token("mamba2", {**kw, "ssm_chunk_size": 64}, t) for t in (64, 1024)]
    a = PATTERNS[case].count("A")
    assert grow[1] - grow[0] == pytest.approx(a * 12 * (1024 - 64) * 32 + (pure[1] - pure[0]) * (4 - a) / 4)


@pytest.mark.parametrize("case", list(CASES))
def test_state_bytes_of_the_mixed_cache(case):
    """What latency.json and recall measure (cache_nbytes of the model's cache) equals the closed form:
    the Mamba-2 layers' constant convolution window + SSM state, the attention layers' keys and values
    growing with the context."""
    from archbench.evaluation.latency import cached_mode, trial

    model = _model(case)
    s = resolved_settings("mamba2", **TINY, **CASES[case])
    assert cached_mode(model) == "recurrent"  # the registry's label of mamba2, hybrid or not
    measured = {t: trial(model, _ids(1, t), "recurrent", 2)[2] for t in (8, 16, 40)}
    assert measured == {t: state_bytes(s, t) for t in (8, 16, 40)}
    a = PATTERNS[case].count("A")
    mamba = (64 + 2 * 16) * 4 + 4 * 16 * 16  # per Mamba-2 layer: conv window (I + 2N) x 4 taps, SSM H x P x N
    assert measured == {t: 4 * ((4 - a) * mamba + a * 2 * t * 32) for t in (8, 16, 40)}  # fp32


SWEEP = [
    dict(embed_dim=d, heads=4, layers=L, ffn_dim=f, vocab_size=512, max_seq_len=64)
    for d, L, f in ((32, 4, 48), (64, 4, 128), (128, 8, 256))
]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("reference", ["retnet", "llama"])
def test_matching_within_two_percent(case, reference):
    for hp in SWEEP:
        mine = {**hp, **CASES[case]}
        width = match_width("mamba2", mine, reference, hp)
        matched = {**mine, "ssm_state_size": width}
        for emb in (False, True):
            a, b = count("mamba2", matched, emb), count(reference, hp, emb)
            assert abs(a - b) / b <= 0.02, (hp, emb, a, b)
        assert analytic_parameters("mamba2", False, **matched) == count("mamba2", matched, False)


def test_model_kwargs_pass_the_pattern_and_match_the_hybrid():
    from archbench.training.run import model_kwargs

    settings = dict(
        embed_dim=64,
        ffn_dim=128,
        heads=4,
        layers=4,
        seq_len=64,
        dropout=0.0,
        match_params=True,
        match_to="retnet",
        match="params",
        match_by="width",
        accelerator="cpu",
    )
    for every in (0, 4, 2):
        kw = model_kwargs("mamba2", {**settings, "attention_every": every, "attention_layers": []}, 512)
        assert kw["attention_every"] == every
        reference = count("retnet", model_kwargs("retnet", settings, 512), False)
        assert abs(count("mamba2", kw, False) - reference) <= 0.02 * reference
    assert "attention_every" in model_kwargs("mamba2", {**settings, "attention_every": 4}, 512)


@pytest.mark.parametrize("case", list(CASES))
def test_save_load_round_trip_without_remote_code(case, tmp_path):
    from transformers import AutoModelForCausalLM

    from archbench.evaluation.common import arch_of

    model = _model(case)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "nemotron_h" and "auto_map" not in saved and saved["archbench_arch"] == "mamba2"
    assert not list(tmp_path.glob("*.py"))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model) and arch_of(loaded) == "mamba2"
    with torch.no_grad():
        assert torch.equal(model(_ids()).logits, loaded(_ids()).logits)
    assert count_parameters(loaded) == count_parameters(model)


def test_training_step_lowers_the_loss():
    from archbench.training.module import CausalLMModule

    torch.manual_seed(0)
    module = CausalLMModule("mamba2", {**TINY, **CASES["1-in-4"]}, learning_rate=1e-2)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-2)
    batch = torch.randint(3, 60, (4, T + 1))
    losses = []
    for _ in range(5):
        loss = module._loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1
    assert all(p.grad is not None for p in module.parameters() if p.requires_grad)


def test_constraints_name_the_keys():
    check = ARCHS["mamba2"].check()
    with pytest.raises(ConstraintError, match=r"outside 0\.\.3") as err:
        check({**TINY, "attention_layers": [4]})
    assert err.value.keys == ("attention_every", "attention_layers")
    with pytest.raises(ConstraintError, match="both set"):
        check({**TINY, "attention_every": 2, "attention_layers": [1]})
    with pytest.raises(ConstraintError, match="cannot tie") as err:
        check({**TINY, "attention_every": 2, "tie_word_embeddings": True})
    assert err.value.keys == ("tie_word_embeddings", "attention_every")
    check({**TINY, "tie_word_embeddings": True})  # the pure model ties as before
    with pytest.raises(ConstraintError, match="heads 3: not divisible"):  # SSM heads from ssm_head_dim
        check({**TINY, "heads": 3, "ssm_head_dim": 16, "attention_every": 2})
    with pytest.raises(ValueError, match="both set"):  # the settings class runs the same rule
        build_model("mamba2", **TINY, attention_every=2, attention_layers=[1])


def test_a_grid_axis_checked_at_parse_time(tmp_path):
    """attention_every is a grid axis like any other (one run per value, the value reaches the model's
    settings); a bad pattern stops the config at parse time, naming the key."""
    import yaml

    from archbench.config import grid_points, run_settings, validate_config
    from archbench.errors import ConfigError
    from archbench.training.run import model_kwargs
    from workflow_helpers import tiny_config

    def config(**overrides):
        path = tiny_config(tmp_path, archs=["mamba2"], model={"layers": 4, "ssm_chunk_size": 32}, **overrides)
        return yaml.safe_load(path.read_text())

    cfg = config()
    cfg["grid"]["attention_every"] = [0, 4, 2]
    cfg = validate_config(cfg)
    points = grid_points(cfg)
    assert sorted({p["attention_every"] for p in points}) == [0, 2, 4] and len(points) == 6  # x 2 learning rates
    settings = run_settings(cfg, next(p for p in points if p["attention_every"] == 4))
    assert model_kwargs("mamba2", settings, 512)["attention_every"] == 4
    bad = config()
    bad["model"]["attention_layers"] = [7]
    with pytest.raises(ConfigError, match=r"model.attention_every'/'model.attention_layers'.*outside 0\.\.3.*mamba2"):
        validate_config(bad)
