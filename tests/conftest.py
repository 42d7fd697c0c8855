"""Shared pytest fixtures. Tests never touch the network: the Hugging Face hub is forced offline."""

import pytest


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
    from archbench.data.sources import download
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
