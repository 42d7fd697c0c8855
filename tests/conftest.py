"""Shared pytest fixtures and the tiers' timeouts. Tests never touch the network: the Hugging Face hub is
forced offline.

Tiers (markers, registered in pyproject.toml) are set in each test module: ``pytestmark =
pytest.mark.<tier>`` at its top, or the mark on one test (tests/test_tiers.py fails on a test that runs the
pipeline without one). The README's `python -m pytest` runs the fast tier, every unmarked test
(pyproject's addopts deselects the rest); .ci/run then runs `-m "(slow or multiprocess or faults) and not
slurm"` and, on a local cluster, `-m slurm`.
"""

import pytest

TIER_MARKERS = ("slow", "multiprocess", "faults", "slurm")
# pyproject's `timeout` (900 s) is the fast tier's, per test (its slowest: 260 s on 2 cores at load average 10).
# A tiered test runs whole pipelines (a module fixture's run counts toward its first test) under their
# own subprocess timeouts of up to an hour: it stops only when hung.
TIERED_TIMEOUT = 7200


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("timeout") is None and any(item.get_closest_marker(t) for t in TIER_MARKERS):
            item.add_marker(pytest.mark.timeout(TIERED_TIMEOUT))


@pytest.fixture(autouse=True)
def _hf_offline(monkeypatch):
    """Offline mode for every test, so nothing waits on (or downloads from) the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: extra threads only contend on the shared CPU (3x slower measured)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_tokens(tmp_path_factory):
    """Tokenizer + packed train/validation/test token shards (``tokens[split]`` is the split's index.json)
    from 40 chapters of the default corpus, made by the real data stages (a couple of seconds)."""
    from archbench.data.download import download
    from archbench.data.split import split_shard
    from archbench.data.tokenize import tokenize_split, write_token_index
    from archbench.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("tiny_tokens")
    download({"source": "default", "max_documents": 40}, str(root / "raw.parquet"))
    splits = {s: str(root / "split" / s / "00000-kjv.parquet") for s in ("train", "validation", "test")}
    split_shard(
        str(root / "raw.parquet"),
        splits,
        {"train": 0.8, "validation": 0.1, "test": 0.1},
        shuffle=False,
        seed=0,
        total=40,
    )
    train_tokenizer([splits["train"]], str(root / "tokenizer"), vocab_size=384)
    tokens = {}
    for split, path in splits.items():
        out = root / "tokens" / split
        tokenize_split(path, str(root / "tokenizer"), str(out / "00000-kjv.bin"), str(out / "00000-kjv.json"))
        tokens[split] = str(out / "index.json")
        write_token_index(split, [str(out / "00000-kjv.json")], tokens[split])
    return {"tokenizer": str(root / "tokenizer"), "tokens": tokens}
