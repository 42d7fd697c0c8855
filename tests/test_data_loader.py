"""loader: exact windows over the packed token file, seeded DataLoader, error messages."""

import json

import numpy as np
import pytest
import torch

from archbench.data.loader import TokenWindows, load_tokens, make_dataloader
from archbench.errors import DataError


def write_tokens(path, tokens, dtype="uint16"):
    np.asarray(tokens, dtype=dtype).tofile(path)
    path.with_suffix(".json").write_text(json.dumps({"dtype": dtype, "n_tokens": len(tokens)}))
    return path


@pytest.fixture
def bin23(tmp_path):
    return write_tokens(tmp_path / "train.bin", np.arange(100, 123))  # 23 tokens: 100..122


def test_load_tokens_reads_dtype_from_json(tmp_path):
    path = write_tokens(tmp_path / "big.bin", [1, 70000, 3], dtype="uint32")
    assert load_tokens(str(path)).tolist() == [1, 70000, 3]


def test_windows_exact_contents(bin23):
    ds = TokenWindows(str(bin23), seq_len=5)
    assert len(ds) == 4  # (23 - 1) // 5
    for i in range(4):
        w = ds[i]
        assert w.dtype == torch.int64 and w.shape == (6,)
        assert w.tolist() == list(range(100 + 5 * i, 106 + 5 * i))
    x, y = ds[3][:-1], ds[3][1:]
    assert x.tolist() == [115, 116, 117, 118, 119] and y.tolist() == [116, 117, 118, 119, 120]
    with pytest.raises(IndexError):
        ds[4]


def test_windows_cover_every_target_once_without_padding(tmp_path):
    path = write_tokens(tmp_path / "t.bin", np.arange(1, 41))  # 40 tokens, no zeros anywhere
    ds = TokenWindows(str(path), seq_len=8)
    assert len(ds) == 4  # a 5th window would need token 41
    targets = torch.cat([ds[i][1:] for i in range(len(ds))])
    assert targets.tolist() == list(range(2, 2 + 8 * len(ds)))
    assert all((ds[i] != 0).all() for i in range(len(ds)))


def test_too_few_tokens(tmp_path):
    path = write_tokens(tmp_path / "tiny.bin", [5, 6, 7, 8, 9])
    with pytest.raises(DataError, match=r"tiny\.bin: 5 tokens.*needs 6"):
        TokenWindows(str(path), seq_len=5)


def test_size_mismatch_and_missing_metadata(tmp_path, bin23):
    (tmp_path / "train.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match="re-run the tokenize stage"):
        load_tokens(str(bin23))
    bin23.with_suffix(".json").unlink()
    with pytest.raises(DataError, match="train.json is missing"):
        load_tokens(str(bin23))


def test_dataloader_seeded_order(bin23):
    def order(seed, shuffle=True):
        return [b[:, 0].tolist() for b in make_dataloader(str(bin23), 5, 2, shuffle=shuffle, seed=seed)]

    batches = order(0)
    assert all(len(b) == 2 for b in batches) and sorted(sum(batches, [])) == [100, 105, 110, 115]
    assert order(0) == batches
    assert any(order(s) != batches for s in range(1, 6))
    assert order(0, shuffle=False) == [[100, 105], [110, 115]]


def test_dataloader_with_worker_process(bin23):
    loader = make_dataloader(str(bin23), 5, 4, shuffle=False, seed=0, num_workers=1)
    (batch,) = list(loader)
    assert batch.shape == (4, 6) and batch[:, 0].tolist() == [100, 105, 110, 115]


def test_drop_last_without_a_full_batch(bin23):
    with pytest.raises(DataError, match="batch_size=8"):
        make_dataloader(str(bin23), 5, 8, shuffle=True, seed=0, drop_last=True)
