"""The one list of data sources (``data.source``): ``default``, ``local``, ``hub``, ``mqar``.

Each is one module of this package holding one :class:`~archbench.data.sources.base.DataSource` subclass
(plan the shards, read a shard, check the config, tokenizer policy, training-target hook, the schema of
its ``data.<name>`` keys), registered on import by :func:`builtin_sources`: a new module is a new source,
nothing else to edit. :func:`plan_shards` and :func:`read_shard` ask the config's (or the shard's) source. A separate package adds one through the ``archbench.sources`` entry point (see
:func:`load_plugins`). Outside this package no code compares a source's name: it asks the entry.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

from archbench.data.readers import Limits
from archbench.data.sources.base import DataSource
from archbench.data.sources.default import default_corpus_path, default_documents
from archbench.data.sources.hub import LOCAL_HINT, check_hub_reachable
from archbench.errors import ConfigError

ENTRY_POINT_GROUP = "archbench.sources"
SOURCES: dict[str, DataSource] = {}

__all__ = [
    "LOCAL_HINT",
    "SOURCES",
    "DataSource",
    "check_hub_reachable",
    "default_corpus_path",
    "default_documents",
    "get_source",
    "plan_shards",
    "read_shard",
    "register_source",
    "source_names",
    "source_of",
    "training_targets",
]


def register_source(source: DataSource) -> DataSource:
    """Add ``source`` under ``source.name`` (idempotent for the same class; another class under a taken
    name raises)."""
    if not isinstance(source, DataSource) or not source.name:
        raise ValueError(f"a data source must be a named DataSource instance, got {source!r}")
    old = SOURCES.get(source.name)
    if old is not None and type(old) is not type(source):
        raise ValueError(f"data source {source.name!r} is already registered by {type(old).__name__}")
    SOURCES[source.name] = source
    return source


def source_names() -> list[str]:
    return list(SOURCES)


def get_source(name: str) -> DataSource:
    try:
        return SOURCES[name]
    except KeyError:
        raise ConfigError(
            f"config key 'data.source': {name!r} is not one of {source_names()} (the data sources of "
            "archbench.data.sources and its archbench.sources entry points)"
        ) from None


def source_of(data: dict) -> DataSource:
    """The source the config's ``data`` section (or a shard spec) names."""
    return get_source(data.get("source") or "default")


def plan_shards(data: dict, results: str = "results") -> dict[str, dict]:
    """{shard name: spec} for the config's ``data`` section, in corpus (= sorted name) order, as its
    source plans them (``archbench.data.shards``). A spec is JSON-able: name, source, path, format,
    compression, range (plus what its source adds). Cheap enough to run at every Snakefile parse: a glob
    and a stat per local file (plus a parquet footer when slicing parquet)."""
    return source_of(data).plan(data, results)


def read_shard(shard: dict, data: dict | None = None, limits: Limits | None = None) -> Iterator[tuple[list[str], int]]:
    """Stream a shard as batches ``(documents, number with invalid UTF-8 replaced)`` through its source
    (``data``: the config's data section; ``text_column``, ``max_document_bytes`` and the source's own
    settings). A job holds one batch, never a whole shard. Empty documents are kept (as ""): the caller
    drops and counts them."""
    data = data or {}
    return source_of(shard).read(shard, data, limits or Limits.from_data(data))


def training_targets(x, y, settings):
    """Every source's training-target hook over one batch's targets (each acts only on the settings its
    :meth:`DataSource.training_settings` added to the run, so a run sees its own source's hook)."""
    for source in SOURCES.values():
        y = source.training_targets(x, y, settings)
    return y


def load_plugins() -> None:
    """Import every ``archbench.sources`` entry point of the installed packages (or of a ``*.dist-info``
    folder on PYTHONPATH): its module calls :func:`register_source` on import (value ``"module"``), or
    names a DataSource subclass or a function that registers (``"module:attribute"``). Runs once, when
    this package is first imported, so the Snakefile parse and every job see the same sources."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            if isinstance(loaded, type) and issubclass(loaded, DataSource):
                register_source(loaded())
            elif callable(loaded):
                loaded()
        except Exception as err:
            raise ImportError(f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) failed: {err}") from err


def builtin_sources() -> list[DataSource]:
    """One instance of each named DataSource subclass defined in a module of this package, ``default``
    first (the config's default), then by name."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found += [
            cls()
            for cls in vars(module).values()
            if isinstance(cls, type) and issubclass(cls, DataSource) and cls.__module__ == module.__name__ and cls.name
        ]
    return sorted(found, key=lambda source: (source.name != "default", source.name))


for _source in builtin_sources():
    register_source(_source)
load_plugins()
