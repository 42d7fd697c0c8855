"""Cross-key rules of the model settings shared by several architectures, and their errors: the rules
that the schema's per-key types and ranges cannot express (a head dimension that must be even, ...).

Each architecture's ``check(settings)`` lives in its spec (``models/<name>/__init__.py``) and builds on
:func:`common` / :func:`hybrid` here; it takes the model config's field names (a missing or None value
means "the default") and raises :class:`ConstraintError`. Two callers use the same functions:

- the model config classes (``ArchbenchConfig.check_settings``, run in ``__post_init__``), so no model is
  built against them;
- the parse-time check (:func:`archbench.config.validate_config`), through each registry entry's
  ``constraints`` (:mod:`archbench.models.spec`), for every architecture in ``archs`` and every grid
  point, so a config that would fail a job fails before any job starts.

Standard library only, no absolute imports: ``save_pretrained`` copies this file next to the weights
(``common.py`` imports it) for ``trust_remote_code=True`` loading without archbench, and the Snakefile
parse imports it without torch.
"""

from __future__ import annotations

from .hybrid import attention_layers


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
