"""``hf-<model_type>``: any causal language model that transformers ships, as a competitor.

``archs: [retnet, llama, hf-rwkv, hf-mamba, hf-jamba]`` names transformers model types (the keys of
``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES``) behind the prefix ``hf-``; ``hf:<type>`` is accepted in a config
and normalised to ``hf-<type>`` (a ``:`` cannot be in a folder name or a Snakemake wildcard). The
registry builds the entry on first lookup (:func:`archbench.models.registry.get_arch`); this module
holds everything else about them:

- :class:`HfSettings` (one subclass per model type, ``HfSettings[rwkv]``) takes the pipeline's names and
  maps them onto the config's standard attributes where the config class has them (through its
  ``attribute_map``): embed_dim -> hidden_size, layers -> num_hidden_layers, heads ->
  num_attention_heads (and num_key_value_heads, head_dim = embed_dim / heads), ffn_dim ->
  intermediate_size, vocab_size, max_seq_len -> max_position_embeddings, dropout -> the config's dropout
  fields. ``model.hf: {model_type: {key: value}}`` sets the rest (layer patterns, state sizes, ...) and
  wins over the mapped names. A key the config class does not have fails at parse time, naming the key
  and the model type. :meth:`HfSettings.to_hf` returns the stock config (``AutoConfig.for_model``), so
  a saved run loads with ``AutoModelForCausalLM.from_pretrained`` and no ``trust_remote_code``.
- the width knob of parameter matching, ``hf_width``: the config's ``intermediate_size`` when it has one,
  else the per-type choice in :data:`KNOBS` (Mamba-1: the SSM state size, as for Mamba-2), else
  ``hidden_size``.
- :func:`build`: the model (``AutoModelForCausalLM.from_config``), and, for a real (not meta) model, a
  probe that a cached forward returns a cache object whose bytes can be counted, so a type whose
  decoding cannot be measured fails in the first job with one line, not in the latency job.

Colours, display names and the block description are per type (:func:`entry`, :func:`describe`).
Everything above the ``build`` section is torch-free: the Snakefile parse reads it.
"""

from __future__ import annotations

import ast
import colorsys
import dataclasses
import functools
import hashlib
import importlib.util
import os
from typing import ClassVar

from archbench.models.constraints import ConstraintError

PREFIX = "hf-"
# pipeline name -> the transformers standard attribute it sets (when the config class has it)
STANDARD = {
    "vocab_size": "vocab_size",
    "embed_dim": "hidden_size",
    "layers": "num_hidden_layers",
    "heads": "num_attention_heads",
    "ffn_dim": "intermediate_size",
    "max_seq_len": "max_position_embeddings",
    "tie_word_embeddings": "tie_word_embeddings",
    "pad_token_id": "pad_token_id",
    "bos_token_id": "bos_token_id",
    "eos_token_id": "eos_token_id",
}
DROPOUTS = ("attention_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop")
# Width knob of types without an intermediate_size field (Mamba-1's is expand x hidden, a coarse step):
# Mamba-1 turns its dt rank (fine steps of 2 x inner width per layer), keeping the usual state size
# 16; turning the state size instead makes transformers' CPU scan hold [batch, inner, length, state].
KNOBS = {"mamba": "time_step_rank", "falcon_mamba": "time_step_rank", "xlstm": "hidden_size"}
# Types whose decoding state the pipeline cannot measure: refused at parse time, with the reason.
UNSUPPORTED = {
    "recurrent_gemma": "RecurrentGemma keeps its decoding state inside its modules and returns no cache "
    "object, so latency / state bytes cannot be measured",
    "xlstm": "xLSTM's native step kernel fails on a cached decode step in transformers 5.25 "
    "(ValueError: matC_old has wrong shape) on CPU",
}
# Pure recurrent types: O(1) state per token (latency mode "recurrent"); every other type has attention
# layers whose cache grows with the context ("kv_cache").
RECURRENT = ("mamba", "falcon_mamba", "mamba2", "rwkv", "xlstm")
# Types whose mixers run Mamba-2's SSD scan as matrix products (transformers' chunked torch path): the
# generic FLOPs formula leaves scans out, which for these is half the count or more (benchmarks/flops.py,
# counted: bamba 0.41x, zamba2 0.55x). They get no FLOPs (blank columns) rather than a wrong number.
SSD_SCAN = ("mamba2", "bamba", "zamba2", "granitemoehybrid", "falcon_h1", "nemotron_h")
DISPLAY = {
    "rwkv": "RWKV-4",
    "recurrent_gemma": "Griffin (RecurrentGemma)",
    "xlstm": "xLSTM",
    "mamba": "Mamba",
    "falcon_mamba": "Falcon-Mamba",
    "mamba2": "Mamba-2 (hf)",
    "jamba": "Jamba",
    "bamba": "Bamba",
    "zamba2": "Zamba2",
    "lfm2": "LFM2",
    "granitemoehybrid": "Granite-4 hybrid",
    "gpt2": "GPT-2",
    "gpt_neox": "GPT-NeoX",
    "qwen3": "Qwen3",
    "gemma3_text": "Gemma 3",
    "olmo2": "OLMo 2",
    "phi3": "Phi-3",
    "mistral": "Mistral",
    "llama": "Llama (hf)",
}
# Fixed, mutually distinct colours for the listed types (none is a built-in arch's); others get one
# from the hash of their name.
COLORS = {
    "rwkv": "#8c564b",
    "recurrent_gemma": "#e377c2",
    "xlstm": "#7f7f00",
    "mamba": "#17becf",
    "falcon_mamba": "#005f73",
    "jamba": "#bcbd22",
    "bamba": "#ff9896",
    "zamba2": "#2f4b7c",
    "lfm2": "#ffbb78",
    "granitemoehybrid": "#98df8a",
    "gpt2": "#c5b0d5",
    "gpt_neox": "#c49c94",
    "qwen3": "#f7b6d2",
    "gemma3_text": "#dbdb8d",
    "olmo2": "#9edae5",
    "phi3": "#393b79",
    "mistral": "#e7969c",
    "llama": "#843c39",
    "mamba2": "#7b4173",
}
BLOCK = {
    "rwkv": "RWKV-4 block (WKV time-mix recurrence + channel-mix)",
    "mamba": "Mamba block (selective SSM scan, no FFN)",
    "falcon_mamba": "Mamba block (selective SSM scan, RMS-normalised B/C/dt, no FFN)",
    "jamba": "Jamba hybrid (Mamba + attention layers, MLP / MoE)",
    "bamba": "Bamba hybrid (Mamba-2 + attention layers, MLP)",
    "zamba2": "Zamba2 hybrid (Mamba-2 layers + a shared attention block)",
    "lfm2": "LFM2 hybrid (gated short convolutions + attention layers, SwiGLU)",
    "granitemoehybrid": "Granite-4 hybrid (Mamba-2 + attention layers, MLP / MoE)",
}

MIXER = {
    "rwkv": "RWKV time-mix (WKV linear recurrence)",
    "mamba": "Mamba selective state-space scan",
    "falcon_mamba": "Mamba selective state-space scan",
    "jamba": "Mamba scan + softmax attention (hybrid)",
    "bamba": "Mamba-2 scan + softmax attention (hybrid)",
    "zamba2": "Mamba-2 scan + shared softmax attention (hybrid)",
    "lfm2": "gated short convolution + softmax attention (hybrid)",
    "granitemoehybrid": "Mamba-2 scan + softmax attention (hybrid)",
}


def model_type(arch: str) -> str:
    return arch.removeprefix(PREFIX)


def normalise(name: str) -> str:
    """``hf:<type>`` -> ``hf-<type>`` (the one spelling in paths and wildcards); other names unchanged."""
    return PREFIX + name[3:] if name.startswith("hf:") else name


def _transformers_dir() -> str | None:
    spec = importlib.util.find_spec("transformers")
    return os.path.dirname(spec.origin) if spec and spec.origin else None


def _literal_mapping(path: str, name: str) -> dict:
    """The ``name = OrderedDict([...])`` literal of a transformers source file, read with ``ast``:
    importing transformers' auto modules imports torch (~2 s), which the Snakefile parse avoids."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            call = node.value
            if isinstance(call, ast.Call) and call.args:
                return dict(ast.literal_eval(call.args[0]))
    return {}


@functools.cache
def causal_lm_types() -> dict[str, str]:
    """{model_type: causal-LM class name} of the installed transformers (torch-free)."""
    root = _transformers_dir()
    if root is None:
        return {}
    return _literal_mapping(
        os.path.join(root, "models", "auto", "modeling_auto.py"), "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"
    )


def entry(arch: str) -> dict | None:
    """The registry fields of ``hf-<type>`` (None when ``arch`` is not such a name, or transformers has
    no causal LM of that type)."""
    if not arch.startswith(PREFIX):
        return None
    kind = model_type(arch)
    if kind not in causal_lm_types():
        return None
    return {
        "name": arch,
        "config_class": f"archbench.models.hf:HfSettings[{kind}]",
        "model_class": "archbench.models.hf:build",
        "state": "recurrent" if kind in RECURRENT else "kv_cache",
        "width_knob": "hf_width",
        "color": COLORS.get(kind) or _hash_color(kind),
        "display": DISPLAY.get(kind) or causal_lm_types()[kind].removesuffix("ForCausalLM"),
        "constraints": f"archbench.models.hf:check[{kind}]",
        "flops": None if kind in SSD_SCAN else f"archbench.models.hf:flops[{kind}]",
        "describe": f"archbench.models.hf:description[{kind}]",
        "beyond_context": "recurrent" if kind in RECURRENT else "positions",
    }


def _hash_color(kind: str) -> str:
    hue = int(hashlib.sha256(kind.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.8)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def mixer(arch: str) -> str:
    """The token mixer of an ``hf-`` entry (softmax attention for types not in :data:`MIXER`)."""
    return MIXER.get(model_type(arch), f"softmax attention ({DISPLAY.get(model_type(arch), model_type(arch))})")


def describe(arch: str, config: dict | None = None) -> str:
    """The block / mixer of an ``hf-`` entry: the per-type text, plus the layer pattern of ``config``
    (a saved config.json's dict or a metrics.json's model_config) when it has one."""
    kind = model_type(arch)
    text = BLOCK.get(kind) or f"{DISPLAY.get(kind, kind)} block (transformers {kind})"
    types = (config or {}).get("layer_types") or (config or {}).get("layers_block_type")
    if types:
        text += " — layers: " + ", ".join(types)
    return text


# ---- settings (pipeline names -> stock config) -------------------------------------------------


def _config_class(kind: str):
    from transformers import CONFIG_MAPPING

    return CONFIG_MAPPING[kind]


@functools.cache
def config_keys(kind: str) -> tuple[frozenset, dict]:
    """(keys the config class takes: its dataclass fields and attribute_map aliases, attribute_map)."""
    cls = _config_class(kind)
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    amap = dict(getattr(cls, "attribute_map", {}) or {})
    return frozenset(fields | set(amap)), amap


def _has(kind: str, attr: str) -> str | None:
    """The field ``attr`` (a standard name) goes to in ``kind``'s config, or None."""
    keys, amap = config_keys(kind)
    if attr in keys:
        return amap.get(attr, attr)
    return None


def knob(kind: str) -> str:
    """The config field parameter matching turns (see the module docstring)."""
    return _has(kind, "intermediate_size") or KNOBS.get(kind) or "hidden_size"


def hf_config_kwargs(kind: str, settings: dict) -> dict:
    """Keyword arguments of ``AutoConfig.for_model(kind, ...)`` from flat pipeline settings."""
    out = {}
    for name, attr in STANDARD.items():
        field = _has(kind, attr)
        if field and settings.get(name) is not None:
            out[field] = settings[name]
    heads, embed = settings.get("heads"), settings.get("embed_dim")
    if heads and embed and out.get(_has(kind, "num_attention_heads") or ""):
        for attr, value in (("num_key_value_heads", heads), ("head_dim", embed // heads)):
            field = _has(kind, attr)
            if field:
                out[field] = value
    dropout = settings.get("dropout")
    if dropout is not None:
        out.update({f: dropout for f in DROPOUTS if _has(kind, f)})
    own = dict((settings.get("hf") or {}).get(kind) or {})
    unknown = sorted(set(own) - config_keys(kind)[0])
    if unknown:
        raise ConstraintError(["hf"], f"model.hf.{kind}: unknown key {unknown[0]!r} for model type {kind!r}")
    out.update(own)
    if settings.get("hf_width") is not None:
        out[knob(kind)] = settings["hf_width"]
    return out


def _check(kind: str, settings: dict) -> None:
    """Parse-time check of a grid point: the reason a type is refused, unknown model.hf keys, and the
    config class' own validation (layer patterns, head counts), each as one line naming the type."""
    if kind in UNSUPPORTED:
        raise ConstraintError(["hf"], f"hf-{kind} is not supported: {UNSUPPORTED[kind]}")
    for key in ("vocab_size", "embed_dim", "heads", "layers", "max_seq_len"):
        value = settings.get(key)
        if value is not None and int(value) < 1:
            raise ConstraintError([key], f"{key} must be a positive integer, got {value!r}")
    kwargs = hf_config_kwargs(kind, settings)
    try:
        from transformers import AutoConfig

        AutoConfig.for_model(kind, **kwargs)
    except Exception as err:  # the config class' own message (e.g. a layer pattern of the wrong length)
        first = str(err).strip().splitlines()
        raise ConstraintError(["hf"], f"transformers {kind} config: {' '.join(first[:2])}") from None


@dataclasses.dataclass
class HfSettings:
    """Pipeline names for a stock transformers config of ``model_type`` (set on the per-type subclass
    ``HfSettings[<type>]``). ``hf``: the whole ``model.hf`` mapping; only ``hf[model_type]`` is read.
    ``hf_width``: the matched width knob (:func:`knob`), None = as configured."""

    model_type: ClassVar[str] = ""
    stock: ClassVar[bool] = True

    vocab_size: int = 32000
    embed_dim: int = 512
    ffn_dim: int | None = None
    heads: int = 8
    layers: int = 6
    dropout: float | None = None
    max_seq_len: int = 1024
    hf: dict | None = None
    hf_width: int | None = None
    tie_word_embeddings: bool = False
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2

    def __post_init__(self):
        self.check_settings(dataclasses.asdict(self))

    @classmethod
    def check_settings(cls, settings: dict) -> None:
        _check(cls.model_type, settings)

    def to_hf(self):
        from transformers import AutoConfig

        kind = self.model_type
        config = AutoConfig.for_model(kind, **hf_config_kwargs(kind, dataclasses.asdict(self)))
        if not hasattr(config, "max_position_embeddings"):  # evaluation context limits read it
            config.max_position_embeddings = self.max_seq_len
        config.archbench_arch = PREFIX + kind  # evaluation's arch_of; an extra key stock loading keeps
        return config


@functools.cache
def settings_class(kind: str) -> type:
    return type(f"HfSettings_{kind}", (HfSettings,), {"model_type": kind, "__module__": __name__})


@functools.cache
def checker(kind: str):
    return functools.partial(_check, kind)


def _flops_fn(kind: str):
    """The registry's ``flops(settings, device_type)`` of ``hf-<kind>``: :func:`flops_per_token` with N
    counted on the meta device."""

    def flops(settings: dict, device_type: str = "cpu") -> float:
        from archbench.models.sizing import count

        arch = PREFIX + kind
        built = {k: v for k, v in settings.items() if k != "seq_len"}  # seq_len: the training length, not a setting
        return flops_per_token(arch, count(arch, built, False), settings)

    return flops


def _describe_fn(kind: str):
    """The registry's ``describe(settings) -> {"mixer", "block"}`` of ``hf-<kind>``."""
    return lambda settings=None: {"mixer": mixer(PREFIX + kind), "block": describe(PREFIX + kind)}


def __getattr__(name: str):
    """``HfSettings[<type>]``, ``check[<type>]``, ``flops[<type>]`` and ``description[<type>]``: the
    per-type objects the registry names."""
    base, _, rest = name.partition("[")
    if rest.endswith("]") and base in ("HfSettings", "check", "flops", "description"):
        kind = rest[:-1]
        return {"HfSettings": settings_class, "check": checker, "flops": _flops_fn, "description": _describe_fn}[base](
            kind
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- build (imports torch) -------------------------------------------------------------------------


def build(config):
    """A freshly initialised stock ``...ForCausalLM`` for ``config``; a real model is probed once."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config)
    if next(model.parameters()).device != torch.device("meta"):
        probe(model)
    return model


def decode_cache(output):
    """The decoding state a cached forward returned: ``cache`` (transformers' Cache classes) or RWKV's
    ``state`` list."""
    cache = output.get("cache")
    return cache if cache is not None else output.get("state")


def probe(model) -> None:
    """Prefill 3 tokens with ``use_cache=True``, decode one: the cache must come back as an object whose
    bytes :func:`archbench.models.cache.cache_nbytes` counts (> 0). Raises one clear line otherwise."""
    import torch

    from archbench.models.cache import cache_nbytes  # torch: only when a model is built

    kind, was_training = model.config.model_type, model.training
    ids = torch.tensor([[4, 5, 6]], device=next(model.parameters()).device) % model.config.vocab_size
    model.eval()
    try:
        with torch.no_grad():
            out = model(ids, use_cache=True)
            cache = decode_cache(out)
            if cache is None:
                raise RuntimeError("a cached forward returned no cache object")
            nbytes = cache_nbytes(cache)
            if nbytes <= 0:
                raise RuntimeError(f"its cache ({type(cache).__name__}) holds no countable tensors")
            model(ids[:, -1:], **{cache_keyword(output=out): cache}, use_cache=True)
    except Exception as err:
        raise RuntimeError(f"hf-{kind}: cached decoding cannot be measured on this device: {err}") from None
    finally:
        model.train(was_training)


def cache_keyword(model=None, output=None) -> str:
    """The forward keyword the decoding state goes back in: ``state`` for RWKV, else ``cache``."""
    if output is not None:
        return "cache" if output.get("cache") is not None else "state"
    return "state" if getattr(model.config, "model_type", None) == "rwkv" else "cache"


def attention_layers(arch: str, settings: dict) -> int:
    """Layers of the built config with a softmax-attention mixer (its ``layer_types`` /
    ``layers_block_type``: full, sliding or hybrid; every layer when the config lists no pattern and
    the type is not pure recurrent)."""
    from transformers import AutoConfig

    kind = model_type(arch)
    config = AutoConfig.for_model(kind, **hf_config_kwargs(kind, settings))
    types = getattr(config, "layer_types", None) or getattr(config, "layers_block_type", None)
    if types:
        return sum(1 for t in types if t != "linear_attention" and ("attention" in t or t == "hybrid"))
    return 0 if kind in RECURRENT else int(config.num_hidden_layers)


def flops_per_token(arch: str, params_non_embedding: float, settings: dict) -> float:
    """Training FLOPs per token of an ``hf-`` entry, counted as for the built-in entries
    (:mod:`archbench.models.flops`): ``6 N + 6 d V`` (weights and output projection), plus the dense
    softmax-attention term ``3 * 4 T d`` for each layer that attends. The recurrent / convolutional mixers'
    scans are left out: elementwise updates, O(d x state) per token, which torch's FLOP counter does not
    count either (benchmarks/flops.py compares the two)."""
    from .flops import dense

    return dense(settings, params_non_embedding) + 3 * 4 * settings["seq_len"] * settings["embed_dim"] * (
        attention_layers(arch, settings)
    )
