"""``longnet``: LongNet (arXiv 2307.02486), the Transformer with causal dilated attention — the spec
(torch-free): its segments, cross-key checks, FLOPs, description, schema fragment and the registry
entry :data:`ARCH`. Its parameters are the Transformer's. The model is in :mod:`.modeling`.
"""

from __future__ import annotations

import dataclasses

from ..transformer import ARCH as TRANSFORMER
from .spec import SCHEMA_FRAGMENT, check, describe, flops, segments

__all__ = ["ARCH", "SCHEMA_FRAGMENT", "check", "describe", "flops", "segments"]


def _config_class():
    from .modeling import LongNetConfig

    return LongNetConfig


def _model_class():
    from .modeling import LongNetForCausalLM

    return LongNetForCausalLM


# the Transformer's entry (decoding state, width knob, parameters, positions) with LongNet's own parts
ARCH = dataclasses.replace(
    TRANSFORMER,
    name="longnet",
    config_class=_config_class,
    model_class=_model_class,
    color="tab:green",
    display="LongNet",
    constraints=check,
    flops=flops,
    describe=describe,
    schema_fragment=SCHEMA_FRAGMENT,
)
