"""``transformer``: the Transformer baseline on torchscale's ``Decoder`` — the spec (torch-free):
cross-key checks, closed-form parameters and FLOPs, description, schema fragment and the registry entry
:data:`ARCH`. The model is in :mod:`.modeling`; LongNet (models/longnet/) builds on both.
"""

from __future__ import annotations

from ..spec import Arch
from .spec import (
    POSITIONS,
    RETNET_BLOCK,
    SCHEMA_FRAGMENT,
    TORCHSCALE_BLOCK,
    TORCHSCALE_BLOCK_NO_SUBLN,
    block,
    check,
    describe,
    flops,
    params,
)

__all__ = [
    "ARCH",
    "POSITIONS",
    "RETNET_BLOCK",
    "SCHEMA_FRAGMENT",
    "TORCHSCALE_BLOCK",
    "TORCHSCALE_BLOCK_NO_SUBLN",
    "block",
    "check",
    "describe",
    "flops",
    "params",
]


def _config_class():
    from .modeling import TransformerConfig

    return TransformerConfig


def _model_class():
    from .modeling import TransformerForCausalLM

    return TransformerForCausalLM


ARCH = Arch(
    "transformer",
    _config_class,
    _model_class,
    state="kv_cache",
    width_knob="ffn_dim",
    color="tab:orange",
    display="Transformer",
    constraints=check,
    params=params,
    flops=flops,
    describe=describe,
    beyond_context="positions",
    schema_fragment=SCHEMA_FRAGMENT,
)
