"""download stage: default corpus, local files, hub failure modes, empty/invalid documents."""

import json
import re
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archbench.data.download import download, load_documents
from archbench.errors import ConfigError, DataError


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_default_corpus_one_document_per_chapter():
    df, stats = load_documents("default")
    assert list(df.columns) == ["text"]
    assert len(df) == stats["n_documents"] == 1189
    assert df["text"].str.strip().str.len().gt(0).all()
    assert df["text"].iloc[0].startswith("Genesis 1\nIn the beginning God created the heaven and the earth.")
    assert df["text"].iloc[-1].startswith("Revelation 22\n")
    assert stats["n_chars"] == df["text"].str.len().sum() > 4_000_000


def test_local_txt_file_is_one_document(tmp_path):
    (tmp_path / "a.txt").write_text("first line\n\nsecond paragraph\n", encoding="utf-8")
    df, stats = load_documents("local", path=str(tmp_path / "a.txt"))
    assert df["text"].tolist() == ["first line\n\nsecond paragraph\n"]
    assert stats["source"] == "local" and stats["n_documents"] == 1


def test_local_jsonl_custom_column(tmp_path):
    write_jsonl(tmp_path / "c.jsonl", [{"body": "alpha", "id": 1}, {"body": "beta", "id": 2}])
    df, _ = load_documents("local", path=str(tmp_path / "c.jsonl"), text_column="body")
    assert df["text"].tolist() == ["alpha", "beta"]


def test_local_parquet(tmp_path):
    pq.write_table(pa.table({"content": ["x y", "z"], "n": [1, 2]}), tmp_path / "d.parquet")
    df, _ = load_documents("local", path=str(tmp_path / "d.parquet"), text_column="content")
    assert df["text"].tolist() == ["x y", "z"]


def test_local_directory_recursive_and_glob(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "b.txt").write_text("doc b", encoding="utf-8")
    (tmp_path / "sub" / "a.txt").write_text("doc a", encoding="utf-8")
    write_jsonl(tmp_path / "sub" / "deeper" / "c.jsonl", [{"text": "doc c1"}, {"text": "doc c2"}])
    (tmp_path / "README.md").write_text("not a corpus file", encoding="utf-8")  # ignored in a directory

    df, stats = load_documents("local", path=str(tmp_path))
    assert sorted(df["text"]) == ["doc a", "doc b", "doc c1", "doc c2"]
    df, _ = load_documents("local", path=str(tmp_path / "**" / "*.txt"))
    assert sorted(df["text"]) == ["doc a", "doc b"]


def test_missing_column_lists_available_columns(tmp_path):
    write_jsonl(tmp_path / "c.jsonl", [{"body": "alpha", "id": 1}])
    with pytest.raises(DataError, match=r"'text'.*\['body', 'id'\]"):
        load_documents("local", path=str(tmp_path / "c.jsonl"))
    pq.write_table(pa.table({"content": ["x"]}), tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"d\.parquet.*'text'.*\['content'\]"):
        load_documents("local", path=str(tmp_path / "d.parquet"))


def test_missing_path_and_empty_matches(tmp_path):
    with pytest.raises(DataError, match="does not exist.*nope"):
        load_documents("local", path=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="matched no files"):
        load_documents("local", path=str(tmp_path / "*.jsonl"))
    with pytest.raises(DataError, match="holds no"):
        load_documents("local", path=str(tmp_path))
    with pytest.raises(ConfigError, match="data.path"):
        load_documents("local")
    with pytest.raises(ConfigError, match="data.source"):
        load_documents("ftp")


def test_empty_and_whitespace_documents_dropped_and_counted(tmp_path):
    write_jsonl(
        tmp_path / "c.jsonl", [{"text": "keep"}, {"text": ""}, {"text": " \n\t"}, {"text": None}, {"text": "also"}]
    )
    df, stats = load_documents("local", path=str(tmp_path / "c.jsonl"))
    assert df["text"].tolist() == ["keep", "also"]
    assert (stats["n_documents"], stats["n_dropped_empty"]) == (2, 3)


def test_all_empty_corpus_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no non-empty documents"):
        load_documents("local", path=str(tmp_path))


def test_invalid_utf8_replaced_and_counted(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 latin-1")
    (tmp_path / "good.txt").write_bytes("café".encode())
    (tmp_path / "c.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "x\xff y"}\n')
    with pytest.warns(UserWarning, match="2 document"):
        df, stats = load_documents("local", path=str(tmp_path))
    assert stats["n_replaced_utf8"] == 2
    assert sorted(df["text"]) == sorted(["caf\ufffd latin-1", "café", "ok", "x\ufffd y"])


def test_download_writes_parquet_and_stats_atomically(tmp_path):
    write_jsonl(tmp_path / "c.jsonl", [{"body": "one"}, {"body": " "}, {"body": "two"}])
    out = tmp_path / "out" / "raw.parquet"
    cfg = {
        "source": "local",
        "path": str(tmp_path / "c.jsonl"),
        "text_column": "body",
        "hub": {"name": None, "subset": None, "split": "train"},
    }
    stats = download(cfg, str(out), str(tmp_path / "out" / "raw.json"))
    assert pd.read_parquet(out)["text"].tolist() == ["one", "two"]
    assert json.loads((tmp_path / "out" / "raw.json").read_text()) == stats
    assert stats["n_dropped_empty"] == 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["raw.json", "raw.parquet"]  # no temp files


def test_download_failure_leaves_no_output(tmp_path):
    out = tmp_path / "raw.parquet"
    with pytest.raises(DataError):
        download({"source": "local", "path": str(tmp_path / "missing.txt")}, str(out))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- hub
# The network cannot be reached from the tests (the real hub cannot run here), so two things are mocked:
# - the listing: huggingface_hub's own HfApi.dataset_info runs for real over an HTTP transport that answers
#   /api/datasets/<repo>/revision/<rev> from the fake repository below (mocked at the HTTP boundary);
# - reading: the hub's file system (HfFileSystem) is replaced by a local fsspec file system holding the
#   fake repository under datasets/<owner>/<name>/ (the same methods: open with revision / block_size).
import gzip  # noqa: E402
import hashlib  # noqa: E402

from fsspec.implementations.dirfs import DirFileSystem  # noqa: E402
from fsspec.implementations.local import LocalFileSystem  # noqa: E402

from archbench.data.download import download_shard  # noqa: E402
from archbench.data.sources import hub as hub_source  # noqa: E402
from archbench.data.sources import plan_shards  # noqa: E402
from archbench.data.sources.hub import expand_classes  # noqa: E402


class FakeHub(DirFileSystem):
    """HfFileSystem's interface over a local folder; records the calls."""

    calls: list = []

    def __init__(self, root):
        super().__init__(path=str(root), fs=LocalFileSystem())

    def find(self, path, **kw):
        FakeHub.calls.append(("find", path))
        return super().find(path, **kw)

    def open(self, path, mode="rb", revision=None, block_size=None, **kw):
        FakeHub.calls.append(("open", path, revision))
        return super().open(path, mode)


COMMIT = "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c"


def hub_http(repo_root, monkeypatch):
    """huggingface_hub's HTTP client answering the dataset-info API from ``repo_root``; returns the
    requests it saw. Offline mode is switched off where the libraries keep it (read at import)."""
    import datasets.config
    import httpx2
    import huggingface_hub
    import huggingface_hub.constants

    seen = []

    def answer(request):
        if request.url.path.startswith("/api/datasets"):  # not the library's own other calls
            seen.append(request.url.path)
        m = re.fullmatch(r"/api/datasets/allenai/c4(?:/revision/(.+))?", request.url.path)
        if not m:
            return httpx2.Response(404, json={"error": "not found"})
        siblings = []
        for f in sorted(p for p in repo_root.rglob("*") if p.is_file()):
            data = f.read_bytes()
            lfs = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
            siblings.append(
                {"rfilename": str(f.relative_to(repo_root)), "size": len(data), "blobId": "0" * 40, "lfs": lfs}
            )
        return httpx2.Response(200, json={"id": "allenai/c4", "sha": COMMIT, "siblings": siblings})

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(answer)))
    yield seen
    huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "datasets" / "allenai" / "c4" / "en"
    repo.mkdir(parents=True)
    for split, n in (("train", 3), ("validation", 1)):
        for i in range(n):
            with gzip.open(repo / f"c4-{split}.{i:05d}-of-01024.json.gz", "wt") as f:
                for j in range(5):
                    f.write(
                        json.dumps({"text": f"{split} {i} doc {j}" if j else "", "url": "u", "timestamp": "t"}) + "\n"
                    )
    (repo.parent / "README.md").write_text("card")
    FakeHub.calls = []
    monkeypatch.setattr(hub_source, "hub_fs", lambda: FakeHub(tmp_path / "hub"))
    monkeypatch.setattr(hub_source, "check_hub_reachable", lambda: None)
    http = hub_http(repo.parent, monkeypatch)
    FakeHub.http = next(http)
    yield tmp_path
    next(http, None)


def test_hub_file_classes_expand_offline_without_listing(tmp_path):
    assert expand_classes("en/c4-train.0000[0-2]-of-01024.json.gz") == [
        f"en/c4-train.0000{i}-of-01024.json.gz" for i in range(3)
    ]
    assert expand_classes("en/*.json.gz") is None
    shards = plan_shards(
        {"source": "hub", "hub": {"name": "allenai/c4", "files": "en/c4-train.0000[0-7]-of-01024.json.gz"}},
        str(tmp_path / "results"),
    )  # offline (conftest): no network needed
    assert list(shards) == [f"{i:05d}-c4-train.0000{i}-of-01024" for i in range(8)]
    assert shards["00003-c4-train.00003-of-01024"]["path"] == "en/c4-train.00003-of-01024.json.gz"
    assert not (tmp_path / "results").exists()


def test_hub_glob_lists_the_repository_once_and_keeps_the_listing(fake_hub, monkeypatch):
    results = str(fake_hub / "results")
    hub = {"name": "allenai/c4", "subset": "en", "split": "train", "files": None}  # -> en/*train*
    shards = plan_shards({"source": "hub", "hub": hub}, results)
    assert [s["path"] for s in shards.values()] == [f"en/c4-train.{i:05d}-of-01024.json.gz" for i in range(3)]
    kept = json.loads((fake_hub / "results/data/hub_listing.json").read_text())
    assert kept["name"] == "allenai/c4" and len(kept["files"]) == 4  # README.md is not a data file
    assert kept["commit"] == COMMIT and FakeHub.http == ["/api/datasets/allenai/c4"]
    monkeypatch.setattr(hub_source, "hub_fs", lambda: 1 / 0)  # a second parse must not list again
    validation = fake_hub / "hub/datasets/allenai/c4/en/c4-validation.00000-of-01024.json.gz"
    assert plan_shards({"source": "hub", "hub": {**hub, "files": "en/*validation*"}}, results) == {
        "00000-c4-validation.00000-of-01024": {
            "name": "00000-c4-validation.00000-of-01024",
            "source": "hub",
            "path": "en/c4-validation.00000-of-01024.json.gz",
            "format": "jsonl",
            "compression": "gzip",
            "range": None,
            "repo": "allenai/c4",
            "revision": COMMIT,  # the commit the listing resolved main to
            "expected": {
                "size": validation.stat().st_size,
                "sha256": hashlib.sha256(validation.read_bytes()).hexdigest(),
                "blob_id": "0" * 40,
            },
        }
    }
    assert FakeHub.http == ["/api/datasets/allenai/c4"]  # listed once
    with pytest.raises(DataError, match=r"matched none of the 4 files"):
        plan_shards({"source": "hub", "hub": {**hub, "files": "de/*"}}, results)


def test_hub_shard_is_streamed_from_its_file(fake_hub, tmp_path):
    hub = {"name": "allenai/c4", "files": "en/c4-train.0000[1]-of-01024.json.gz", "revision": "refs/convert/x"}
    (shard,) = plan_shards({"source": "hub", "hub": hub}, str(tmp_path / "results")).values()
    stats = download_shard(shard, {"source": "hub", "hub": hub}, str(tmp_path / "o.parquet"), str(tmp_path / "o.json"))
    assert pd.read_parquet(tmp_path / "o.parquet")["text"].tolist() == [f"train 1 doc {j}" for j in range(1, 5)]
    assert (stats["n_documents"], stats["n_dropped_empty"]) == (4, 1)
    assert ("open", "datasets/allenai/c4/en/c4-train.00001-of-01024.json.gz", COMMIT) in FakeHub.calls
    assert FakeHub.http == ["/api/datasets/allenai/c4/revision/refs/convert/x"]
    listing = json.loads((tmp_path / "results/data/hub_listing.json").read_text())
    assert (listing["revision"], listing["commit"]) == ("refs/convert/x", COMMIT)


def test_hub_download_verifies_size_and_checksum_of_the_listing(fake_hub, tmp_path):
    path = fake_hub / "hub/datasets/allenai/c4/en/extra.jsonl"
    write_jsonl(path, [{"text": f"extra doc {j}"} for j in range(4)])
    hub = {"name": "allenai/c4", "files": "en/extra.jsonl"}
    (shard,) = plan_shards({"source": "hub", "hub": hub}, str(tmp_path / "results")).values()
    good = path.read_bytes()
    path.write_bytes(good.replace(b"doc 3", b"doc 9"))  # the file changed on the hub after the listing
    out = tmp_path / "out"
    with pytest.raises(DataError) as err:  # same size, other bytes: the hub's sha256 catches it
        download_shard(shard, {}, str(out / "o.parquet"), str(out / "o.json"))
    assert re.fullmatch(
        r"hf://datasets/allenai/c4/en/extra\.jsonl: sha256 [0-9a-f]{64} differs from the "
        rf"hub's {shard['expected']['sha256']} \(listing of commit {COMMIT}\); delete the download outputs and rerun",
        str(err.value),
    ), str(err.value)
    assert not out.exists() or [p.name for p in out.iterdir() if not p.name.startswith(".")] == []
    path.write_bytes(good + b"\0")
    with pytest.raises(DataError, match=rf": {len(good) + 1} bytes at commit {COMMIT}, the listing says {len(good)}$"):
        download_shard(shard, {}, str(out / "o.parquet"), str(out / "o.json"))
    path.write_bytes(good)
    assert download_shard(shard, {}, str(out / "o.parquet"), str(out / "o.json"))["n_documents"] == 4


def test_hub_offline_fails_fast_with_hint(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(DataError) as err:  # a * pattern needs a listing: refused at parse time
        plan_shards({"source": "hub", "hub": {"name": "allenai/c4", "files": "en/*.json.gz"}}, str(tmp_path))
    assert time.perf_counter() - t0 < 10
    assert "offline" in str(err.value) and "data.source: local" in str(err.value)
    shard = {
        "name": "00000-x",
        "source": "hub",
        "path": "en/x.json.gz",
        "format": "jsonl",
        "compression": "gzip",
        "range": None,
        "repo": "allenai/c4",
        "revision": None,
    }
    with pytest.raises(DataError, match="offline"):
        download_shard(shard, {}, str(tmp_path / "o.parquet"), str(tmp_path / "o.json"))
    assert not (tmp_path / "o.parquet").exists()


def test_hub_unreachable_fails_fast_with_hint(monkeypatch, tmp_path):
    import datasets.config
    import huggingface_hub.constants

    # the libraries read the offline flags once, at import: switch them off where they are kept
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"unreachable.*data\.source: local"):
        plan_shards({"source": "hub", "hub": {"name": "allenai/c4", "files": "en/*.json.gz"}}, str(tmp_path))
    assert time.perf_counter() - t0 < 10


def test_each_source_contributes_the_schema_of_its_own_data_section():
    """A source's settings ``data.<name>`` are its schema fragment: the composed config schema holds exactly
    that and the base file does not spell it (one home; hub and mqar have settings, default and local none)."""
    import jsonschema
    import yaml

    from archbench.config import SCHEMA_PATH, load_schema
    from archbench.data.sources import get_source

    data = load_schema()["properties"]["data"]["properties"]
    for name in ("default", "local", "hub", "mqar"):
        fragment = get_source(name).schema_fragment
        if name in ("default", "local"):
            assert fragment is None and name not in data
            continue
        jsonschema.Draft7Validator.check_schema(fragment)
        assert fragment["type"] == "object" and fragment["additionalProperties"] is False
        assert fragment == data[name]
        assert name not in yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["data"]["properties"]


def test_every_module_of_the_sources_package_is_a_registered_source():
    """A built-in source is one module of archbench.data.sources: found there, no list to extend."""
    from archbench.data.sources import builtin_sources, source_names

    assert [s.name for s in builtin_sources()] == ["default", "hub", "local", "mqar"]
    assert source_names()[:4] == ["default", "hub", "local", "mqar"]
