"""The one list of architectures.

Every other place that needs to know which architectures exist — the config schema's enum, the
Snakemake wildcard constraint, model construction, parameter matching, report pairs and colours,
latency labels — reads :data:`ARCHS` here. Adding an architecture is one model module plus one
:func:`register_arch` call below; a separate package adds one through the ``archbench.archs`` entry
point (see :func:`load_plugins` and the README's layout section).

This module imports neither torch nor transformers (the Snakefile parse and the data / report jobs
read it): classes are named by ``"module:attribute"`` strings and imported on first use.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Arch:
    """One architecture.

    name: the pipeline's name (config ``archs``, the ``{arch}`` wildcard, folder names).
    config_class / model_class: ``"module:Class"`` of its HF config and ``...ForCausalLM``.
    state: how it decodes — ``"recurrent"`` (O(1) state per token) or ``"kv_cache"`` (grows with context).
    width_knob: the config field parameter matching turns to match the reference's count (None: never resized).
    color, display: plot colour and human-readable name.
    constraints: ``"module:function"`` of its cross-key rules, ``check(settings: dict) -> None`` raising
        ``archbench.models.constraints.ConstraintError``; importable without torch (the parse-time check
        calls it). The config class runs the same function (its ``check_settings``; a test asserts they agree).

    Facts about the architecture (all optional, so an entry without them still works; functions are
    ``"module:function"`` strings and take *resolved* settings, pipeline names with the config class's
    defaults filled in: :func:`archbench.models.sizing.resolved_settings`):

    params: ``params(settings, include_embeddings=True) -> int``, the closed-form parameter count
        (None: counted on the meta device).
    flops: ``flops(settings, device_type="cpu") -> float``, training FLOPs per token (forward +
        backward) as the model computes them at ``settings["seq_len"]`` (:mod:`archbench.models.flops`).
    describe: ``describe(settings) -> {"mixer": str, "block": str}``, what its token mixer and block
        are (the report's words); torch-free.
    beyond_context: how it reads past its training length: ``"chunkwise"`` (a chunkwise mode is
        forced there, e.g. RetNet), ``"positions"`` (relative positions extrapolate; learned absolute
        positions refuse), ``"rope"`` (rotary positions, extrapolating as they do), ``"recurrent"``
        (no positions: a state carries the context), ``"none"`` (it cannot).
    blocks_per_layer: blocks of this architecture per Transformer layer when matched by layer count
        (``model.match_by: layers``; Mamba-2: 2).
    """

    name: str
    config_class: str
    model_class: str
    state: str
    width_knob: str | None
    color: str
    display: str
    constraints: str | None = None
    params: str | None = None
    flops: str | None = None
    describe: str | None = None
    beyond_context: str = "none"
    blocks_per_layer: int = 1

    def config_cls(self):
        return _load(self.config_class)

    def model_cls(self):
        return _load(self.model_class)

    def check(self) -> Callable[[dict], None] | None:
        return _load(self.constraints) if self.constraints else None

    def param_count(self) -> Callable[..., int] | None:
        return _load(self.params) if self.params else None

    def flops_fn(self) -> Callable[..., float] | None:
        return _load(self.flops) if self.flops else None

    def description(self, settings: dict | None = None) -> dict:
        """``{"mixer", "block"}`` for ``settings`` (the display name and "own block" without a describe)."""
        if self.describe:
            return _load(self.describe)(settings or {})
        return {"mixer": self.display, "block": f"{self.display}'s own block"}


class _Registry(dict):
    """The registered architectures; a lookup (``in``, ``[]``, ``get``) of ``hf-<model_type>`` (any
    causal LM transformers ships, see :mod:`archbench.models.hf`) builds its entry on first use, in any
    process. Iterating lists the registered entries only; :func:`arch_names` adds the hf- ones looked up."""

    def __missing__(self, name):
        arch = _hf_entry(name)
        if arch is None:
            raise KeyError(name)
        return arch

    def __contains__(self, name) -> bool:
        return dict.__contains__(self, name) or _hf_entry(name) is not None

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default


ARCHS: dict[str, Arch] = _Registry()
STATES = ("recurrent", "kv_cache")
BEYOND_CONTEXT = ("chunkwise", "positions", "rope", "recurrent", "none")
_HF: dict[str, Arch] = {}  # hf-<model_type> entries built so far


def _hf_entry(name) -> Arch | None:
    if name in _HF:
        return _HF[name]
    # named by string like every entry's classes: hf.py builds on models/ modules that read this registry
    fields = _load("archbench.models.hf:entry")(name) if isinstance(name, str) else None
    if fields is None:
        return None
    _HF[name] = Arch(**fields)
    return _HF[name]


def register_arch(arch: Arch) -> Arch:
    """Add ``arch`` (idempotent for an identical entry; a different entry under a taken name raises)."""
    if arch.state not in STATES:
        raise ValueError(f"arch {arch.name!r}: state must be one of {STATES}, got {arch.state!r}")
    if arch.beyond_context not in BEYOND_CONTEXT:
        raise ValueError(
            f"arch {arch.name!r}: beyond_context must be one of {BEYOND_CONTEXT}, got {arch.beyond_context!r}"
        )
    old = ARCHS.get(arch.name)
    if old is not None and old != arch:
        raise ValueError(f"arch {arch.name!r} is already registered with other settings")
    ARCHS[arch.name] = arch
    return arch


def get_arch(name: str) -> Arch:
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(
            f"unknown arch {name!r}; registered: {', '.join(ARCHS)}, or hf-<model_type> for a causal LM of transformers"
        ) from None


def arch_names() -> list[str]:
    """Registered names, then the hf-<model_type> names looked up in this process (the config's)."""
    return [*ARCHS, *_HF]


def _load(ref: str):
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


register_arch(
    Arch(
        "retnet",
        "archbench.models.retnet:RetNetConfig",
        "archbench.models.retnet:RetNetForCausalLM",
        state="recurrent",
        width_knob="ffn_dim",
        color="tab:blue",
        display="RetNet",
        constraints="archbench.models.constraints:retnet",
        params="archbench.models.facts:retnet_params",
        flops="archbench.models.flops:retnet",
        describe="archbench.models.facts:retnet_describe",
        beyond_context="chunkwise",
    )
)
register_arch(
    Arch(
        "transformer",
        "archbench.models.transformer:TransformerConfig",
        "archbench.models.transformer:TransformerForCausalLM",
        state="kv_cache",
        width_knob="ffn_dim",
        color="tab:orange",
        display="Transformer",
        constraints="archbench.models.constraints:transformer",
        params="archbench.models.facts:transformer_params",
        flops="archbench.models.flops:transformer",
        describe="archbench.models.facts:transformer_describe",
        beyond_context="positions",
    )
)
register_arch(
    Arch(
        "longnet",
        "archbench.models.longnet:LongNetConfig",
        "archbench.models.longnet:LongNetForCausalLM",
        state="kv_cache",
        width_knob="ffn_dim",
        color="tab:green",
        display="LongNet",
        constraints="archbench.models.constraints:longnet",
        params="archbench.models.facts:transformer_params",
        flops="archbench.models.flops:longnet",
        describe="archbench.models.facts:longnet_describe",
        beyond_context="positions",
    )
)
register_arch(
    Arch(
        "llama",
        "archbench.models.llama:LlamaSettings",
        "transformers:LlamaForCausalLM",
        state="kv_cache",
        width_knob="ffn_dim",
        color="tab:red",
        display="Transformer++ (Llama)",
        constraints="archbench.models.llama:check",
        params="archbench.models.llama:params",
        flops="archbench.models.flops:llama",
        describe="archbench.models.llama:describe",
        beyond_context="rope",
    )
)
register_arch(
    Arch(
        "mamba2",
        "archbench.models.mamba2:Mamba2Settings",
        "archbench.models.mamba2:build",  # stock Mamba2ForCausalLM; a hybrid's stock NemotronHForCausalLM
        state="recurrent",
        width_knob="ssm_state_size",
        color="tab:purple",
        display="Mamba-2",
        constraints="archbench.models.mamba2:check",
        params="archbench.models.mamba2:params",
        flops="archbench.models.flops:mamba2",
        describe="archbench.models.mamba2:describe",
        beyond_context="recurrent",
        blocks_per_layer=2,
    )
)


ENTRY_POINT_GROUP = "archbench.archs"


def load_plugins() -> None:
    """Import every ``archbench.archs`` entry point of the installed packages (or of a ``*.dist-info``
    folder on PYTHONPATH): its module calls :func:`register_arch` on import (value ``"module"``), or
    names a function that does (``"module:function"``). Runs once, when this module is first imported,
    so the Snakefile parse and every job see the same architectures. Plugin modules must stay
    torch-free at import time, like this one."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            if callable(loaded):
                loaded()
        except Exception as err:
            raise ImportError(f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) failed: {err}") from err


load_plugins()
