"""What every registry shares: names of the form ``"module:attribute"`` imported on first use, and the
entry points through which other packages add entries (``archbench.archs``, ``archbench.evaluations``)."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points


def load_ref(ref: str):
    """The object a ``"module:attribute"`` string names (the module is imported now)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_entry_points(group: str) -> None:
    """Import every entry point of ``group`` (installed, or a ``*.dist-info`` folder on PYTHONPATH): its
    module registers entries on import, or the entry names a function that does, which is called."""
    for ep in entry_points(group=group):
        try:
            loaded = ep.load()
            if callable(loaded):
                loaded()
        except Exception as err:
            raise ImportError(f"{group} entry point {ep.name!r} ({ep.value}) failed: {err}") from err
