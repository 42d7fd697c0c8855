"""``hf-<model_type>``: any causal language model that transformers ships, as a competitor.

``archs: [retnet, llama, hf-rwkv, hf-mamba, hf-jamba]`` names transformers model types (the keys of
``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES``) behind the prefix ``hf-``; ``hf:<type>`` is accepted in a config
and normalised to ``hf-<type>`` (a ``:`` cannot be in a folder name or a Snakemake wildcard). The
registry asks :func:`entry` for the :class:`~archbench.models.spec.Arch` on first lookup
(:func:`archbench.models.registry.get_arch`); this module holds everything else about them:

- :data:`FAMILIES`, the one table of what archbench knows per model type (display name, colour, block
  and mixer words, decoding kind, width knob, a refusal). A type in the table resolves without torch;
  any other type is looked up in transformers' own causal-LM mapping (imports torch, ~2 s) and gets
  defaults: its class name, a colour hashed from its name, softmax attention.
- :class:`HfSettings` (one class; the entry passes its ``model_type``) takes the pipeline's names and
  maps them onto the config's standard attributes where the config class has them (through its
  ``attribute_map``): embed_dim -> hidden_size, layers -> num_hidden_layers, heads ->
  num_attention_heads (and num_key_value_heads, head_dim = embed_dim / heads), ffn_dim ->
  intermediate_size, vocab_size, max_seq_len -> max_position_embeddings, dropout -> the config's dropout
  fields. ``model.hf: {model_type: {key: value}}`` sets the rest (layer patterns, state sizes, ...) and
  wins over the mapped names. A key the config class does not have fails at parse time, naming the key
  and the model type. :meth:`HfSettings.to_hf` returns the stock config (``AutoConfig.for_model``), so
  a saved run loads with ``AutoModelForCausalLM.from_pretrained`` and no ``trust_remote_code``.
- the width knob of parameter matching, ``hf_width``: the config's ``intermediate_size`` when it has one,
  else the family's ``knob`` (Mamba-1: its dt rank), else ``hidden_size``.
- :func:`.modeling.build`: the model (``AutoModelForCausalLM.from_config``), and, for a real (not meta)
  model, a probe that a cached forward returns a cache object whose bytes can be counted, so a type whose
  decoding cannot be measured fails in the first job with one line, not in the latency job.

Torch-free at import (the Snakefile parse reads it); the config checks import transformers.
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import hashlib

from ..constraints import ConstraintError
from ..spec import Arch, StockSettings, dense

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


@dataclasses.dataclass(frozen=True)
class Family:
    """What archbench knows of one transformers model type; unset fields take the defaults of a type
    outside :data:`FAMILIES`.

    display / color: the report's name (default: the causal-LM class name) and plot colour (default:
        hashed from the type); the listed colours are mutually distinct and none is a built-in arch's.
    block / mixer: the report's words (default: the type's block, softmax attention).
    recurrent: a pure recurrent type, O(1) state per token (latency mode "recurrent", reads past its
        training length through its state); otherwise attention layers whose cache grows ("kv_cache").
    knob: the width knob of a config without ``intermediate_size``. Mamba-1's is expand x hidden, a
        coarse step: it turns its dt rank (fine steps of 2 x inner width per layer), keeping the usual
        state size 16; turning the state size instead makes transformers' CPU scan hold
        [batch, inner, length, state].
    ssd_scan: its mixers run Mamba-2's SSD scan as matrix products (transformers' chunked torch path):
        the generic FLOPs formula leaves scans out, which for these is half the count or more
        (benchmarks/flops.py, counted: bamba 0.41x, zamba2 0.55x), so they get no FLOPs (blank columns).
    unsupported: why its decoding state cannot be measured: refused at parse time.
    """

    display: str | None = None
    color: str | None = None
    block: str | None = None
    mixer: str | None = None
    recurrent: bool = False
    knob: str | None = None
    ssd_scan: bool = False
    unsupported: str | None = None


FAMILIES = {
    "rwkv": Family(
        "RWKV-4",
        "#8c564b",
        block="RWKV-4 block (WKV time-mix recurrence + channel-mix)",
        mixer="RWKV time-mix (WKV linear recurrence)",
        recurrent=True,
    ),
    "recurrent_gemma": Family(
        "Griffin (RecurrentGemma)",
        "#e377c2",
        unsupported="RecurrentGemma keeps its decoding state inside its modules and returns no cache "
        "object, so latency / state bytes cannot be measured",
    ),
    "xlstm": Family(
        "xLSTM",
        "#7f7f00",
        recurrent=True,
        knob="hidden_size",
        unsupported="xLSTM's native step kernel fails on a cached decode step in transformers 5.25 "
        "(ValueError: matC_old has wrong shape) on CPU",
    ),
    "mamba": Family(
        "Mamba",
        "#17becf",
        block="Mamba block (selective SSM scan, no FFN)",
        mixer="Mamba selective state-space scan",
        recurrent=True,
        knob="time_step_rank",
    ),
    "falcon_mamba": Family(
        "Falcon-Mamba",
        "#005f73",
        block="Mamba block (selective SSM scan, RMS-normalised B/C/dt, no FFN)",
        mixer="Mamba selective state-space scan",
        recurrent=True,
        knob="time_step_rank",
    ),
    "mamba2": Family("Mamba-2 (hf)", "#7b4173", recurrent=True, ssd_scan=True),
    "jamba": Family(
        "Jamba",
        "#bcbd22",
        block="Jamba hybrid (Mamba + attention layers, MLP / MoE)",
        mixer="Mamba scan + softmax attention (hybrid)",
    ),
    "bamba": Family(
        "Bamba",
        "#ff9896",
        block="Bamba hybrid (Mamba-2 + attention layers, MLP)",
        mixer="Mamba-2 scan + softmax attention (hybrid)",
        ssd_scan=True,
    ),
    "zamba2": Family(
        "Zamba2",
        "#2f4b7c",
        block="Zamba2 hybrid (Mamba-2 layers + a shared attention block)",
        mixer="Mamba-2 scan + shared softmax attention (hybrid)",
        ssd_scan=True,
    ),
    "lfm2": Family(
        "LFM2",
        "#ffbb78",
        block="LFM2 hybrid (gated short convolutions + attention layers, SwiGLU)",
        mixer="gated short convolution + softmax attention (hybrid)",
    ),
    "granitemoehybrid": Family(
        "Granite-4 hybrid",
        "#98df8a",
        block="Granite-4 hybrid (Mamba-2 + attention layers, MLP / MoE)",
        mixer="Mamba-2 scan + softmax attention (hybrid)",
        ssd_scan=True,
    ),
    "falcon_h1": Family(ssd_scan=True),
    "nemotron_h": Family(ssd_scan=True),
    "gpt2": Family("GPT-2", "#c5b0d5"),
    "gpt_neox": Family("GPT-NeoX", "#c49c94"),
    "qwen3": Family("Qwen3", "#f7b6d2"),
    "gemma3_text": Family("Gemma 3", "#dbdb8d"),
    "olmo2": Family("OLMo 2", "#9edae5"),
    "phi3": Family("Phi-3", "#393b79"),
    "mistral": Family("Mistral", "#e7969c"),
    "llama": Family("Llama (hf)", "#843c39"),
}
OTHER = Family()  # a causal LM of transformers outside the table


def model_type(arch: str) -> str:
    return arch.removeprefix(PREFIX)


def normalise(name: str) -> str:
    """``hf:<type>`` -> ``hf-<type>`` (the one spelling in paths and wildcards); other names unchanged."""
    return PREFIX + name[3:] if name.startswith("hf:") else name


@functools.cache
def causal_lm_types() -> dict[str, str]:
    """{model_type: causal-LM class name} of the installed transformers (imports torch)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return dict(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def family(kind: str) -> Family:
    return FAMILIES.get(kind, OTHER)


def display(kind: str) -> str:
    return family(kind).display or causal_lm_types()[kind].removesuffix("ForCausalLM")


def _hash_color(kind: str) -> str:
    hue = int(hashlib.sha256(kind.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.8)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def mixer(arch: str) -> str:
    """The token mixer of an ``hf-`` entry (softmax attention for types without mixer words)."""
    kind = model_type(arch)
    return family(kind).mixer or f"softmax attention ({family(kind).display or kind})"


def describe(arch: str, config: dict | None = None) -> str:
    """The block / mixer of an ``hf-`` entry: the per-type text, plus the layer pattern of ``config``
    (a saved config.json's dict or a metrics.json's model_config) when it has one."""
    kind = model_type(arch)
    text = family(kind).block or f"{family(kind).display or kind} block (transformers {kind})"
    types = (config or {}).get("layer_types") or (config or {}).get("layers_block_type")
    if types:
        text += " — layers: " + ", ".join(types)
    return text


def description(kind: str, settings: dict | None = None) -> dict:
    """The registry's ``describe(settings) -> {"mixer", "block"}`` of ``hf-<kind>``."""
    return {"mixer": mixer(PREFIX + kind), "block": describe(PREFIX + kind)}


def flops(kind: str, settings: dict, device_type: str = "cpu") -> float:
    """The registry's ``flops(settings, device_type)`` of ``hf-<kind>``: :func:`flops_per_token` with N
    counted on the meta device."""
    from .modeling import non_embedding_parameters

    built = {k: v for k, v in settings.items() if k != "seq_len"}  # seq_len: the training length, not a setting
    config = HfSettings(**built, model_type=kind).to_hf()
    return flops_per_token(PREFIX + kind, non_embedding_parameters(config), settings)


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
    return _has(kind, "intermediate_size") or family(kind).knob or "hidden_size"


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


def check(kind: str, settings: dict) -> None:
    """Parse-time check of a grid point: the reason a type is refused, unknown model.hf keys, and the
    config class' own validation (layer patterns, head counts), each as one line naming the type."""
    unsupported = family(kind).unsupported
    if unsupported:
        raise ConstraintError(["hf"], f"hf-{kind} is not supported: {unsupported}")
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
class HfSettings(StockSettings):
    """Pipeline names for the stock transformers config of ``model_type`` (the registry entry passes it).
    ``hf``: the whole ``model.hf`` mapping; only ``hf[model_type]`` is read. ``hf_width``: the matched
    width knob (:func:`knob`), None = as configured."""

    ffn_dim: int | None = None
    dropout: float | None = None
    hf: dict | None = None
    hf_width: int | None = None
    model_type: str = ""

    def check_settings(self, settings: dict) -> None:
        check(self.model_type, settings)

    def to_hf(self):
        from transformers import AutoConfig

        kind = self.model_type
        config = AutoConfig.for_model(kind, **hf_config_kwargs(kind, dataclasses.asdict(self)))
        if not hasattr(config, "max_position_embeddings"):  # evaluation context limits read it
            config.max_position_embeddings = self.max_seq_len
        config.archbench_arch = PREFIX + kind  # evaluation's arch_of; an extra key stock loading keeps
        return config


def _build():
    from .modeling import build

    return build


def entry(arch: str) -> Arch | None:
    """The registry entry of ``hf-<type>`` (None when ``arch`` is not such a name, or transformers has
    no causal LM of that type). Types in :data:`FAMILIES` resolve without importing torch."""
    if not arch.startswith(PREFIX):
        return None
    kind = model_type(arch)
    if kind not in FAMILIES and kind not in causal_lm_types():
        return None
    fam = family(kind)
    return Arch(
        arch,
        lambda: HfSettings,
        _build,
        state="recurrent" if fam.recurrent else "kv_cache",
        width_knob="hf_width",
        color=fam.color or _hash_color(kind),
        display=display(kind),
        constraints=functools.partial(check, kind),
        flops=None if fam.ssd_scan else functools.partial(flops, kind),
        describe=functools.partial(description, kind),
        beyond_context="recurrent" if fam.recurrent else "positions",
        settings_args={"model_type": kind},
    )


# ---- decoding state and FLOPs ------------------------------------------------------------------


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
    return 0 if family(kind).recurrent else int(config.num_hidden_layers)


def flops_per_token(arch: str, params_non_embedding: float, settings: dict) -> float:
    """Training FLOPs per token of an ``hf-`` entry, counted as for the built-in entries
    (:mod:`archbench.models.flops`): ``6 N + 6 d V`` (weights and output projection), plus the dense
    softmax-attention term ``3 * 4 T d`` for each layer that attends. The recurrent / convolutional mixers'
    scans are left out: elementwise updates, O(d x state) per token, which torch's FLOP counter does not
    count either (benchmarks/flops.py compares the two)."""
    return dense(settings, params_non_embedding) + 3 * 4 * settings["seq_len"] * settings["embed_dim"] * (
        attention_layers(arch, settings)
    )
