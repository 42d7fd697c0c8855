"""Cross-key rules of the model settings: the one copy of every rule that the schema's per-key types and
ranges cannot express (a head dimension that must be even, widths that heads must divide, ...).

One function per architecture, ``check(settings)`` over the model config's field names (``embed_dim``,
``heads``, ``value_embed_dim``, ...; a missing or None value means "the default"), raising
:class:`ConstraintError`. Two callers use the same functions:

- the model config classes (``ArchbenchConfig.check_settings``, run in ``__post_init__``), so no model is
  built against them;
- the parse-time check (:func:`archbench.config.validate_config`), through each registry entry's
  ``constraints`` (:mod:`archbench.models.registry`), for every architecture in ``archs`` and every grid
  point, so a config that would fail a job fails before any job starts.

Standard library only, no absolute imports: ``save_pretrained`` copies this file next to the weights
(``common.py`` imports it) for ``trust_remote_code=True`` loading without archbench, and the Snakefile
parse imports it without torch.
"""

from __future__ import annotations

from .hybrid import attention_layers

POSITIONS = ("xpos", "rotary", "learned")


class ContextTooLong(ValueError):
    """A model was given more positions than it has (e.g. learned positions end at max_seq_len).

    The one refusal the latency benchmark records as `skipped`; every other error fails the job.
    Defined here (standard library only) so the model files can raise it when loaded as remote code;
    ``archbench.errors`` re-exports it."""


class ConstraintError(ValueError):
    """A cross-key rule is broken. ``keys``: the settings involved (model field names), which the
    parse-time check maps back to config keys."""

    def __init__(self, keys, message: str):
        super().__init__(message)
        self.keys = tuple(keys)


def value_embed_dim(settings: dict) -> int:
    """RetNet's value width: ``value_embed_dim``, or 2 x embed_dim when unset (as in torchscale)."""
    return settings.get("value_embed_dim") or 2 * settings["embed_dim"]


def common(s: dict) -> None:
    """Rules of every decoder with multi-head attention / retention and rotary-style positions."""
    for key in ("vocab_size", "embed_dim", "ffn_dim", "heads", "layers", "max_seq_len"):
        value = s.get(key)
        if value is not None and int(value) < 1:
            raise ConstraintError([key], f"{key} must be a positive integer, got {value!r}")
    embed, heads = s["embed_dim"], s["heads"]
    if embed % heads:
        raise ConstraintError(["embed_dim", "heads"], f"embed_dim {embed} is not divisible by heads {heads}")
    if (embed // heads) % 2:
        raise ConstraintError(
            ["embed_dim", "heads"],
            f"the head dimension embed_dim / heads = {embed}/{heads} = "
            f"{embed // heads} must be even (rotary / xPos positions rotate pairs)",
        )
    dropout = s.get("dropout") or 0.0
    if not 0.0 <= dropout < 1.0:
        raise ConstraintError(["dropout"], f"dropout must be in [0, 1), got {dropout}")


def hybrid(s: dict) -> None:
    """A hybrid's attention layers (models/hybrid.py): ``attention_every`` >= 0, or ``attention_layers``
    inside the model and each once, not both set."""
    explicit = list(s.get("attention_layers") or []) or None
    try:
        attention_layers(s["layers"], s.get("attention_every") or 0, explicit)
    except ValueError as err:
        keys = ["attention_layers", "attention_every"] if explicit and s.get("attention_every") else None
        keys = keys or (["attention_layers", "layers"] if explicit else ["attention_every"])
        raise ConstraintError(keys, str(err)) from None


def retnet(s: dict) -> None:
    common(s)
    hybrid(s)
    vdim, heads = value_embed_dim(s), s["heads"]
    if vdim % heads:
        raise ConstraintError(["value_embed_dim", "heads"], f"value_embed_dim {vdim} is not divisible by heads {heads}")
    for key in ("chunk_size", "chunkwise_above"):  # None: the automatic plan (see retnet.py)
        if s.get(key) is not None and s[key] < 1:
            raise ConstraintError([key], f"{key} must be >= 1 or null (automatic), got {s[key]}")


def transformer(s: dict) -> None:
    common(s)
    position = s.get("position")
    if position is not None and position not in POSITIONS:
        raise ConstraintError(["position"], f"position must be one of {POSITIONS}, got {position!r}")


def longnet_segments(s: dict) -> tuple[list[int], list[int]]:
    """LongNet's (segment_lengths, dilated_ratios); unset: the paper's geometric pattern up to the context."""
    w = s.get("segment_lengths")
    if w is None:
        base = max(s["max_seq_len"] // 4, 1)
        w = [base, 2 * base, 4 * base]
    r = s.get("dilated_ratios")
    if r is None:
        r = [1, 2, 4][: len(w)]
    return [int(x) for x in w], [int(x) for x in r]


def longnet(s: dict) -> None:
    transformer(s)
    w, r = longnet_segments(s)
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
