"""hf-<model_type> entries (models/hf/): any transformers causal LM through the pipeline. Per model
type of the zoo preset, with the preset's own model.hf settings at tiny sizes: a training step,
save -> AutoModelForCausalLM in a process without archbench, cached greedy generate == uncached,
parameter matching within 2%, measured decoding state; the registry / parse-time guards; and (slow)
the tiny pipeline with three generic entries."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from archbench.errors import ConfigError
from archbench.models import build_model
from archbench.models.registry import ARCHS, get_arch

REPO = Path(__file__).resolve().parents[1]
PRESET = yaml.safe_load((REPO / "config/presets/zoo.yaml").read_text())
ZOO = [a for a in PRESET["archs"] if a.startswith("hf-")]
HF = PRESET["model"]["hf"]  # the preset's layer patterns: each hybrid has one attention layer
TINY = dict(vocab_size=60, embed_dim=32, ffn_dim=48, heads=4, layers=2, max_seq_len=64, hf=HF)
NEW = 8

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(arch, seed=0, **kw):
    torch.manual_seed(seed)
    return build_model(arch, **{**TINY, **kw}).eval()


def test_the_preset_compares_at_least_five_generic_types_beside_the_three_built_ins():
    assert {"retnet", "llama", "mamba2"} <= set(PRESET["archs"]) and len(ZOO) >= 5
    assert PRESET["results"] == "results-zoo"


def test_hf_names_resolve_without_importing_torch():
    """Types of the family table (models/hf/) resolve torch-free; any other type is looked up in
    transformers' own causal-LM mapping (which imports torch)."""
    code = (
        "import sys; from archbench.models.registry import get_arch, ARCHS, arch_names; "
        "a = get_arch('hf-rwkv'); print(a.state, a.width_knob, a.display, 'hf-mamba' in ARCHS, "
        "'hf-rwkv' in arch_names(), 'torch' in sys.modules, 'hf-no_such_type' in ARCHS, 'hf-olmo3' in ARCHS)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["recurrent", "hf_width", "RWKV-4", "True", "True", "False", "False", "True"]
    with pytest.raises(ValueError, match=r"unknown arch 'hf-no_such_type'.*or hf-<model_type> for a causal LM"):
        get_arch("hf-no_such_type")


def test_entries_have_distinct_colours_display_names_and_their_decoding_kind():
    entries = [ARCHS[a] for a in ["retnet", "transformer", "longnet", "llama", "mamba2", *ZOO]]
    assert len({e.color for e in entries}) == len(entries)
    assert {a: ARCHS[a].state for a in ZOO} == {
        "hf-rwkv": "recurrent",
        "hf-mamba": "recurrent",
        "hf-jamba": "kv_cache",
        "hf-bamba": "kv_cache",
        "hf-zamba2": "kv_cache",
        "hf-lfm2": "kv_cache",
    }
    assert ARCHS["hf-lfm2"].display == "LFM2"
    assert ARCHS["hf-qwen3"].display == "Qwen3" and ARCHS["hf-olmo3"].display == "Olmo3"  # table, then class name
    assert ARCHS["hf-olmo3"].color == ARCHS["hf-olmo3"].color.lower() and ARCHS["hf-olmo3"].color.startswith("#")


def test_pipeline_names_map_onto_the_configs_standard_attributes():
    model = _model("hf-zamba2")
    c = model.config
    assert type(model).__name__ == "Zamba2ForCausalLM"
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads) == (32, 2, 4, 4)
    assert (c.intermediate_size, c.vocab_size, c.max_position_embeddings) == (48, 60, 64)
    assert c.attention_head_dim == 8  # head_dim through Zamba2's attribute_map
    assert c.layers_block_type == ["linear_attention", "hybrid"] and c.archbench_arch == "hf-zamba2"
    rwkv = _model("hf-rwkv").config  # max_position_embeddings -> context_length (attribute_map)
    assert (rwkv.context_length, rwkv.intermediate_size, rwkv.hidden_size) == (64, 48, 32)
    mamba = _model("hf-mamba", hf_width=7).config  # Mamba-1's width knob: its dt rank
    assert (mamba.time_step_rank, mamba.state_size, mamba.max_position_embeddings) == (7, 16, 64)


def _config(**over):
    from archbench.config import validate_config

    base = yaml.safe_load((REPO / "config/config.yaml").read_text())
    base.update(archs=["retnet", "hf:rwkv"], model={**base["model"], "hf": {}})
    for key, value in over.items():
        section, _, sub = key.partition("__")
        base[section] = {**base[section], sub: value} if sub else value
    return validate_config(base)


def test_config_normalises_hf_colon_and_rejects_unknown_keys_naming_the_type():
    config = _config(report__baseline="hf:rwkv")
    assert config["archs"] == ["retnet", "hf-rwkv"] and config["report"]["baseline"] == "hf-rwkv"
    with pytest.raises(
        ConfigError,
        match=r"^config key 'model.hf': model.hf.rwkv: unknown key 'wkv_size' for model type 'rwkv' \(arch hf-rwkv\)$",
    ):
        _config(model__hf={"rwkv": {"wkv_size": 3}})
    with pytest.raises(ConfigError, match=r"'archs\[1\]': 'hf-no_such_type' is not one of"):
        _config(archs=["retnet", "hf-no_such_type"])
    with pytest.raises(
        ConfigError, match=r"hf-recurrent_gemma is not supported: RecurrentGemma keeps its decoding state"
    ):
        _config(archs=["hf-recurrent_gemma"])
    # the config class' own validation, at parse time
    with pytest.raises(ConfigError, match=r"transformers zamba2 config: .*num_hidden_layers.* \(2\) must be equal"):
        _config(archs=["hf-zamba2"], model__hf={"zamba2": {"layers_block_type": ["mamba", "hybrid", "mamba"]}})


def test_a_type_whose_cache_cannot_be_measured_fails_when_built():
    # Jamba's default pattern puts attention at layer 4: two layers are all Mamba, and transformers
    # 5.25's cache then fails on a cached forward. The first job's model build says so in one line.
    with pytest.raises(RuntimeError, match=r"^hf-jamba: cached decoding cannot be measured on this device: "):
        _model("hf-jamba", hf={"jamba": {"num_experts": 1}})


@pytest.mark.parametrize("arch", ZOO)
def test_training_step_lowers_the_loss(arch):
    from archbench.training.module import CausalLMModule

    torch.manual_seed(0)
    module = CausalLMModule(arch, TINY, learning_rate=1e-2)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-2)
    batch = torch.randint(3, 60, (4, 17))
    losses = []
    for _ in range(4):
        loss = module._loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


LOAD = """
import sys, json, torch
sys.modules["archbench"] = None  # any import of archbench fails: stock transformers only
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
ids = torch.tensor(json.loads(sys.argv[2]))
with torch.no_grad():
    print(json.dumps({"cls": type(model).__name__, "logits": model(ids).logits[0, -1, :5].tolist()}))
"""


@pytest.mark.parametrize("arch", ZOO)
def test_save_then_stock_from_pretrained_without_archbench(arch, tmp_path):
    model = _model(arch)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert "auto_map" not in saved and not list(tmp_path.glob("*.py"))
    ids = [[5, 9, 14, 3, 22, 41, 7]]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, str(tmp_path), json.dumps(ids)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["cls"] == type(model).__name__
    with torch.no_grad():
        expected = model(torch.tensor(ids)).logits[0, -1, :5]
    assert torch.allclose(torch.tensor(out["logits"]), expected, atol=1e-5)


@pytest.mark.parametrize("arch", ZOO)
def test_greedy_generate_with_cache_equals_without(arch):
    model = _model(arch)
    prompt = torch.randint(3, 60, (1, 9), generator=torch.Generator().manual_seed(100))
    kw = dict(max_new_tokens=NEW, do_sample=False, pad_token_id=0, eos_token_id=None)
    cached, plain = model.generate(prompt, use_cache=True, **kw), model.generate(prompt, use_cache=False, **kw)
    assert torch.equal(cached, plain)
    assert cached.shape[1] == 9 + NEW


@pytest.mark.parametrize("arch", ZOO)
def test_parameters_match_retnet_within_two_percent(arch):
    from archbench.models.matching import count
    from archbench.training.run import model_kwargs

    settings = {**{k: v for k, v in TINY.items() if k not in ("vocab_size", "max_seq_len")}, "seq_len": 64}
    # RetNet's FFN 128: at FFN 48 the Mamba-2 hybrids (bamba, zamba2) outgrow it even at width 1
    settings.update(
        match_params=True,
        match_to="retnet",
        dropout=0.0,
        ffn_dim=128,
        match="params",
        match_by="width",
        accelerator="cpu",
    )
    kwargs = model_kwargs(arch, settings, vocab_size=60)
    ref = count("retnet", model_kwargs("retnet", settings, vocab_size=60), include_embeddings=False)
    n = count(arch, kwargs, include_embeddings=False)
    assert kwargs["hf_width"] >= 1 and abs(n - ref) <= 0.02 * ref, (arch, kwargs["hf_width"], n, ref)


def test_no_knob_within_two_percent_stops_with_the_nearest_sizes():
    from archbench.models.matching import match_width

    # LFM2 by default rounds its FFN width (2/3 of intermediate_size) up to a multiple of 256
    hparams = {**TINY, "hf": {"lfm2": {"full_attn_idxs": [1]}}, "layers": 4, "embed_dim": 64}
    with pytest.raises(
        ConfigError,
        match=r"hf-lfm2 cannot match retnet's \d+ non-embedding parameters within 2% by turning hf_width: nearest sizes \d+ \(hf_width=\d+\) and \d+ \(hf_width=\d+\)",
    ):
        match_width("hf-lfm2", hparams, "retnet", {**TINY, "layers": 4, "embed_dim": 64, "ffn_dim": 300})


@pytest.mark.parametrize("arch", ZOO)
def test_state_bytes_reported_and_constant_in_context_for_recurrent_types(arch):
    from archbench.evaluation.latency import measure

    model = _model(arch)
    dev = torch.device("cpu")
    mode = get_arch(arch).state
    small, large = (measure(model, mode, ctx, 1, 2, 1, 0, dev)["state_bytes"] for ctx in (8, 32))
    assert small > 0
    if mode == "recurrent":
        assert small == large
    else:  # one attention layer: its K and V grow by 24 positions x embed_dim floats each
        assert large - small == 2 * 24 * 32 * 4


def test_flops_count_the_attention_term_only_for_attention_layers():
    from archbench.models.hf import flops_per_token

    hp = {"layers": 2, "embed_dim": 32, "seq_len": 63, "heads": 4, "vocab_size": 100, "hf": HF}
    dense = 6 * 1000 + 6 * 32 * 100  # 6 N + 6 d V: the weights and the output projection
    attention = 3 * 4 * 63 * 32  # dense scores and weighted sum over T keys, forward + backward, per layer
    assert flops_per_token("hf-mamba", 1000, hp) == dense  # pure recurrent
    assert flops_per_token("hf-jamba", 1000, hp) == dense + attention  # one attention layer of two
    assert flops_per_token("hf-qwen3", 1000, hp) == dense + 2 * attention


@pytest.mark.parametrize("arch", ["hf-rwkv", "hf-lfm2", "hf-jamba"])
def test_flops_formula_is_within_ten_percent_of_the_counter(arch):
    """The same check as the built-in entries' (tests/test_models_flops.py): torch's FLOP counter on the
    real model, forward + backward, at the zoo preset's settings for the type."""
    from archbench.models.flop_count import counted_train_flops_per_token
    from archbench.models.flops import train_flops_per_token

    hp = {"vocab_size": 512, "embed_dim": 64, "ffn_dim": 128, "heads": 4, "layers": 2, "hf": HF, "max_seq_len": 64}
    ratio = train_flops_per_token(arch, hp, 64) / counted_train_flops_per_token(arch, hp, 64)
    assert abs(ratio - 1) <= 0.10, ratio


def test_types_with_ssd_scans_get_no_flops_rather_than_a_wrong_number():
    from archbench.models.flops import train_flops_per_token

    hp = {"vocab_size": 512, "embed_dim": 64, "ffn_dim": 128, "heads": 4, "layers": 2, "hf": HF, "max_seq_len": 64}
    assert train_flops_per_token("hf-bamba", hp, 64) is None and train_flops_per_token("hf-zamba2", hp, 64) is None
    assert train_flops_per_token("hf-lfm2", hp, 64) > 0


def test_the_report_names_each_entrys_mixer_and_block():
    from archbench.models.hf import describe
    from archbench.report.kinds import pair_kind

    assert pair_kind("llama", "hf-rwkv") == (
        "different block and mixer: softmax attention with RoPE in a Llama block (SwiGLU FFN, RMSNorm, "
        "no biases) vs RWKV time-mix (WKV linear recurrence) in a RWKV-4 block (WKV time-mix recurrence + channel-mix)"
    )
    assert describe("hf-lfm2", {"layer_types": ["conv", "full_attention"]}) == (
        "LFM2 hybrid (gated short convolutions + attention layers, SwiGLU) — layers: conv, full_attention"
    )


@pytest.mark.slow
def test_tiny_pipeline_with_three_generic_entries(tmp_path):
    import pandas as pd

    from workflow_helpers import snakemake, tiny_config

    archs = ["llama", "hf-rwkv", "hf-mamba", "hf-lfm2"]
    cfg = tiny_config(
        tmp_path,
        archs=archs,
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
        model={"layers": 2, "match_params": True, "match_to": "llama", "hf": HF},
        report={"baseline": "llama"},
        latency={
            "contexts": [16, 64],
            "new_tokens": 4,
            "trials": 1,
            "recompute_max_context": 16,
            "batch_sweep": [1, 2],
        },
        length={"multipliers": [1, 2], "max_tokens": 1024},
    )
    snakemake(tmp_path, "--cores", "2", configfile=cfg, timeout=3600)
    results = tmp_path / "results"
    grid = pd.read_csv(results / "report/grid_results.csv")
    assert sorted(grid.arch) == sorted(archs) and (grid.status == "ok").all()
    comparison = pd.read_csv(results / "report/comparison.csv")
    for arch in archs[1:]:
        assert comparison[f"diff_llama_minus_{arch}"].notna().all(), arch
    point = "learning_rate~0.01_embed_dim~32_ffn_dim~64_heads~2_seq_len~32"
    latency = json.loads((results / f"eval/hf-rwkv/{point}/seed~0/latency.json").read_text())
    assert latency["summary"]["arch"] == "hf-rwkv" and latency["summary"]["state_growth"]["recurrent"] == 1.0
