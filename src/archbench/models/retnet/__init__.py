"""``retnet``: RetNet (arXiv 2307.08621) — the spec (torch-free): cross-key checks, automatic chunk plan,
closed-form parameters, decoding state and training FLOPs, description, schema fragment and the registry
entry :data:`ARCH`. The model is in :mod:`.modeling` (torchscale modules, our retention in
:mod:`.retention`). Hybrids (``attention_every`` / ``attention_layers``, models/hybrid.py) put Llama's
softmax attention (models/hybrid_attention.py) in some layers.
"""

from __future__ import annotations

from ..spec import Arch
from .spec import (
    AUTO_CHUNK,
    AUTO_CHUNK_DEFAULT,
    BLOCK,
    SCHEMA_FRAGMENT,
    auto_chunk,
    check,
    describe,
    flops,
    params,
    plan,
    state_bytes,
    value_embed_dim,
)

__all__ = [
    "ARCH",
    "AUTO_CHUNK",
    "AUTO_CHUNK_DEFAULT",
    "BLOCK",
    "SCHEMA_FRAGMENT",
    "auto_chunk",
    "check",
    "describe",
    "flops",
    "params",
    "plan",
    "state_bytes",
    "value_embed_dim",
]


def _config_class():
    from .modeling import RetNetConfig

    return RetNetConfig


def _model_class():
    from .modeling import RetNetForCausalLM

    return RetNetForCausalLM


ARCH = Arch(
    "retnet",
    _config_class,
    _model_class,
    state="recurrent",
    width_knob="ffn_dim",
    color="tab:blue",
    display="RetNet",
    constraints=check,
    params=params,
    flops=flops,
    describe=describe,
    beyond_context="chunkwise",
    schema_fragment=SCHEMA_FRAGMENT,
)
