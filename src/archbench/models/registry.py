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
    """

    name: str
    config_class: str
    model_class: str
    state: str
    width_knob: str | None
    color: str
    display: str
    constraints: str | None = None

    def config_cls(self):
        return _load(self.config_class)

    def model_cls(self):
        return _load(self.model_class)

    def check(self) -> Callable[[dict], None] | None:
        return _load(self.constraints) if self.constraints else None


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
_HF: dict[str, Arch] = {}  # hf-<model_type> entries built so far


def _hf_entry(name) -> Arch | None:
    if name in _HF:
        return _HF[name]
    from archbench.models.hf import entry

    fields = entry(name) if isinstance(name, str) else None
    if fields is None:
        return None
    _HF[name] = Arch(**fields)
    return _HF[name]


def register_arch(arch: Arch) -> Arch:
    """Add ``arch`` (idempotent for an identical entry; a different entry under a taken name raises)."""
    if arch.state not in STATES:
        raise ValueError(f"arch {arch.name!r}: state must be one of {STATES}, got {arch.state!r}")
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
    )
)
register_arch(
    Arch(
        "mamba2",
        "archbench.models.mamba2:Mamba2Settings",
        "transformers:Mamba2ForCausalLM",
        state="recurrent",
        width_knob="ssm_state_size",
        color="tab:purple",
        display="Mamba-2",
        constraints="archbench.models.mamba2:check",
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
