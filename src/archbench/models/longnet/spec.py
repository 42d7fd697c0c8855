"""The torch-free spec of ``longnet`` (its package's docstring says what it is): checks, parameters, FLOPs,
description and its schema fragment; :mod:`.modeling` imports from here, the package adds its registry entry."""

from __future__ import annotations

from ..constraints import ConstraintError
from ..spec import dense
from ..transformer.spec import block, params
from ..transformer.spec import check as transformer_check


def segments(s: dict) -> tuple[list[int], list[int]]:
    """(segment_lengths, dilated_ratios); unset: the paper's geometric pattern up to the context."""
    w = s.get("segment_lengths")
    if w is None:
        base = max(s["max_seq_len"] // 4, 1)
        w = [base, 2 * base, 4 * base]
    r = s.get("dilated_ratios")
    if r is None:
        r = [1, 2, 4][: len(w)]
    return [int(x) for x in w], [int(x) for x in r]


def check(s: dict) -> None:
    transformer_check(s)
    w, r = segments(s)
    keys = ["segment_lengths", "dilated_ratios"]
    if len(w) != len(r) or not w:
        raise ConstraintError(keys, f"segment_lengths {w} and dilated_ratios {r} must be non-empty and of equal length")
    if any(ri < 1 or wi < 1 or wi % ri for wi, ri in zip(w, r)):
        raise ConstraintError(
            keys,
            f"each dilated ratio must be >= 1 and divide its segment length: segment_lengths={w}, dilated_ratios={r}",
        )
    if 1 not in r:
        raise ConstraintError(
            ["dilated_ratios"], f"dilated_ratios {r} must contain 1 (otherwise some queries attend to nothing)"
        )


def flops(s: dict, device_type: str = "cpu") -> float:
    """Per branch (segment w, ratio r): each head keeps 1/r of the queries and keys of a segment
    (:mod:`archbench.models.flops`)."""
    T, d = s["seq_len"], s["embed_dim"]
    per_token = 0.0
    for w, r in zip(s["segment_lengths"], s["dilated_ratios"]):
        w = min(w, -(-T // r) * r)  # a segment longer than the input is one shorter segment
        n, m = -(-T // w), w // r
        per_token += 3 * 4 * m * m * d * n / T
    return dense(s, params(s, include_embeddings=False)) + per_token * s["layers"]


def describe(s: dict | None = None) -> dict:
    return {"mixer": "dilated attention", "block": block(s or {})}


SCHEMA_FRAGMENT = {
    "segment_lengths": {
        "type": "array",
        "items": {"type": "integer", "minimum": 1},
        "minItems": 1,
        "default": [64, 128],
        "description": "LongNet dilated-attention segment lengths.",
    },
    "dilated_ratios": {
        "type": "array",
        "items": {"type": "integer", "minimum": 1},
        "minItems": 1,
        "default": [1, 2],
        "description": "LongNet dilation ratio per segment length.",
    },
}
