"""What each comparison compares: the token mixer and the block recipe around it, per architecture.

The descriptions come from each architecture's registry entry (``Arch.description(settings)``), so a
new or plugin architecture describes itself. RetNet vs our Transformer differs in both the mixer
(retention vs attention) and the block (GLU FFN, RMSNorm, no biases vs GELU FFN with biases, LayerNorm)
unless ``model.block: retnet`` gives the Transformer (and LongNet) RetNet's block; the summary names
which of the two each pair is.
"""

from __future__ import annotations

from archbench.models.registry import get_arch


def pair_kind(a: str, b: str, block: str | None = None) -> str:
    """One phrase naming what the comparison a vs b varies; ``block`` is the runs' ``model.block``."""
    settings = {"block": block} if block else {}
    da, db = get_arch(a).description(settings), get_arch(b).description(settings)
    if da["block"] == db["block"]:
        return f"same block ({da['block']}), different token mixer: {da['mixer']} vs {db['mixer']}"
    return f"different block and mixer: {da['mixer']} in a {da['block']} vs {db['mixer']} in a {db['block']}"
