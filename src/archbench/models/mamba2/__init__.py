"""``mamba2``: transformers' stock ``Mamba2ForCausalLM`` (state-space duality, chunked scan), wrapped.

:class:`Mamba2Settings` takes the pipeline's names plus Mamba-2's own ``ssm_*`` settings and
:meth:`Mamba2Settings.to_hf` returns a stock ``Mamba2Config``: a saved run has ``model_type:
mamba2`` and loads through ``AutoModelForCausalLM`` without ``trust_remote_code``. On CPU the
reference PyTorch path runs; on CUDA transformers uses the ``mamba_ssm`` / ``causal_conv1d``
kernels when they are installed (the ``[gpu]`` extra). Decoding carries an O(1) state per layer
(a short convolution window and the SSM state), whatever the context length.

Keys are prefixed ``ssm_`` so none means two things: RetNet's ``chunk_size`` is its chunkwise
retention chunk, Mamba-2's scan chunk is ``ssm_chunk_size``.

**Hybrids** (``model.attention_every`` / ``model.attention_layers``, :mod:`archbench.models.hybrid`):
the chosen layers' mixer is causal softmax attention (``heads`` query heads and as many key / value
heads, head width embed_dim / heads, no biases, as our Llama's), every other layer the same Mamba-2
block; a block is RMSNorm + mixer + residual, no FFN, in both kinds. :meth:`Mamba2Settings.to_hf`
then returns transformers' stock ``NemotronHConfig`` with ``layers_block_type`` holding only
``linear_attention`` (its Mamba-2 block, numerically identical to ``Mamba2ForCausalLM``'s: same
weights, bit-identical logits, a test checks it) and ``full_attention``; no MLP or MoE layers. One
deviation from the issue's recipe: NemotronH's attention has **no positional encoding** (no RoPE;
"NoPE", as Nemotron-H and Jamba ship it: the Mamba-2 layers carry the order). In exchange a saved
hybrid is a stock type (``model_type: nemotron_h``) that loads through ``AutoModelForCausalLM``
without remote code, decodes with transformers' mixed ``DynamicCache`` (convolution + SSM state for
Mamba-2 layers, a key / value cache for attention layers) and uses the ``mamba_ssm`` kernels on CUDA.
:func:`.modeling.build` initialises the Mamba-2 layers, embeddings, final norm and head exactly as the stock
``Mamba2ForCausalLM`` of the same settings and seed would be (it builds one and copies it), so a hybrid
differs from the pure model of its seed only in its attention layers (N(0, 0.02), Llama's init).
``model.attention_every: 0`` (the default) is today's stock ``Mamba2ForCausalLM``, unchanged.
"""

from __future__ import annotations

from ..spec import Arch
from .spec import (
    ATTENTION,
    DESCRIPTION,
    MAMBA,
    SCHEMA_FRAGMENT,
    Mamba2Settings,
    attention_indices,
    check,
    describe,
    flops,
    geometry,
    params,
    state_bytes,
)

__all__ = [
    "ARCH",
    "MAMBA",
    "ATTENTION",
    "DESCRIPTION",
    "Mamba2Settings",
    "SCHEMA_FRAGMENT",
    "attention_indices",
    "check",
    "describe",
    "flops",
    "geometry",
    "params",
    "state_bytes",
]


def _build():
    from .modeling import build

    return build


ARCH = Arch(
    "mamba2",
    lambda: Mamba2Settings,
    _build,  # stock Mamba2ForCausalLM; a hybrid's stock NemotronHForCausalLM
    state="recurrent",
    width_knob="ssm_state_size",
    color="tab:purple",
    display="Mamba-2",
    constraints=check,
    params=params,
    flops=flops,
    describe=describe,
    beyond_context="recurrent",
    blocks_per_layer=2,
    schema_fragment=SCHEMA_FRAGMENT,
)
