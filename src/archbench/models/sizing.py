"""Model construction from pipeline names, parameter counting and parameter matching."""

from __future__ import annotations

import dataclasses

from torch import nn

from .registry import ARCHS, get_arch


def _check_arch(arch: str) -> None:
    get_arch(arch)  # ValueError naming the registered architectures


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def make_config(arch: str, **hparams):
    """Config for ``arch`` (a name in :mod:`archbench.models.registry`) from pipeline keyword names.
    None values mean "use the default"; settings that belong to another registered architecture
    (e.g. ``chunk_size`` for a Transformer) are dropped, so one grid point can build all of them;
    anything else unknown raises TypeError."""
    cls = get_arch(arch).config_cls()
    own = _fields(cls)
    others = set().union(*(_fields(a.config_cls()) for a in ARCHS.values())) - own
    unknown = set(hparams) - own - others
    if unknown:
        raise TypeError(f"unknown hyperparameters for {arch}: {sorted(unknown)}")
    return cls(**{k: v for k, v in hparams.items() if v is not None and k in own})


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
    projection when untied, and a learned position table."""
    total = sum(p.numel() for p in model.parameters())
    if include_embeddings:
        return total
    dec = model.decoder
    emb = {id(dec.embed_tokens.weight): dec.embed_tokens.weight,
           id(dec.output_projection.weight): dec.output_projection.weight}
    if getattr(dec, "embed_positions", None) is not None:
        emb[id(dec.embed_positions.weight)] = dec.embed_positions.weight
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
    """FFN width for ``arch`` ("transformer" or "longnet") whose parameter count matches the
    RetNet built from ``retnet_hparams`` (embed_dim, ffn_dim, heads, layers, value_embed_dim,
    vocab_size, ...).

    The count WITHOUT embeddings is matched exactly (to the nearest integer width): it is the part
    that differs between the architectures. Embeddings are the same for both (same vocabulary and
    width, untied), so totals with embeddings then agree even more closely — unless the
    Transformer uses ``position="learned"``, whose table (max_seq_len x embed_dim) only it has.
    Keys meant for the Transformer (``position``, ``segment_lengths``, ...) may be passed too.
    """
    _check_arch(arch)
    if arch == "retnet":
        raise ValueError("match_ffn_dim sizes a Transformer/LongNet against a RetNet; arch must "
                         "be 'transformer' or 'longnet'")
    target = analytic_parameters("retnet", include_embeddings=False, **retnet_hparams)
    c = make_config("retnet", **retnet_hparams)
    D, L = c.embed_dim, c.layers
    fixed = L * (4 * D * D + 11 * D) + 2 * D
    return max(1, round((target - fixed) / (L * (2 * D + 3))))
