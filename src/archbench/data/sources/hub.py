"""``data.source: hub``: data files of a Hugging Face hub dataset (``data.hub``), each one shard,
streamed through ``huggingface_hub.HfFileSystem``."""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import math
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from archbench import hub as hf
from archbench.data.readers import GLOB_MAGIC, Limits, accepted, file_format, read_file
from archbench.data.shards import name_shards
from archbench.data.sources.base import DataSource
from archbench.errors import ConfigError, DataError
from archbench.io import write_json

LOCAL_HINT = "to use local files instead set `data.source: local` and `data.path: <file, directory or glob>`"


def check_hub_reachable(timeout: float = 3.0) -> None:
    """Fail in seconds, not after minutes of retries, when the hub cannot be used."""
    if hf.offline():
        raise DataError(
            f"data.source is 'hub' but offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE); {LOCAL_HINT}"
        )
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout)
    except urllib.error.HTTPError:
        pass  # any HTTP answer means the server is reachable
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"the Hugging Face hub ({endpoint}) is unreachable ({reason}); {LOCAL_HINT}") from None


MAX_OFFLINE_NAMES = 10_000  # names a [...] pattern may expand to without a listing (C4: 1,024 a split)


def _classes(pattern: str) -> list[list[str]] | None:
    """A glob of literals and ``[...]`` classes as its parts (each a list of alternatives), or None
    when it has ``*`` / ``?`` / a negated class (then only a listing of the repository can say)."""
    if "*" in pattern or "?" in pattern:
        return None
    parts, i = [], 0
    for m in re.finditer(r"\[([^\]]+)\]", pattern):
        parts.append([pattern[i : m.start()]])
        body, chars = m.group(1), set()
        if body.startswith(("!", "^")):
            return None
        k = 0
        while k < len(body):
            if k + 2 < len(body) and body[k + 1] == "-":
                chars.update(chr(c) for c in range(ord(body[k]), ord(body[k + 2]) + 1))
                k += 3
            else:
                chars.add(body[k])
                k += 1
        parts.append(sorted(chars))
        i = m.end()
    parts.append([pattern[i:]])
    return parts


def expand_classes(pattern: str, limit: int | None = None) -> list[str] | None:
    """All names a glob made only of literals and ``[...]`` classes can match, or None when it has
    ``*`` / ``?`` (then only a listing of the repository can say). ``c4-train.0000[0-2]`` -> 3 names.
    More than ``limit`` names is a DataError, counted before any is built."""
    parts = _classes(pattern)
    if parts is None:
        return None
    count = math.prod(len(p) for p in parts)
    if limit is not None and count > limit:
        raise DataError(
            f"data.hub.files pattern {pattern!r} names {count} files, more than {limit} can be planned "
            "without the repository's listing (offline); run once online (the listing is kept) or name "
            "fewer files"
        )
    return ["".join(p) for p in itertools.product(*parts)]


def hub_fs():
    from huggingface_hub import HfFileSystem  # only the hub source needs it

    return HfFileSystem()


def hub_files(hub: dict, results: str) -> list[str]:
    """Repository paths of the hub dataset's data files selected by ``data.hub.files``.

    Patterns are matched (``fnmatch``) against the repository's file list, never enumerated: it is
    fetched once at parse time and kept in ``{results}/data/hub_listing.json`` (the shard list must be
    known when the DAG is built; a checkpoint would hide every per-shard job from dry runs and Slurm job
    counts, and a kept listing also pins the shard list if the repository grows later). Delete that
    file to list again. Offline without a kept listing, a pattern of literals and ``[...]`` classes
    (C4's ``en/c4-train.0000[0-7]-of-01024.json.gz``) expands to at most MAX_OFFLINE_NAMES names, so
    dry runs work offline; a ``*`` / ``?`` pattern needs the listing. ``data.hub.files`` null means
    ``{subset}/*{split}*``.
    """
    patterns = hub.get("files")
    if not patterns:
        split = hub.get("split") or "train"
        patterns = f"{hub['subset']}/*{split}*" if hub.get("subset") else f"*{split}*"
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    listing = hub_listing(hub, results, required=False)  # kept, or listed now; None offline
    if listing is None and all(_classes(p) is not None for p in patterns):
        files = sorted({f for p in patterns for f in expand_classes(p, MAX_OFFLINE_NAMES)})
    else:
        listing = listing or hub_listing(hub, results)  # offline: the error naming the way out
        names = listing["files"]
        for p in patterns:
            if not GLOB_MAGIC.search(p) and p not in names:
                raise DataError(
                    f"data.hub.files: {p} is not in {hub['name']} at commit {listing['commit']} "
                    f"(listing kept in {results}/data/hub_listing.json)"
                )
        files = sorted({f for f in names if any(fnmatch.fnmatchcase(f, p) for p in patterns)})
        if not files:
            raise DataError(
                f"data.hub.files {patterns} matched none of the {len(names)} files of "
                f"{hub['name']} (listing kept in {results}/data/hub_listing.json)"
            )
    for f in files:
        file_format(f)
    return files


def hub_listing(hub: dict, results: str, required: bool = True) -> dict | None:
    """The dataset's listing at ``data.hub.revision``, made once and kept in
    ``{results}/data/hub_listing.json``: the commit the revision resolved to, the data files, and each
    file's size and the hub's checksum (sha256 of LFS files, git blob id of others), which downloads
    verify. Not ``required`` and offline: None (literal file names still plan offline)."""
    path = Path(results) / "data" / "hub_listing.json"
    key = {"name": hub["name"], "revision": hub.get("revision")}
    if path.is_file():
        kept = json.loads(path.read_text())
        if {k: kept.get(k) for k in key} == key:
            return kept
    if not required and hf.offline():
        return None
    check_hub_reachable()
    from huggingface_hub import HfApi

    try:
        info = HfApi().dataset_info(hub["name"], revision=hub.get("revision"), files_metadata=True)
    except Exception as e:  # auth, unknown repository or revision: user-facing
        raise DataError(f"cannot list the files of hub dataset {hub['name']!r}: {e}") from e
    meta = {
        s.rfilename: {"size": s.size, "sha256": s.lfs.sha256 if s.lfs else None, "blob_id": s.blob_id}
        for s in info.siblings or []
        if accepted(s.rfilename)
    }
    listing = {**key, "commit": info.sha, "files": sorted(meta), "file_info": dict(sorted(meta.items()))}
    write_json(listing, path)
    return listing


class _Verified:
    """A read-only file wrapper that counts and hashes what is read, in order (streamed formats)."""

    def __init__(self, raw):
        self.raw, self.size, self.sha256, self.sequential = raw, 0, hashlib.sha256(), True

    def read(self, n=-1):
        data = self.raw.read(n)
        self.size += len(data)
        self.sha256.update(data)
        return data

    def seek(self, *args):
        self.sequential = False
        return self.raw.seek(*args)

    def __getattr__(self, name):
        return getattr(self.raw, name)


def _check_size(shard: dict, raw, where: str) -> None:
    """The file's size at the shard's commit against the listing's, before anything is read."""
    want = (shard.get("expected") or {}).get("size")
    size = getattr(raw, "size", None)
    if size is None and want is not None:
        size = raw.seek(0, 2)
        raw.seek(0)
    if want is not None and size != want:
        raise DataError(f"{where}: {size} bytes at commit {shard.get('revision')}, the listing says {want}")


def _check_sha256(shard: dict, wrapped: _Verified, where: str) -> None:
    """The sha256 of what was streamed (LFS files read start to end) against the hub's."""
    want = (shard.get("expected") or {}).get("sha256")
    if want and wrapped.sequential and wrapped.size == shard["expected"].get("size"):
        got = wrapped.sha256.hexdigest()
        if got != want:
            raise DataError(
                f"{where}: sha256 {got} differs from the hub's {want} (listing of commit "
                f"{shard.get('revision')}); delete the download outputs and rerun"
            )


class HubSource(DataSource):
    name = "hub"
    description = "data files of a Hugging Face hub dataset (data.hub)"
    # The schema of data.hub (archbench.config composes the config schema from the sources' fragments).
    schema_fragment = {
        "type": "object",
        "default": {},
        "additionalProperties": False,
        "description": "Hugging Face hub dataset, used when data.source is hub.",
        "properties": {
            "name": {
                "type": ["string", "null"],
                "default": None,
                "description": "Dataset repository id, e.g. allenai/c4.",
            },
            "files": {
                "type": ["string", "array", "null"],
                "items": {
                    "type": "string",
                },
                "default": None,
                "description": (
                    "Glob(s) of the dataset's data files, relative to the repository root, each one "
                    "shard, e.g. en/c4-train.0000[0-7]-of-01024.json.gz (8 of C4's 1024 train files). "
                    "Literals and [...] classes expand without the network (dry runs work offline); a * "
                    "or ? needs the repository's file list, fetched once when the workflow is parsed and "
                    'kept in {results}/data/hub_listing.json. null = "{subset}/*{split}*" (or "*{split}*"'
                    " without a subset)."
                ),
            },
            "revision": {
                "type": ["string", "null"],
                "default": None,
                "description": "Branch, tag or commit of the dataset repository (null = main).",
            },
            "subset": {
                "type": ["string", "null"],
                "default": None,
                "description": (
                    "Dataset configuration (subset, a folder of the repository), e.g. en; used when "
                    "data.hub.files is null."
                ),
            },
            "split": {
                "type": "string",
                "default": "train",
                "description": "Split to read from the hub; used when data.hub.files is null.",
            },
        },
    }

    def check_config(self, data: dict, settings: list[dict]) -> None:
        if not (data.get("hub") or {}).get("name"):
            raise ConfigError("config key 'data.hub.name': required when data.source is hub (e.g. allenai/c4)")

    def plan(self, data: dict, results: str) -> dict[str, dict]:
        """One shard per data file, read at the commit the listing resolved ``data.hub.revision`` to
        (offline without a kept listing: the revision as given)."""
        self.check_config(data, [])
        hub = data["hub"]
        files = hub_files(hub, results)
        listing = hub_listing(hub, results, required=False)
        revision = listing["commit"] if listing else hub.get("revision")
        shards = name_shards([(f, [None]) for f in files], self.name, repo=hub["name"], revision=revision)
        if listing:
            for spec in shards.values():
                if spec["path"] not in listing["file_info"]:
                    raise DataError(
                        f"data.hub.files: {spec['path']} is not in {hub['name']} at commit {revision} "
                        f"(listing kept in {results}/data/hub_listing.json)"
                    )
                spec["expected"] = listing["file_info"][spec["path"]]
        return shards

    def read(self, shard: dict, data: dict, limits: Limits):
        check_hub_reachable()
        where = f"hf://datasets/{shard['repo']}/{shard['path']}"
        with hub_fs().open(
            f"datasets/{shard['repo']}/{shard['path']}", "rb", revision=shard.get("revision"), block_size=8 << 20
        ) as raw:
            _check_size(shard, raw, where)
            wrapped = _Verified(raw)
            yield from read_file(shard, wrapped, where, data.get("text_column") or "text", limits)
            if shard["format"] != "parquet" and not raw.closed:  # a decompressor closes it at the end
                while wrapped.read(8 << 20):  # the rest (e.g. after the last line) also counts
                    pass
            _check_sha256(shard, wrapped, where)
