"""``data.source: local``: files under ``data.path`` (a file, a directory or a glob) of JSON lines,
``.txt`` or parquet, each also gzip / zstd compressed. Every file is a shard; big uncompressed ones are
sliced (``data.shard_size_mb``)."""

from __future__ import annotations

import os
import re

from archbench.data.readers import GLOB_MAGIC, Limits, file_format, read_file, resolve_files
from archbench.data.shards import group_small, name_shards, shard_files, slices
from archbench.data.sources.base import DataSource
from archbench.errors import ConfigError, DataError

_BRACES = re.compile(r"[{}]")


class LocalSource(DataSource):
    name = "local"
    description = "files under data.path (JSON lines, .txt, parquet; gzip / zstd)"

    def check_config(self, data: dict, settings: list[dict]) -> None:
        self._require_path(data)
        path = data["path"]
        # A glob is matched (bounded) by plan; here only its literal leading folder must exist (no walk).
        literal = path if not GLOB_MAGIC.search(path) else os.path.dirname(path[: GLOB_MAGIC.search(path).start()])
        if not os.path.exists(literal or "."):
            raise ConfigError(
                f"config key 'data.path': '{path}' does not exist (relative paths are read from {os.getcwd()})"
            )

    @staticmethod
    def _require_path(data: dict) -> None:
        if not data.get("path"):
            raise ConfigError("config key 'data.path': required when data.source is local")

    def plan(self, data: dict, results: str) -> dict[str, dict]:
        self._require_path(data)
        mb = data.get("shard_size_mb")
        shard_bytes = int(mb * 2**20) if mb else None
        min_mb = data.get("min_shard_mb")
        files = resolve_files(data["path"])
        entries = group_small(
            [(f, slices(f, *file_format(f), shard_bytes)) for f in files], int(min_mb * 2**20) if min_mb else None
        )
        shards = name_shards(entries, self.name)
        for spec in shards.values():
            untracked = [f for f in self._files(spec) if _BRACES.search(f)]
            if untracked:  # Snakemake cannot name these: their size and time stand in (params rerun)
                spec["untracked"] = {f: [os.stat(f).st_size, os.stat(f).st_mtime_ns] for f in untracked}
        return shards

    @staticmethod
    def _files(shard: dict) -> list[str]:
        return shard.get("files") or [shard["path"]]

    def inputs(self, shard: dict) -> list[str]:
        """The shard's files, but not one whose name holds ``{...}``: Snakemake reads that as a wildcard
        in an input path (no escape exists), so the file's size and mtime in the spec track it."""
        return [f for f in self._files(shard) if not _BRACES.search(f)]

    def read(self, shard: dict, data: dict, limits: Limits):
        for part in shard_files(shard):
            if not os.path.isfile(part["path"]):
                raise DataError(f"input file not found: {part['path']}")
            with open(part["path"], "rb") as raw:
                yield from read_file(part, raw, part["path"], data.get("text_column") or "text", limits)
