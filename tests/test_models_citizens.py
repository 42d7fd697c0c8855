"""Our RetNet, Transformer and LongNet as transformers citizens (issue 31): backbone + head, hidden states and
attention weights (forward and generate), inputs_embeds, use_cache from the config, _init_weights, old
checkpoints, gradient checkpointing (ours and the stock llama / mamba2) and its config key."""

import copy

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM

from archbench import models
from archbench.models import build_model

models.register()
pytestmark = pytest.mark.usefixtures("one_thread")

OWN = ("retnet", "transformer", "longnet")
SMALL = dict(vocab_size=61, embed_dim=32, ffn_dim=64, heads=2, layers=2, max_seq_len=64)
# RetNet runs chunkwise above 4 tokens, LongNet has a dilated branch: the paths a plain config would skip
EXTRA = {
    "retnet": {"chunk_size": 4},
    "transformer": {},
    "longnet": {"segment_lengths": [4, 8], "dilated_ratios": [1, 2]},
}
BACKBONE = {"retnet": "RetNetModel", "transformer": "TransformerModel", "longnet": "LongNetModel"}


def _model(arch, seed=0, **kw):
    torch.manual_seed(seed)
    return build_model(arch, **{**SMALL, **EXTRA[arch], **kw}).eval()


def _ids(B=2, T=13, seed=1):
    return torch.randint(3, 61, (B, T), generator=torch.Generator().manual_seed(seed))


def _old_layout(state_dict):
    """The keys archbench wrote before the backbone / head split (checked against a directory saved by the
    code of 2026-12-07: decoder.* at the top, the LM head as decoder.output_projection)."""
    old = {}
    for key, value in state_dict.items():
        if key.startswith("lm_head."):
            key = "decoder.output_projection." + key[len("lm_head.") :]
        elif key.startswith("model.decoder."):
            key = key[len("model.") :]
        old[key] = value.clone()
    return old


@pytest.mark.parametrize("arch", OWN)
def test_backbone_under_head(arch, tmp_path):
    model, x = _model(arch), _ids()
    assert model.base_model_prefix == "model" and model.base_model is model.model
    assert type(model.model).__name__ == BACKBONE[arch] and model.get_decoder() is model.model
    assert "lm_head.weight" in model.state_dict() and not any("output_projection" in k for k in model.state_dict())
    assert type(AutoModel.from_config(model.config)).__name__ == BACKBONE[arch]
    with torch.no_grad():
        hidden = model.model(input_ids=x).last_hidden_state
        assert torch.equal(model(input_ids=x).logits, model.lm_head(hidden).float())
    model.save_pretrained(tmp_path)
    backbone = AutoModel.from_pretrained(tmp_path).eval()  # the backbone of a saved causal LM
    assert type(backbone).__name__ == BACKBONE[arch]
    with torch.no_grad():
        assert torch.equal(backbone(input_ids=x).last_hidden_state, hidden)


@pytest.mark.parametrize("arch", OWN)
def test_hidden_states_and_attentions(arch, monkeypatch):
    """layers + 1 hidden states (the embeddings first, the final-normed output last) and one weight matrix per
    layer: applied to the layer's values they give what the layer computed."""
    model, x = _model(arch), _ids()
    B, T, H, L = *x.shape, SMALL["heads"], SMALL["layers"]
    layer = model.decoder.layers[0]
    mixer = layer.retention if arch == "retnet" else layer.self_attn
    seen = {}  # what the first layer's mixer combined: before the group norm (RetNet) / the sub-LN
    if arch == "retnet":  # GateNorm gets o * sqrt(s) with eps * s (retention.py): o is what the weights give
        from archbench.models.retnet.retention import GateNorm

        apply = GateNorm.apply

        def spy(o, eps, g):
            seen.setdefault("o", o / (torch.as_tensor(eps) / mixer.group_norm.eps).sqrt())
            return apply(o, eps, g)

        monkeypatch.setattr(GateNorm, "apply", spy)
    else:
        mixer.inner_attn_ln.register_forward_pre_hook(lambda m, args: seen.setdefault("o", args[0]))
    with torch.no_grad():
        out = model(input_ids=x, output_hidden_states=True, output_attentions=True, retention_mode="parallel")
    assert len(out.hidden_states) == L + 1 and all(h.shape == (B, T, 32) for h in out.hidden_states)
    dec = model.decoder
    assert torch.equal(out.hidden_states[0], dec.embed_scale * dec.embed_tokens(x))  # no dropout in eval
    assert torch.equal(model.lm_head(out.hidden_states[-1]).float(), out.logits)
    assert len(out.attentions) == L and all(a.shape == (B, H, T, T) for a in out.attentions)
    upper = torch.ones(T, T, dtype=torch.bool).triu(1)
    for a in out.attentions:
        assert a[..., upper].abs().max() == 0  # causal
        if arch != "retnet":  # softmax weights; every query is kept by a ratio-1 branch
            assert torch.allclose(a.sum(-1), torch.ones(B, H, T), atol=1e-5)
    if arch == "longnet":  # no branch reaches across its 8-token segments
        assert out.attentions[0][:, :, 8:, :8].abs().max() == 0
    norm = layer.retention_layer_norm if arch == "retnet" else layer.self_attn_layer_norm
    with torch.no_grad():
        v = mixer.v_proj(norm(out.hidden_states[0])).view(B, T, H, -1)
        o = torch.einsum("bhts,bshd->bhtd", out.attentions[0], v.float())
    if arch != "retnet":
        o = o.transpose(1, 2).reshape(B, T, -1)
    assert (o - seen["o"]).abs().max() <= 1e-5
    with torch.no_grad():  # asked for nothing: nothing extra returned; the same function either way
        plain = model(input_ids=x)
    assert plain.hidden_states is None and plain.attentions is None
    assert (plain.logits - out.logits).abs().max() <= 1e-5  # (with weights, the output is computed through them)


@pytest.mark.parametrize("arch", OWN)
def test_left_padding_and_pads(arch):
    """Left padding leaves real tokens' logits and hidden states as without it; a pad position reads its row's
    last real token, whatever the number of pads."""
    model, x = _model(arch), _ids(B=1, T=9)
    with torch.no_grad():
        alone = model(input_ids=x, output_hidden_states=True)
        padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), x], 1)
        mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones_like(x)], 1)
        left = model(input_ids=padded, attention_mask=mask, output_hidden_states=True)
        assert (left.logits[:, 3:] - alone.logits).abs().max() <= 1e-5
        for a, b in zip(alone.hidden_states, left.hidden_states):
            assert (b[:, 3:] - a).abs().max() <= 1e-5
        right = [
            model(
                input_ids=torch.cat([x, torch.zeros(1, n, dtype=torch.long)], 1),
                attention_mask=(torch.cat([torch.ones_like(x), torch.zeros(1, n, dtype=torch.long)], 1)),
            ).logits
            for n in (2, 5)
        ]
    assert (right[0][:, 9:] - right[1][:, 9:11]).abs().max() <= 1e-5  # real tokens: equal up to kernel blocking
    assert torch.equal(right[0][:, 9], right[0][:, 8]) and torch.equal(right[1][:, 13], right[1][:, 8])


@pytest.mark.parametrize("arch", OWN)
def test_inputs_embeds(arch):
    model, x = _model(arch), _ids()
    embeds = model.get_input_embeddings()(x)
    with torch.no_grad():
        assert torch.equal(model(inputs_embeds=embeds).logits, model(input_ids=x).logits)
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model(input_ids=x, inputs_embeds=embeds)
    kw = dict(max_new_tokens=4, do_sample=False, pad_token_id=0)
    from_ids = model.generate(x, **kw)[:, x.shape[1] :]
    from_embeds = model.generate(inputs_embeds=embeds, attention_mask=torch.ones_like(x), **kw)
    assert torch.equal(from_embeds[:, -4:], from_ids)


@pytest.mark.parametrize("arch", OWN)
def test_generate_returns_hidden_states_and_attentions(arch):
    model, x = _model(arch), _ids(T=7)
    out = model.generate(
        x,
        max_new_tokens=3,
        do_sample=False,
        pad_token_id=0,
        return_dict_in_generate=True,
        output_hidden_states=True,
        output_attentions=True,
    )
    assert len(out.hidden_states) == 3 and len(out.attentions) == 3
    assert [len(step) for step in out.hidden_states] == [SMALL["layers"] + 1] * 3
    assert out.hidden_states[0][0].shape == (2, 7, 32) and out.hidden_states[1][0].shape == (2, 1, 32)
    assert out.attentions[0][0].shape[-2:] == (7, 7) and out.attentions[2][0].shape[-2] == 1


@pytest.mark.parametrize("arch", OWN)
def test_use_cache_follows_config(arch):
    """config.use_cache (True) makes a cache, as in every transformers causal LM; the logits are the same
    bits without it (what the pipeline's training passes: use_cache=False computes no state)."""
    model, x = _model(arch), _ids(T=13)  # RetNet: chunkwise (13 > 4)
    with torch.no_grad():
        cached, plain = model(input_ids=x), model(input_ids=x, use_cache=False)
        assert cached.cache is not None and cached.cache.get_seq_length() == 13 and plain.cache is None
        assert torch.equal(cached.logits, plain.logits)
        model.config.use_cache = False
        assert model(input_ids=x).cache is None
        model.config.use_cache = True
        model.train()  # a training forward keeps no state (it would hold the graph)
        assert model(input_ids=x).cache is None


def _stats_close(fresh, other, name):
    """Same initialisation law: equal when the constructor's tensor is constant, else the same mean / std
    within sampling error."""
    fresh, other = fresh.double().flatten(), other.double().flatten()
    assert torch.isfinite(other).all(), name
    if fresh.numel() == 1 or fresh.std() == 0:
        assert torch.equal(fresh, other), name
        return
    tol = 4 / fresh.numel() ** 0.5 + 0.02
    assert abs(other.std() / fresh.std() - 1) <= tol, (name, other.std().item(), fresh.std().item())
    assert abs(other.mean() - fresh.mean()) <= 4 * fresh.std() / fresh.numel() ** 0.5 + 1e-6, name


@pytest.mark.parametrize("arch,extra", [(a, {}) for a in OWN] + [("transformer", {"block": "retnet"})])
def test_init_weights_as_constructor(arch, extra):
    """init_weights() on a model built on the meta device initialises every tensor as the constructor: the
    same laws (torchscale's xavier gains, sub-LN scaling, N(0, d^-1/2) tables, zero pad row), buffers
    bit-identical."""
    kw = dict(embed_dim=64, ffn_dim=128, heads=2, layers=3, **extra)
    fresh = _model(arch, **kw)
    with torch.device("meta"):
        meta = build_model(arch, **{**SMALL, **EXTRA[arch], **kw})
    meta.to_empty(device="cpu")
    torch.manual_seed(123)
    meta.init_weights()
    assert dict(fresh.named_buffers()).keys() == dict(meta.named_buffers()).keys()
    for name, buf in fresh.named_buffers():
        assert torch.equal(buf, meta.get_buffer(name)), name
    for name, p in fresh.named_parameters():
        _stats_close(p, meta.get_parameter(name), name)
    assert meta.get_input_embeddings().weight[0].abs().max() == 0  # padding row


@pytest.mark.parametrize("arch", OWN)
def test_missing_key_is_initialised(arch, tmp_path):
    """from_pretrained on a checkpoint without a key: that tensor is initialised by the constructor's law
    (not left as uninitialised memory), every loaded one is exactly as saved."""
    kw = dict(embed_dim=64, ffn_dim=128)
    model = _model(arch, **kw)
    model.save_pretrained(tmp_path)
    proj = "retention" if arch == "retnet" else "self_attn"
    missing = f"model.decoder.layers.0.{proj}.q_proj.weight"
    weights = load_file(tmp_path / "model.safetensors")
    del weights[missing]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    for name, value in model.state_dict().items():
        if name == missing:
            _stats_close(value, loaded.state_dict()[name], name)
        else:
            assert torch.equal(value, loaded.state_dict()[name]), name


@pytest.mark.parametrize("arch", OWN)
def test_old_checkpoints_load(arch, tmp_path):
    """A directory and a state dict in the layout before the backbone / head split load unchanged (key
    mapping for from_pretrained, a load_state_dict hook for Lightning checkpoints); a re-save writes
    today's layout."""
    model, x = _model(arch), _ids()
    with torch.no_grad():
        ref = model(input_ids=x).logits
    model.save_pretrained(tmp_path)
    save_file(_old_layout(model.state_dict()), tmp_path / "model.safetensors", metadata={"format": "pt"})
    assert "decoder.output_projection.weight" in load_file(tmp_path / "model.safetensors")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=x).logits, ref)
    loaded.save_pretrained(tmp_path / "again")
    assert set(load_file(tmp_path / "again" / "model.safetensors")) == set(model.state_dict())

    wrapper = nn.Module()  # the LightningModule's layout: the causal LM under "model."
    wrapper.model = _model(arch, seed=5)
    wrapper.load_state_dict({f"model.{k}": v for k, v in _old_layout(model.state_dict()).items()})
    with torch.no_grad():
        assert torch.equal(wrapper.model(input_ids=x).logits, ref)


def _grads(model, x, checkpointing):
    model = copy.deepcopy(model).train()
    if checkpointing:
        model.activation_checkpointing_enable()
    calls = []  # transformers checkpoints a layer's forward (not its hooks): count a child's calls
    base = model.base_model
    layers = base.decoder.layers if hasattr(base, "decoder") else base.layers
    next(layers[0].children()).register_forward_pre_hook(lambda *a: calls.append(1))
    model(input_ids=x, labels=x).loss.backward()
    return {n: p.grad for n, p in model.named_parameters()}, len(calls)


@pytest.mark.parametrize("arch", [*OWN, "llama", "mamba2"])
def test_gradient_checkpointing_same_gradients(arch):
    kw = {**SMALL, **EXTRA.get(arch, {})}
    if arch == "mamba2":
        kw = {k: v for k, v in kw.items() if k != "ffn_dim"}
    torch.manual_seed(0)
    model = build_model(arch, **kw)
    assert model.supports_gradient_checkpointing
    x = _ids(T=12)
    plain, n_plain = _grads(model, x, False)
    ckpt, n_ckpt = _grads(model, x, True)
    assert (n_plain, n_ckpt) == (1, 2)  # the layer really ran again in backward
    for name, g in plain.items():
        assert (g - ckpt[name]).abs().max() <= 1e-6, name


def test_gradient_checkpointing_config_key():
    import yaml

    from archbench.config import grid_points, run_settings, validate_config
    from archbench.training.module import CausalLMModule

    with open("config/config.yaml") as fh:
        config = yaml.safe_load(fh)
    assert (
        run_settings(validate_config(copy.deepcopy(config)), grid_points(config)[0])["gradient_checkpointing"] is False
    )
    config["grid"]["gradient_checkpointing"] = [False, True]  # a grid axis like any other
    points = grid_points(validate_config(copy.deepcopy(config)))
    assert sorted({p["gradient_checkpointing"] for p in points}) == [False, True] and len(points) == 4
    bad = copy.deepcopy(config)
    bad["grid"].pop("gradient_checkpointing")
    bad["training"]["gradient_checkpointing"] = "yes"
    with pytest.raises(Exception, match="gradient_checkpointing"):
        validate_config(bad)
    for flag in (False, True):
        module = CausalLMModule("retnet", {**SMALL, **EXTRA["retnet"]}, learning_rate=1e-3, gradient_checkpointing=flag)
        assert module.model.is_gradient_checkpointing is flag
