"""What every architecture's spec shares (torch-free): the registry entry :class:`Arch`, the base of the
stock-model settings :class:`StockSettings`, and the formulas all parameter / FLOPs counts start from.

An architecture is one folder ``models/<name>/``: its ``__init__.py`` is the spec (settings, cross-key
checks, closed-form parameters and FLOPs, description, schema fragment, and its :class:`Arch` entry
``ARCH``), a ``modeling.py`` beside it its torch code. The registry (:mod:`.registry`) registers the
entries; a plugin package builds an :class:`Arch` the same way and registers it through its entry point.

Standard library only and relative imports only: ``save_pretrained`` copies this file next to the
weights when a spec that the modeling code reads imports it (:func:`archbench.models.common.save_remote_code`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

STATES = ("recurrent", "kv_cache")
BEYOND_CONTEXT = ("chunkwise", "positions", "rope", "recurrent", "none")


@dataclasses.dataclass(frozen=True)
class Arch:
    """One architecture, as real objects.

    name: the pipeline's name (config ``archs``, the ``{arch}`` wildcard, folder names).
    config_class / model_class: zero-argument loaders of its settings class (archbench's own models: the
        HF config class; stock models: a :class:`StockSettings` whose ``to_hf()`` gives the stock config)
        and of its ``...ForCausalLM`` class or ``build(config)`` function. Loaders, because the classes
        import torch and the registry must not (the Snakefile parse reads it).
    state: how it decodes — ``"recurrent"`` (O(1) state per token) or ``"kv_cache"`` (grows with context).
    width_knob: the config field parameter matching turns to match the reference's count (None: never resized).
    color, display: plot colour and human-readable name.
    constraints: its cross-key rules, ``check(settings: dict) -> None`` raising
        :class:`archbench.models.constraints.ConstraintError`; torch-free (the parse-time check calls it).
        The config class runs the same function (its ``check_settings``; a test asserts they agree).
    settings_args: fixed keyword arguments of the settings class (``hf-<type>``: its model type).
    schema_fragment: JSON-schema properties of the model settings only this architecture reads, merged
        into the config schema's ``model`` section (:func:`archbench.config.load_schema`).

    Facts (optional; functions of *resolved* settings: pipeline names with the settings class's
    defaults filled in, :func:`archbench.models.sizing.resolved_settings`):

    params: ``params(settings, include_embeddings=True) -> int``, the closed-form parameter count
        (None: counted on the meta device).
    flops: ``flops(settings, device_type="cpu") -> float``, training FLOPs per token (forward +
        backward) at ``settings["seq_len"]`` (:mod:`archbench.models.flops`).
    describe: ``describe(settings) -> {"mixer": str, "block": str}``, the report's words; torch-free.
    beyond_context: how it reads past its training length: ``"chunkwise"`` (a chunkwise mode is
        forced there, e.g. RetNet), ``"positions"`` (relative positions extrapolate; learned absolute
        positions refuse), ``"rope"``, ``"recurrent"`` (a state carries the context), ``"none"``.
    blocks_per_layer: blocks per Transformer layer when matched by layer count (Mamba-2: 2).
    """

    name: str
    config_class: Callable[[], type]
    model_class: Callable[[], Callable]
    state: str
    width_knob: str | None
    color: str
    display: str
    constraints: Callable[[dict], None] | None = None
    params: Callable[..., int] | None = None
    flops: Callable[..., float] | None = None
    describe: Callable[..., dict] | None = None
    beyond_context: str = "none"
    blocks_per_layer: int = 1
    settings_args: dict = dataclasses.field(default_factory=dict)
    schema_fragment: dict | None = None

    def __post_init__(self):
        if self.state not in STATES:
            raise ValueError(f"arch {self.name!r}: state must be one of {STATES}, got {self.state!r}")
        if self.beyond_context not in BEYOND_CONTEXT:
            raise ValueError(
                f"arch {self.name!r}: beyond_context must be one of {BEYOND_CONTEXT}, got {self.beyond_context!r}"
            )

    def config_cls(self) -> type:
        return self.config_class()

    def model_cls(self):
        return self.model_class()

    def check(self) -> Callable[[dict], None] | None:
        return self.constraints

    def param_count(self) -> Callable[..., int] | None:
        return self.params

    def flops_fn(self) -> Callable[..., float] | None:
        return self.flops

    def description(self, settings: dict | None = None) -> dict:
        """``{"mixer", "block"}`` for ``settings`` (the display name and "own block" without a describe)."""
        if self.describe:
            return self.describe(settings or {})
        return {"mixer": self.display, "block": f"{self.display}'s own block"}


@dataclasses.dataclass
class StockSettings:
    """Pipeline names shared by every wrapped stock transformers model (llama, mamba2, hf-<type>);
    a subclass adds its own fields, sets ``check_settings`` and returns the stock config from ``to_hf()``."""

    stock: ClassVar[bool] = True  # a stock transformers class: never registered with the Auto classes
    check_settings: ClassVar[Callable[[dict], None]]

    vocab_size: int = 32000
    embed_dim: int = 512
    heads: int = 8
    layers: int = 6
    max_seq_len: int = 1024
    tie_word_embeddings: bool = False
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2

    def __post_init__(self):
        self.check_settings(dataclasses.asdict(self))

    def special_tokens(self) -> dict[str, Any]:
        """The token ids every stock config takes."""
        return {"pad_token_id": self.pad_token_id, "bos_token_id": self.bos_token_id, "eos_token_id": self.eos_token_id}

    def to_hf(self):
        raise NotImplementedError


def count_parameters(model, include_embeddings: bool = True) -> int:
    """Trainable-parameter count (shared tensors once). Embeddings = token embedding, the output
    projection when untied, and a learned position table. Works for any HF causal LM (through
    ``get_input_embeddings`` / ``get_output_embeddings``), archbench's own or a wrapped stock one."""
    total = sum(p.numel() for p in model.parameters())
    if include_embeddings:
        return total
    tables = [
        model.get_input_embeddings(),
        model.get_output_embeddings(),
        getattr(getattr(model, "decoder", None), "embed_positions", None),
    ]
    emb = {id(t.weight): t.weight for t in tables if t is not None}
    return total - sum(p.numel() for p in emb.values())


def embedding_parameters(s: dict, learned_positions: bool = False) -> int:
    """Token embedding, the output projection when untied, and a learned position table."""
    n = s["vocab_size"] * s["embed_dim"] * (1 if s.get("tie_word_embeddings") else 2)
    return n + (s["max_seq_len"] * s["embed_dim"] if learned_positions else 0)


def padded(t: int, chunk: int) -> tuple[int, int]:
    """(chunks, padded length) of t tokens cut into chunks of ``chunk``."""
    n = -(-t // chunk)
    return n, n * chunk


def dense(s: dict, params_non_embedding: float) -> float:
    """``6 N + 6 d V``: the weights and the output projection (:mod:`archbench.models.flops`)."""
    return 6 * params_non_embedding + 6 * s["embed_dim"] * s["vocab_size"]


def softmax_attention(s: dict, layers: int | None = None) -> float:
    """Dense scores and weighted sum over T keys, forward + backward, per token, over ``layers`` layers
    (default: all)."""
    return 3 * 4 * s["seq_len"] * s["embed_dim"] * (s["layers"] if layers is None else layers)
