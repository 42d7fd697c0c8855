"""``data.source: local``: files under ``data.path`` (a file, a directory or a glob) of JSON lines,
``.txt`` or parquet, each also gzip / zstd compressed. Every file is a shard; big uncompressed ones are
sliced (``data.shard_size_mb``)."""

from __future__ import annotations

import glob
import os

from archbench.data.readers import (
    Limits,
    file_format,
    group_small,
    name_shards,
    read_file,
    resolve_files,
    shard_files,
    slices,
)
from archbench.data.sources.base import DataSource
from archbench.errors import ConfigError, DataError


class LocalSource(DataSource):
    name = "local"
    description = "files under data.path (JSON lines, .txt, parquet; gzip / zstd)"

    def check_config(self, data: dict, settings: list[dict]) -> None:
        self._require_path(data)
        path = data["path"]
        if not (os.path.exists(path) or glob.glob(path, recursive=True)):
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
        return name_shards(entries, self.name)

    def inputs(self, shard: dict) -> list[str]:
        return shard.get("files") or [shard["path"]]

    def read(self, shard: dict, data: dict, limits: Limits):
        for part in shard_files(shard):
            if not os.path.isfile(part["path"]):
                raise DataError(f"input file not found: {part['path']}")
            with open(part["path"], "rb") as raw:
                yield from read_file(part, raw, part["path"], data.get("text_column") or "text", limits)
