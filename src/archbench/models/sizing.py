"""Model construction from pipeline names, parameter counting and parameter matching."""

from __future__ import annotations

import dataclasses

from torch import nn

from .registry import ARCHS, get_arch


def _check_arch(arch: str) -> None:
    get_arch(arch)  # ValueError naming the registered architectures


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def config_fields(arch: str) -> set[str]:
    """The pipeline names ``arch``'s config class accepts (its dataclass fields)."""
    return _fields(get_arch(arch).config_cls())


def make_config(arch: str, **hparams):
    """Config for ``arch`` (a name in :mod:`archbench.models.registry`) from pipeline keyword names.
    None values mean "use the default"; settings that belong to another registered architecture
    (e.g. ``chunk_size`` for a Transformer) are dropped, so one grid point can build all of them;
    anything else unknown raises TypeError. Wrapped stock models (llama, mamba2) take pipeline names
    in a settings class whose ``to_hf()`` gives the stock transformers config, returned here."""
    cls = get_arch(arch).config_cls()
    own = _fields(cls)
    others = set().union(*(_fields(a.config_cls()) for a in ARCHS.values())) - own
    unknown = set(hparams) - own - others
    if unknown:
        raise TypeError(f"unknown hyperparameters for {arch}: {sorted(unknown)}")
    config = cls(**{k: v for k, v in hparams.items() if v is not None and k in own})
    return config.to_hf() if hasattr(config, "to_hf") else config


def build_model(arch: str, **hparams):
    """Build a freshly initialised ``...ForCausalLM`` for ``arch`` (a registry name) from pipeline
    names (vocab_size, embed_dim, ffn_dim, heads, layers, dropout, max_seq_len, value_embed_dim,
    chunk_size, chunkwise_above, position, segment_lengths, dilated_ratios, ...)."""
    from . import register

    register()  # save_pretrained copies the modeling code only for classes marked for auto classes
    config = make_config(arch, **hparams)
    return get_arch(arch).model_cls()(config)


def count_parameters(model: nn.Module, include_embeddings: bool = True) -> int:
    """Trainable-parameter count (shared tensors once). Embeddings = token embedding, the output
    projection when untied, and a learned position table. Works for any HF causal LM (through
    ``get_input_embeddings`` / ``get_output_embeddings``), archbench's own or a wrapped stock one."""
    total = sum(p.numel() for p in model.parameters())
    if include_embeddings:
        return total
    tables = [
        model.get_input_embeddings(),
        model.get_output_embeddings(),
        getattr(getattr(model, "decoder", None), "embed_positions", None),
    ]
    emb = {id(t.weight): t.weight for t in tables if t is not None}
    return total - sum(p.numel() for p in emb.values())


def analytic_parameters(arch: str, include_embeddings: bool = True, **hparams) -> int:
    """Closed-form count of :func:`count_parameters` for a config (no model is built)."""
    c = make_config(arch, **hparams)
    D, F, L = c.embed_dim, c.ffn_dim, c.layers
    if arch == "retnet":  # q,k: DxD; v,g: DxDv; out: DvxD; GLU: 3DF; 2 RMSNorm weights
        n = L * (2 * D * D + 3 * D * c.value_embed_dim + 3 * D * F + 2 * D) + D
    else:  # q,k,v,out with bias; sub-LN in attention and FFN; 2 LayerNorms; FFN with bias
        n = L * (4 * D * D + 2 * D * F + 3 * F + 11 * D) + 2 * D
    if include_embeddings:
        n += c.vocab_size * D * (1 if c.tie_word_embeddings else 2)
        if arch != "retnet" and c.position == "learned":
            n += c.max_seq_len * D
    return n


def match_ffn_dim(arch: str, **retnet_hparams) -> int:
    """FFN width for ``arch`` ("transformer" or "longnet") whose parameter count matches the RetNet
    built from ``retnet_hparams``; see :func:`archbench.models.matching.match_width` (the general form)."""
    from .matching import match_width

    _check_arch(arch)
    if arch == "retnet":
        raise ValueError(
            "match_ffn_dim sizes a Transformer/LongNet against a RetNet; arch must be 'transformer' or 'longnet'"
        )
    return match_width(arch, retnet_hparams, "retnet", retnet_hparams)
