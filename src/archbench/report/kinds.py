"""What each comparison compares: the token mixer and the block recipe around it, per architecture.

RetNet vs our Transformer differs in both the mixer (retention vs attention) and the block (GLU FFN,
RMSNorm, no biases vs GELU FFN with biases, LayerNorm) unless ``model.block: retnet`` gives the
Transformer (and LongNet) RetNet's block; the summary names which of the two each pair is.
"""

from __future__ import annotations

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


def block_of(arch: str, block: str | None = None) -> str:
    """The block recipe of ``arch``; ``block`` is the run's ``model.block`` (transformer / longnet)."""
    if arch in ("transformer", "longnet"):
        return RETNET_BLOCK if block == "retnet" else TORCHSCALE_BLOCK
    if arch.startswith("hf-"):  # any transformers causal LM: described per model type (models/hf.py)
        from archbench.models.hf import describe

        return describe(arch)
    return BLOCKS.get(arch, f"{arch}'s own block")


def pair_kind(a: str, b: str, block: str | None = None) -> str:
    """One phrase naming what the comparison a vs b varies."""
    from archbench.models.hf import PREFIX, mixer

    mixer_a, mixer_b = ((mixer(x) if x.startswith(PREFIX) else MIXERS.get(x, x)) for x in (a, b))
    block_a, block_b = block_of(a, block), block_of(b, block)
    if block_a == block_b:
        return f"same block ({block_a}), different token mixer: {mixer_a} vs {mixer_b}"
    return f"different block and mixer: {mixer_a} in a {block_a} vs {mixer_b} in a {block_b}"
