"""What each comparison compares: the token mixer and the block recipe around it, per architecture.

The descriptions come from the architecture's registry entry (its ``mixer`` / ``block`` fields) where
it has them; the tables below describe the built-in architectures until every entry does.

RetNet vs our Transformer differs in both the mixer (retention vs attention) and the block (GLU FFN,
RMSNorm, no biases vs GELU FFN with biases, LayerNorm) unless ``model.block: retnet`` gives the
Transformer (and LongNet) RetNet's block; the summary names which of the two each pair is.
"""

from __future__ import annotations

from archbench.models.registry import ARCHS

RETNET_BLOCK = "RetNet block (GLU FFN, RMSNorm, no biases)"
MIXERS = {
    "retnet": "multi-scale retention",
    "transformer": "softmax attention",
    "longnet": "dilated attention",
    "llama": "softmax attention with RoPE",
    "mamba2": "Mamba-2 state-space scan",
}
BLOCKS = {
    "retnet": RETNET_BLOCK,
    "llama": "Llama block (SwiGLU FFN, RMSNorm, no biases)",
    "mamba2": "Mamba-2 block (gated mixer, no FFN)",
}
TORCHSCALE_BLOCK = "torchscale Transformer block (GELU FFN, LayerNorm, biases)"


def _registered(arch: str, field: str) -> str | None:
    return getattr(ARCHS.get(arch), field, None)


def mixer_of(arch: str) -> str:
    return _registered(arch, "mixer") or MIXERS.get(arch, arch)


def block_of(arch: str, block: str | None = None) -> str:
    """The block recipe of ``arch``; ``block`` is the run's ``model.block`` (transformer / longnet)."""
    if arch in ("transformer", "longnet"):
        return RETNET_BLOCK if block == "retnet" else TORCHSCALE_BLOCK
    return _registered(arch, "block") or BLOCKS.get(arch, f"{arch}'s own block")


def pair_kind(a: str, b: str, block: str | None = None) -> str:
    """One phrase naming what the comparison a vs b varies."""
    mixer_a, mixer_b = mixer_of(a), mixer_of(b)
    block_a, block_b = block_of(a, block), block_of(b, block)
    if block_a == block_b:
        return f"same block ({block_a}), different token mixer: {mixer_a} vs {mixer_b}"
    return f"different block and mixer: {mixer_a} in a {block_a} vs {mixer_b} in a {block_b}"
