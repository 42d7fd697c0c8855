"""Public API of archbench.models: construction, HF round trips, sizing, loss, autocast."""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM

from archbench import models
from archbench.models import analytic_parameters, build_model, count_parameters, match_ffn_dim
from archbench.models.registry import ARCHS

models.register()  # the Auto classes
# archbench's own models (the wrapped stock llama / mamba2 are tested in test_models_modern.py)
OWN = [a for a in ARCHS if not getattr(ARCHS[a].config_cls(), "stock", False)]

SMALL = dict(vocab_size=61, embed_dim=32, ffn_dim=48, heads=4, layers=2, max_seq_len=64)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_registry_names_and_aliases():
    assert list(ARCHS)[:3] == ["retnet", "transformer", "longnet"]
    assert models.RetNetModelHF is models.RetNetForCausalLM
    assert issubclass(models.TransformerModelHF, models.TransformerForCausalLM)
    assert issubclass(models.LongNetModelHF, models.LongNetForCausalLM)
    for arch in ARCHS:
        cls = ARCHS[arch].config_cls()
        cfg = cls()
        if getattr(cls, "stock", False):  # wrapped transformers models keep their own, stock type
            assert cfg.model_type == arch and type(cfg.to_hf()) is type(AutoConfig.for_model(arch))
            continue
        assert cfg.model_type == f"archbench_{arch}"
        assert AutoConfig.for_model(cfg.model_type).__class__ is cls
        assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (0, 1, 2)


def test_build_model_maps_pipeline_names():
    m = build_model("retnet", chunk_size=5, chunkwise_above=None, position="learned", **SMALL)
    c = m.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads) == (32, 2, 4)
    assert (c.max_position_embeddings, c.intermediate_size) == (64, 48)
    assert c.value_embed_dim == 64 and c.chunk_size == 5 and c.chunkwise_above is None
    assert not hasattr(c, "position")  # another arch's setting is dropped, not stored
    assert m.get_params() == {
        "arch": "retnet",
        **SMALL,
        "dropout": 0.0,
        "value_embed_dim": 64,
        "chunk_size": 5,
        "chunkwise_above": None,
        "attention_every": 0,  # a hybrid's attention layers (models/hybrid.py): none
        "attention_layers": None,
    }
    lg = build_model("longnet", segment_lengths=[8, 16], dilated_ratios=[1, 2], **SMALL)
    assert lg.get_params()["segment_lengths"] == [8, 16]
    assert build_model("transformer", dropout=None, **SMALL).config.dropout == 0.0  # None = default


def test_build_model_errors():
    with pytest.raises(ValueError, match=r"'mamba'.*retnet, transformer, longnet"):
        build_model("mamba", **SMALL)
    with pytest.raises(TypeError, match="learning_rate"):
        build_model("retnet", learning_rate=1e-3, **SMALL)
    with pytest.raises(ValueError, match="heads"):
        build_model("transformer", **{**SMALL, "heads": 5})
    with pytest.raises(ValueError, match="position"):
        build_model("transformer", position="alibi", **SMALL)


@pytest.mark.parametrize("arch", OWN)
def test_labels_loss_is_shifted_cross_entropy(arch):
    torch.manual_seed(0)
    model = build_model(arch, **SMALL)
    x = torch.randint(3, 61, (2, 10))
    labels = x.clone()
    labels[0, 6:] = -100
    out = model(input_ids=x, labels=labels)
    manual = F.cross_entropy(out.logits[:, :-1].reshape(-1, 61), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert out.logits.shape == (2, 10, 61) and out.logits.dtype == torch.float32
    assert out.cache is None  # plain calls build no decoding state
    assert abs(out.loss.item() - manual.item()) <= 1e-6 and out.loss.item() > 3.0
    out.loss.backward()
    assert model.decoder.embed_tokens.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", OWN)
def test_save_pretrained_auto_round_trip_is_exact(arch, tmp_path):
    torch.manual_seed(1)
    model = build_model(arch, **SMALL).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    x = torch.randint(3, 61, (2, 12))
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, loaded(input_ids=x).logits)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["auto_map"]["AutoModelForCausalLM"].endswith("ForCausalLM")
    assert "hparam_names" not in cfg


@pytest.mark.parametrize(  # retnet: its modeling imports retention.py, which save_pretrained must copy too
    "arch,extra", [("longnet", {"segment_lengths": [4, 8], "dilated_ratios": [1, 2]}), ("retnet", {"chunk_size": 4})]
)
def test_trust_remote_code_loads_without_archbench(tmp_path, arch, extra):
    torch.manual_seed(2)
    model = build_model(arch, **extra, **SMALL).eval()
    assert remote_code_difference(model, torch.randint(3, 61, (1, 11)), tmp_path) == 0.0


def remote_code_difference(model, x, folder) -> float:
    """Largest |logit difference| between ``model`` and its ``save_pretrained`` copy in ``folder`` loaded
    with ``trust_remote_code=True`` in a fresh interpreter that must not import archbench."""
    model.save_pretrained(folder)
    with torch.no_grad():
        torch.save({"x": x, "y": model(input_ids=x).logits}, folder / "ref.pt")
    code = (
        "import sys, torch\n"
        "from transformers import AutoModelForCausalLM\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()\n"
        f"r = torch.load({str(folder / 'ref.pt')!r})\n"
        "assert 'archbench' not in sys.modules, 'archbench was imported'\n"
        "print((m(input_ids=r['x']).logits - r['y']).abs().max().item())\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=folder,
        env={"PATH": "", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return float(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("arch", OWN)
def test_count_parameters_matches_closed_form(arch):
    for extra in (
        {},
        {"tie_word_embeddings": True},
        {"value_embed_dim": 96, "layers": 3} if arch == "retnet" else {"position": "learned", "layers": 3},
        *([{"subln": False}] if arch == "transformer" else []),  # no Sub-LN LayerNorms (model.subln)
    ):
        kw = {**SMALL, **extra}
        with torch.device("meta"):
            model = build_model(arch, **kw)
        for emb in (True, False):
            assert count_parameters(model, emb) == analytic_parameters(arch, emb, **kw)
    assert count_parameters(model) - count_parameters(model, False) >= 2 * 61 * 32


@pytest.mark.parametrize("arch", ["transformer", "longnet"])
def test_match_ffn_dim_within_two_percent(arch):
    worst = 0.0
    for d, heads, layers, ffn, vocab in [
        (64, 2, 2, 128, 1000),
        (128, 4, 4, 256, 8000),
        (256, 4, 6, 512, 16000),
        (512, 8, 12, 1024, 32000),
        (768, 3, 12, 1280, 50257),
    ]:
        rn = dict(vocab_size=vocab, embed_dim=d, ffn_dim=ffn, heads=heads, layers=layers)
        f = match_ffn_dim(arch, **rn)
        tr = {**rn, "ffn_dim": f}
        for emb in (False, True):
            a, b = analytic_parameters("retnet", emb, **rn), analytic_parameters(arch, emb, **tr)
            worst = max(worst, abs(a - b) / a)
        assert abs(analytic_parameters("retnet", False, **rn) - analytic_parameters(arch, False, **tr)) <= layers * (
            2 * d + 3
        )
    assert worst <= 0.02
    with torch.device("meta"):  # the counts are the real models'
        r = build_model("retnet", **SMALL)
        t = build_model(arch, **{**SMALL, "ffn_dim": match_ffn_dim(arch, **SMALL)})
    assert abs(count_parameters(r) - count_parameters(t)) / count_parameters(r) <= 0.02
    with pytest.raises(ValueError):
        match_ffn_dim("retnet", **SMALL)


@pytest.mark.parametrize("arch", OWN)
def test_autocast_bf16_cpu_forward_backward_generate(arch):
    torch.manual_seed(3)
    model = (
        build_model(arch, chunkwise_above=8, chunk_size=4, **SMALL) if arch == "retnet" else build_model(arch, **SMALL)
    )
    x = torch.randint(3, 61, (2, 13))
    ref = model(input_ids=x).logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(input_ids=x, labels=x)
        out.loss.backward()
        gen = model.eval().generate(x[:1, :5], max_new_tokens=4, do_sample=False)
    assert out.logits.dtype == torch.float32 and torch.isfinite(out.loss)
    assert 0 < (out.logits - ref).abs().max().item() < 0.2  # bf16 really ran, and is close
    assert gen.shape == (1, 9)
    bf16 = build_model(arch, **SMALL).to(torch.bfloat16)
    assert bf16(input_ids=x).logits.isfinite().all()


def test_the_saved_modeling_code_is_one_flat_folder_of_sibling_imports():
    """models/<name>/modeling.py imports ``..common`` and its spec ``.spec``: the copy for remote code puts
    every module it needs in one folder, each relative import a sibling there (what transformers follows)."""
    import re

    from archbench.models.common import remote_code_files

    files = remote_code_files([models.LongNetForCausalLM, models.LongNetModel, models.LongNetConfig])
    assert set(files) == {
        *("common", "constraints", "hybrid", "spec"),  # shared pieces
        *("transformer_spec", "transformer_modeling", "longnet_spec", "longnet_modeling"),  # the two folders
    }
    for source in files.values():
        assert not re.search(r"^\s*from\s+\.\.", source, re.M)
        assert {m[1] for m in re.finditer(r"^\s*from\s+\.(\w+)\s+import", source, re.M)} <= set(files)
