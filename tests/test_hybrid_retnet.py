"""Hybrid RetNet (model.attention_every / model.attention_layers): softmax attention layers in place of
retention, at 1 in 4 (RRRA) and 1 in 2 (RARA). The same checks as the pure model: the modes agree, cached
greedy decoding equals uncached, closed-form parameters, FLOPs against torch's counter, state bytes,
matching, save / load (with remote code); and attention_every 0 is today's RetNet, bit for bit."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from archbench.models import build_model, count_parameters
from archbench.models.cache import cache_nbytes
from archbench.models.constraints import ConstraintError
from archbench.models.flop_count import counted_train_flops_per_token
from archbench.models.flops import train_flops_per_token
from archbench.models.hybrid import pattern
from archbench.models.matching import TOLERANCE, matched
from archbench.models.registry import get_arch
from archbench.models.retnet import check as check_retnet
from archbench.models.retnet import state_bytes
from archbench.models.sizing import analytic_parameters, count, resolved_settings
from test_models_api import remote_code_difference

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = 1e-4
SMALL = dict(vocab_size=50, embed_dim=32, ffn_dim=48, heads=4, layers=4, max_seq_len=64)
HYBRIDS = {"RRRA": {"attention_every": 4}, "RARA": {"attention_every": 2}}


def _model(kind, seed=0, **extra):
    torch.manual_seed(seed)
    return build_model("retnet", **{**SMALL, **HYBRIDS[kind], **extra}).eval()


def _logits(model, x, mode=None, mask=None):
    with torch.no_grad():
        return model(input_ids=x, attention_mask=mask, retention_mode=mode, use_cache=False).logits


def test_layer_pattern_reaches_the_model():
    for kind, hp in HYBRIDS.items():
        model = _model(kind)
        assert "".join("A" if layer.is_attention else "R" for layer in model.decoder.layers) == kind
        assert pattern(4, hp["attention_every"]) == kind
        attn = model.decoder.layers[3].self_attn
        assert type(attn).__mro__[1].__name__ == "LlamaAttention" and not hasattr(model.decoder.layers[3], "retention")
        assert (attn.config.num_attention_heads, attn.config.num_key_value_heads, attn.head_dim) == (4, 4, 8)
    explicit = build_model("retnet", **SMALL, attention_layers=[0, 2])
    assert [layer.is_attention for layer in explicit.decoder.layers] == [True, False, True, False]


def test_attention_every_zero_is_todays_retnet():
    """Same initialisation stream (the RNG state after construction too), same weights, same outputs."""
    models, rng = [], []
    for extra in ({}, {"attention_every": 0}, {"attention_every": 0, "attention_layers": []}):
        torch.manual_seed(7)
        models.append(build_model("retnet", **SMALL, **extra).eval())
        rng.append(torch.random.get_rng_state())
    x = torch.randint(0, 50, (2, 70))  # 70 > the automatic chunk (64): chunkwise
    ref, ref_state = _logits(models[0], x), models[0].state_dict()
    for model, state in zip(models[1:], rng[1:]):
        assert torch.equal(state, rng[0])
        assert model.state_dict().keys() == ref_state.keys()
        assert all(torch.equal(v, ref_state[k]) for k, v in model.state_dict().items())
        assert torch.equal(_logits(model, x), ref)
        assert model.model.rotary is None and not any(layer.is_attention for layer in model.decoder.layers)


@pytest.mark.parametrize("kind", HYBRIDS)
def test_all_modes_agree(kind):
    """Parallel, chunkwise (several chunks, also one chunk) and recurrent: retention layers in their
    mode, attention layers attend over every token in all of them."""
    model = _model(kind)
    for T in (1, 5, 13):
        x = torch.randint(0, 50, (2, T))
        outs = {"parallel": _logits(model, x, "parallel"), "recurrent": _logits(model, x, "recurrent")}
        for c in (1, 3, 8, 20):
            model.config.chunk_size = c
            outs[f"chunkwise{c}"] = _logits(model, x, "chunkwise")
        model.config.chunk_size = None
        for a, b in itertools.combinations(outs, 2):
            diff = (outs[a] - outs[b]).abs().max().item()
            assert diff <= TOL, f"{a} vs {b} at T={T}: {diff}"


@pytest.mark.parametrize("kind", HYBRIDS)
def test_modes_agree_with_left_padding(kind):
    model = _model(kind, seed=3)
    x = torch.randint(3, 50, (3, 11))
    mask = torch.ones_like(x)
    mask[1, :4] = 0
    mask[2, :10] = 0
    ref = _logits(model, x, "parallel", mask)
    model.config.chunk_size = 3
    for mode in ("recurrent", "chunkwise"):
        diff = (_logits(model, x, mode, mask) - ref)[mask.bool()].abs().max().item()
        assert diff <= TOL, (mode, diff)
    alone = _logits(model, x[1:2, 4:], "parallel")  # a padded row equals the row alone
    assert (ref[1, 4:] - alone[0]).abs().max().item() <= TOL


@pytest.mark.parametrize("kind", HYBRIDS)
@pytest.mark.parametrize("prefill_mode", ["parallel", "chunkwise", "recurrent"])
def test_prefill_then_cached_steps_match_parallel(kind, prefill_mode):
    """The mixed cache: retention state S for R layers, keys / values for A layers; a multi-token
    continuation after the prefill too."""
    model = _model(kind, seed=5, chunk_size=4)
    x = torch.randint(0, 50, (2, 19))
    full = _logits(model, x, "parallel")
    with torch.no_grad():
        out = model(input_ids=x[:, :10], retention_mode=prefill_mode, use_cache=True)
        cache, steps = out.cache, [out.logits]
        out = model(input_ids=x[:, 10:13], cache=cache, use_cache=True)  # 3 tokens at once after a state
        steps.append(out.logits)
        for t in range(13, 19):
            steps.append(model(input_ids=x[:, t : t + 1], cache=cache, use_cache=True).logits)
    assert (torch.cat(steps, 1) - full).abs().max().item() <= TOL
    for layer, state in zip(model.decoder.layers, cache.layers):
        assert set(state) == ({"k", "v"} if layer.is_attention else {"S"})


@pytest.mark.parametrize("kind", HYBRIDS)
def test_cached_greedy_decode_equals_uncached(kind):
    """generate(): KV + retention cache against recomputing the whole prefix each token, also for a
    left-padded batch (rows of different lengths decode from per-row cache slots)."""
    model = _model(kind, seed=11)
    x = torch.randint(3, 50, (3, 9))
    mask = torch.ones_like(x)
    mask[1, :3] = 0
    mask[2, :6] = 0
    kw = dict(max_new_tokens=12, do_sample=False, pad_token_id=0, attention_mask=mask)
    cached = model.generate(x, use_cache=True, **kw)
    uncached = model.generate(x, use_cache=False, **kw)
    assert torch.equal(cached, uncached)
    for row in (1, 2):  # a padded row decodes as it would alone
        start = int((mask[row] == 0).sum())
        alone = model.generate(x[row : row + 1, start:], max_new_tokens=12, do_sample=False, pad_token_id=0)
        assert torch.equal(alone[0, -12:], cached[row, -12:])


@pytest.mark.parametrize("kind", HYBRIDS)
def test_closed_form_parameters_match_the_model(kind):
    variants = [{"tie_word_embeddings": True}, {"value_embed_dim": 96, "embed_dim": 64, "layers": 8}]
    for extra in ({}, *variants, {"attention_every": 0, "attention_layers": [0, 2, 3]}):
        kw = {**SMALL, **HYBRIDS[kind], **extra}
        with torch.device("meta"):
            model = build_model("retnet", **kw)
        for emb in (True, False):
            assert analytic_parameters("retnet", emb, **kw) == count_parameters(model, emb), (extra, emb)
    # an attention layer (q, k, v, o: 4 D^2) replaces retention (q, k: 2 D^2, v, g, out: 3 D Dv = 6 D^2)
    pure = analytic_parameters("retnet", False, **SMALL)
    D, A = SMALL["embed_dim"], SMALL["layers"] // HYBRIDS[kind]["attention_every"]
    assert pure - analytic_parameters("retnet", False, **SMALL, **HYBRIDS[kind]) == A * (8 - 4) * D * D


@pytest.mark.parametrize("kind", HYBRIDS)
def test_flops_formula_matches_the_counter(kind):
    """As tests/test_models_flops.py: two sizes x two lengths (64 = one parallel chunk, 256 = chunkwise
    with the automatic chunk of 64); the attention layers' term grows with T, retention's does not."""
    ratios = {}
    for hp in (
        dict(vocab_size=128, embed_dim=32, ffn_dim=64, heads=2),
        dict(vocab_size=256, embed_dim=64, ffn_dim=160, heads=4),
    ):
        for T in (64, 256):
            kw = {**hp, "layers": 4, **HYBRIDS[kind], "max_seq_len": T}
            ratios[(hp["embed_dim"], T)] = train_flops_per_token("retnet", kw, T) / counted_train_flops_per_token(
                "retnet", kw, T
            )
    assert all(abs(r - 1) <= 0.05 for r in ratios.values()), ratios
    s = {**resolved_settings("retnet", **SMALL, **HYBRIDS[kind]), "seq_len": 256}
    pure = {**resolved_settings("retnet", **SMALL), "seq_len": 256}
    A = SMALL["layers"] // HYBRIDS[kind]["attention_every"]
    retention = (get_arch("retnet").flops_fn()(pure) - 6 * count("retnet", SMALL, False) - 6 * 32 * 50) / 4
    weights = 6 * count("retnet", {**SMALL, **HYBRIDS[kind]}, False) + 6 * 32 * 50
    assert get_arch("retnet").flops_fn()(s) == pytest.approx(weights + (4 - A) * retention + A * 12 * 256 * 32)


@pytest.mark.parametrize("kind", HYBRIDS)
def test_state_bytes_count_the_attention_layers_kv(kind):
    """cache_nbytes (what latency / recall / throughput report) = the closed form: retention layers' fixed
    state plus keys and values of every token in the attention layers."""
    model = _model(kind)
    s = resolved_settings("retnet", **SMALL, **HYBRIDS[kind])
    measured = {}
    for T in (5, 40):
        with torch.no_grad():
            cache = model(input_ids=torch.randint(0, 50, (2, T)), use_cache=True).cache
        measured[T] = cache_nbytes(cache)
        assert measured[T] == state_bytes(s, T, batch=2), T
    A = SMALL["layers"] // HYBRIDS[kind]["attention_every"]
    assert measured[40] - measured[5] == A * 2 * 35 * 2 * 32 * 4  # layers x batch x tokens x (k, v) x D x fp32
    assert state_bytes(resolved_settings("retnet", **SMALL), 40) == 4 * 4 * 8 * 16 * 4  # pure: flat


def test_matching_to_the_pure_model_at_every_ratio():
    """model.match_params: each hybrid's FFN is turned to the pure RetNet's non-embedding count (the
    training's model_kwargs, the reference stripped of its attention layers), within 2%; at the preset's
    shape (8 layers) and at 4 layers."""
    from archbench.training.run import model_kwargs

    for layers, ratios in ((8, (8, 4, 2, 1)), (4, (4, 2))):
        base = dict(
            embed_dim=64, ffn_dim=128, heads=4, layers=layers, seq_len=128, match_params=True, match_to="retnet"
        )
        base.update(match="params", match_by="width", accelerator="cpu")  # validated settings: every model key present
        target = count("retnet", model_kwargs("retnet", {**base, "attention_every": 0}, 512), False)
        for k in ratios:
            kw = model_kwargs("retnet", {**base, "attention_every": k}, vocab_size=512)
            assert kw["attention_every"] == k and kw["ffn_dim"] > 128  # attention is smaller: a wider FFN
            assert abs(count("retnet", kw, False) / target - 1) <= TOLERANCE, (layers, k)
        # another architecture against a hybrid grid point is matched to the pure RetNet too
        llama = model_kwargs("llama", {**base, "attention_every": 4, "match_to": "retnet"}, vocab_size=512)
        assert abs(count("llama", llama, False) / target - 1) <= TOLERANCE
    direct = matched("retnet", {**SMALL, "attention_every": 2}, "retnet", SMALL)
    assert abs(count("retnet", direct, False) / count("retnet", SMALL, False) - 1) <= TOLERANCE


@pytest.mark.parametrize("kind", HYBRIDS)
def test_save_pretrained_round_trip_is_exact(kind, tmp_path):
    model = _model(kind, seed=1)
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["attention_every"] == HYBRIDS[kind]["attention_every"]
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    x = torch.randint(3, 50, (2, 12))
    assert torch.equal(_logits(model, x), _logits(loaded, x))
    assert [layer.is_attention for layer in loaded.decoder.layers] == [
        layer.is_attention for layer in model.decoder.layers
    ]


def test_trust_remote_code_loads_the_hybrid_without_archbench(tmp_path):
    """The saved folder carries hybrid.py and hybrid_attention.py beside RetNet's modeling code (flattened:
    models/retnet/modeling.py -> retnet_modeling.py): same logits without archbench."""
    model = _model("RRRA", seed=2, chunk_size=4)
    assert remote_code_difference(model, torch.randint(3, 50, (1, 11)), tmp_path) == 0.0
    saved = {p.name for p in tmp_path.iterdir()}
    assert {"hybrid.py", "hybrid_attention.py", "retnet_spec.py", "retnet_modeling.py", "retnet_retention.py"} <= saved


def test_attentions_hidden_states_and_gradients():
    """output_attentions: softmax weights [B, H, T, T] from attention layers (rows sum to 1, causal),
    retention matrices from the others; parallel and chunkwise give the same gradients."""
    model = _model("RARA", seed=4)
    x = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        out = model(input_ids=x, output_attentions=True, output_hidden_states=True, use_cache=False)
    assert len(out.attentions) == 4 and len(out.hidden_states) == 5
    w = out.attentions[1]
    assert w.shape == (2, 4, 9, 9) and torch.allclose(w.sum(-1), torch.ones(2, 4, 9))
    assert w.triu(1).abs().max() == 0
    assert torch.allclose(out.logits, _logits(model, x), atol=TOL)
    grads = {}
    for mode in ("parallel", "chunkwise"):
        model.zero_grad()
        model.config.chunk_size = 4
        model.train()(input_ids=x, labels=x, retention_mode=mode, use_cache=False).loss.backward()
        grads[mode] = {n: p.grad.clone() for n, p in model.named_parameters()}
    for name, g in grads["parallel"].items():
        assert (g - grads["chunkwise"][name]).abs().max() <= 1e-5, name


def test_rotary_stays_float32_and_meta_init_rebuilds_it():
    model = _model("RRRA")
    inv_freq = model.model.rotary.inv_freq.clone()
    model.to(torch.bfloat16)
    assert model.model.rotary.inv_freq.dtype == torch.float32 and torch.equal(model.model.rotary.inv_freq, inv_freq)
    with torch.device("meta"):
        meta = build_model("retnet", **SMALL, attention_every=4)
    meta.to_empty(device="cpu")
    meta.init_weights()
    assert torch.equal(meta.model.rotary.inv_freq, inv_freq)
    q = meta.decoder.layers[3].self_attn.q_proj.weight  # xavier-uniform, gain 2^-1/2
    assert q.abs().max() <= 2**-0.5 * (6 / (2 * 32)) ** 0.5 + 1e-6 and q.std() > 0


def test_rules_name_the_keys():
    s = dict(SMALL)
    check_retnet({**s, "attention_every": 8})  # more than the layers: no attention layer, allowed
    for bad, keys in (
        ({"attention_every": 2, "attention_layers": [1]}, ("attention_layers", "attention_every")),
        ({"attention_layers": [4]}, ("attention_layers", "layers")),
        ({"attention_layers": [1, 1]}, ("attention_layers", "layers")),
        ({"attention_every": -1}, ("attention_every",)),
    ):
        with pytest.raises(ConstraintError) as err:
            check_retnet({**s, **bad})
        assert err.value.keys == keys, bad
    with pytest.raises(ConstraintError, match="outside 0..3"):
        build_model("retnet", **SMALL, attention_layers=[4])
    desc = get_arch("retnet").description(resolved_settings("retnet", **SMALL, attention_every=4))
    assert desc["mixer"] == "multi-scale retention, softmax attention (RoPE) in 1 of 4 layers (RRRA)"


def test_attention_layers_is_a_list_setting_of_the_grid():
    """grid: {attention_layers: [[1, 3], [3]]} searches two patterns; attention_every is an axis like any."""
    import copy
    from pathlib import Path

    import yaml

    from archbench.config import grid_points, run_settings, validate_config

    base = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/config.yaml").read_text())
    cfg = copy.deepcopy(base)
    cfg["archs"] = ["retnet"]
    cfg["grid"].update(attention_layers=[[1], [0, 1]])
    validate_config(cfg)
    assert [p["attention_layers"] for p in grid_points(cfg)][-2:] == [[1], [0, 1]]
    cfg = copy.deepcopy(base)
    cfg["grid"].update(attention_every=[0, 2, 1])
    validate_config(cfg)
    assert sorted({run_settings(cfg, p)["attention_every"] for p in grid_points(cfg)}) == [0, 1, 2]


def test_hybrid_ratio_preset_lists_every_run(tmp_path):
    """config/presets/hybrid-ratio.yaml: 5 ratios x 3 seeds of RetNet at 8 layers, each matched to the pure one."""
    from test_presets import check_counts, dry_run, load

    preset = load("hybrid-ratio.yaml")
    assert preset["grid"]["attention_every"] == [0, 8, 4, 2, 1] and preset["model"]["layers"] == 8
    assert len(preset["seeds"]) >= 3 and preset["model"]["match_params"]
    counts = check_counts(dry_run(tmp_path, "hybrid-ratio.yaml"), preset)
    assert counts["train"] == 5 * 3 and counts["latency"] == 5
    assert not (tmp_path / "results-hybrid-ratio").exists()
