"""The one list of architectures.

Every other place that needs to know which architectures exist — the config schema's enum, the
Snakemake wildcard constraint, model construction, parameter matching, report pairs and colours,
latency labels — reads :data:`ARCHS` here. An architecture is one folder ``models/<name>/`` whose spec
(its ``__init__.py``) builds an :class:`~archbench.models.spec.Arch` entry ``ARCH``; the built-in ones
are registered below. A separate package adds one through the ``archbench.archs`` entry point (see
:func:`load_plugins` and CONTRIBUTING.md).

This module imports neither torch nor transformers (the Snakefile parse and the data / report jobs
read it): entries hold loaders of their torch classes, called on first use.
"""

from __future__ import annotations

from archbench.plugins import load_entry_points

from . import hf, llama, longnet, mamba2, retnet, transformer
from .spec import BEYOND_CONTEXT, STATES, Arch

__all__ = ["ARCHS", "BEYOND_CONTEXT", "STATES", "Arch", "arch_names", "get_arch", "register_arch"]


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
_HF: dict[str, Arch] = {}  # hf-<model_type> entries built so far


def _hf_entry(name) -> Arch | None:
    if name not in _HF:
        arch = hf.entry(name) if isinstance(name, str) else None
        if arch is None:
            return None
        _HF[name] = arch
    return _HF[name]


def register_arch(arch: Arch) -> Arch:
    """Add ``arch`` (idempotent for an identical entry; a different entry under a taken name raises)."""
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


for _spec in (retnet, transformer, longnet, llama, mamba2):
    register_arch(_spec.ARCH)


ENTRY_POINT_GROUP = "archbench.archs"


def load_plugins() -> None:
    """Import every ``archbench.archs`` entry point of the installed packages (or of a ``*.dist-info``
    folder on PYTHONPATH): its module calls :func:`register_arch` on import (value ``"module"``), or
    names a function that does (``"module:function"``). Runs once, when this module is first imported,
    so the Snakefile parse and every job see the same architectures. Plugin modules must stay
    torch-free at import time, like this one."""
    load_entry_points(ENTRY_POINT_GROUP)


load_plugins()
