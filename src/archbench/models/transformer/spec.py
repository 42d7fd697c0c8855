"""The torch-free spec of ``transformer`` (its package's docstring says what it is): checks, parameters, FLOPs,
description and its schema fragment; :mod:`.modeling` imports from here, the package adds its registry entry."""

from __future__ import annotations

from ..constraints import ConstraintError, common
from ..spec import dense, embedding_parameters, softmax_attention

POSITIONS = ("xpos", "rotary", "learned")
RETNET_BLOCK = "RetNet block (GLU FFN, RMSNorm, no biases)"
TORCHSCALE_BLOCK = "torchscale Transformer block (GELU FFN, LayerNorm, biases, Sub-LN)"
TORCHSCALE_BLOCK_NO_SUBLN = "torchscale Transformer block without Sub-LN (GELU FFN, LayerNorm, biases)"


def check(s: dict) -> None:
    common(s)
    position = s.get("position")
    if position is not None and position not in POSITIONS:
        raise ConstraintError(["position"], f"position must be one of {POSITIONS}, got {position!r}")


def params(s: dict, include_embeddings: bool = True) -> int:
    """torchscale's block: q, k, v, out with biases, sub-LN in attention and FFN, two LayerNorms, a
    biased GELU FFN. ``block: retnet``: bias-free projections, a GLU FFN, two RMSNorms, no sub-LN."""
    D, F, L = s["embed_dim"], s["ffn_dim"], s["layers"]
    if s.get("block") == "retnet":
        n = L * (4 * D * D + 3 * D * F + 2 * D) + D
    elif s.get("subln") is False:  # no Sub-LN LayerNorms: 2 F + 2 D fewer per layer
        n = L * (4 * D * D + 2 * D * F + F + 9 * D) + 2 * D
    else:
        n = L * (4 * D * D + 2 * D * F + 3 * F + 11 * D) + 2 * D
    learned = s.get("position") == "learned"
    return n + (embedding_parameters(s, learned) if include_embeddings else 0)


def flops(s: dict, device_type: str = "cpu") -> float:
    return dense(s, params(s, include_embeddings=False)) + softmax_attention(s)


def block(s: dict) -> str:
    """The block recipe's words (``block`` / ``subln``), LongNet's too."""
    if s.get("block") == "retnet":
        return RETNET_BLOCK
    return TORCHSCALE_BLOCK_NO_SUBLN if s.get("subln") is False else TORCHSCALE_BLOCK


def describe(s: dict | None = None) -> dict:
    return {"mixer": "softmax attention", "block": block(s or {})}


SCHEMA_FRAGMENT = {  # LongNet is this Transformer with another attention: it reads these too
    "position": {
        "type": "string",
        "enum": ["xpos", "learned"],
        "default": "xpos",
        "description": "Position information of the Transformer / LongNet baseline (xPos as in the RetNet paper).",
    },
    "block": {
        "type": "string",
        "enum": ["transformer", "retnet"],
        "default": "transformer",
        "description": "Block recipe of the `transformer` arch. transformer = torchscale's (GELU FFN with "
        "biases, LayerNorms, biased projections); retnet = RetNet's (gated GLU FFN with swish, RMSNorms, no "
        "biases), so retnet vs that Transformer differs only in the token mixer (retention vs attention).",
    },
    "subln": {
        "type": "boolean",
        "default": True,
        "description": "torchscale's Sub-LN in the `transformer` arch's torchscale block (a LayerNorm before "
        "the attention's output projection and inside the FFN, with its init multiplier); true = torchscale's "
        "faithful decoder. It keeps that Transformer from solving MQAR at small scale (docs/reproduce.md): "
        "false for recall.",
    },
}
