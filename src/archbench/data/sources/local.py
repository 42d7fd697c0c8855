"""``data.source: local``: files under ``data.path`` (a file, a directory or a glob) of JSON lines,
``.txt`` or parquet, each also gzip / zstd compressed. Every file is a shard; big uncompressed ones are
sliced (``data.shard_size_mb``)."""

from __future__ import annotations

import glob
import os

from archbench.data.readers import Limits, file_format, name_shards, read_file, resolve_files, slices
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
        files = resolve_files(data["path"])
        return name_shards([(f, slices(f, *file_format(f), shard_bytes)) for f in files], self.name)

    def inputs(self, shard: dict) -> list[str]:
        return [shard["path"]]

    def read(self, shard: dict, data: dict, limits: Limits):
        if not os.path.isfile(shard["path"]):
            raise DataError(f"input file not found: {shard['path']}")
        with open(shard["path"], "rb") as raw:
            yield from read_file(shard, raw, shard["path"], data.get("text_column") or "text", limits)
