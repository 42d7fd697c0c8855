"""loader: exact windows over the packed token file, seeded DataLoader, error messages."""

import json

import numpy as np
import pytest
import torch

from archbench.data.loader import GlobalOrderSampler, TokenWindows, load_token_shards, load_tokens, make_dataloader
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


@pytest.fixture
def shards(tmp_path):
    """Three shards as the tokenize stage writes them: 13, 4 (too short for one window) and 11 tokens."""
    split = tmp_path / "train"
    split.mkdir()
    sizes = {"a": 13, "b": 4, "c": 11}
    start, entries = 0, []
    for name, n in sizes.items():
        write_tokens(split / f"{name}.bin", np.arange(start, start + n))
        entries.append({"name": name, "bin": f"{name}.bin", "n_tokens": n})
        start += 100
    (split / "index.json").write_text(
        json.dumps({"split": "train", "dtype": "uint16", "n_tokens": 28, "shards": entries})
    )
    return split


def test_windows_over_shards_never_cross_a_shard(shards):
    ds = TokenWindows(str(shards / "index.json"), seq_len=4)
    # a: (13-1)//4 = 3 windows, b: 0, c: (11-1)//4 = 2
    assert len(ds) == 5
    assert [ds[i].tolist() for i in range(5)] == [
        [0, 1, 2, 3, 4],
        [4, 5, 6, 7, 8],
        [8, 9, 10, 11, 12],
        [200, 201, 202, 203, 204],
        [204, 205, 206, 207, 208],
    ]
    # the same shards given as the split folder or as a list of .bin files
    assert [TokenWindows(str(shards), 4)[i].tolist() for i in range(5)] == [ds[i].tolist() for i in range(5)]
    listed = TokenWindows([str(shards / f"{n}.bin") for n in "abc"], 4)
    assert [listed[i].tolist() for i in range(5)] == [ds[i].tolist() for i in range(5)]
    assert [len(t) for t in load_token_shards(str(shards))] == [13, 4, 11]


def test_shards_are_opened_lazily_and_never_pickled(shards):
    import pickle

    ds = TokenWindows(str(shards), 4)
    assert ds._shards is None  # only the sizes were read at construction
    ds[0]
    assert ds._shards is not None and pickle.loads(pickle.dumps(ds))._shards is None
    batches = list(make_dataloader(str(shards), 4, 1, shuffle=False, seed=0, num_workers=1))
    assert [b[0, 0].item() for b in batches] == [0, 4, 8, 200, 204]


def test_bad_index_names_the_file(tmp_path):
    (tmp_path / "index.json").write_text('{"split": "train"}')
    with pytest.raises(DataError, match=r"index\.json: not a token index"):
        TokenWindows(str(tmp_path / "index.json"), 4)


def deal(n, world, batch, epoch=0, consumed=0, drop_last=True):
    out = []
    for rank in range(world):
        s = GlobalOrderSampler(n, True, 7, batch, drop_last, rank=rank, world_size=world)
        s.resume(epoch, consumed)
        out.append(list(s))
        assert len(s) == s._share(n)
    return out


def test_ranks_deal_the_global_order_one_global_batch_at_a_time():
    order = GlobalOrderSampler(50, True, 7, 3, True).order(0)
    r0, r1 = deal(50, 2, 3)
    assert len(r0) == len(r1) == 24  # 50 // 6 = 8 global batches of 6
    for b in range(8):
        block = order[6 * b : 6 * b + 6]
        assert r0[3 * b : 3 * b + 3] == block[0::2] and r1[3 * b : 3 * b + 3] == block[1::2]
    assert GlobalOrderSampler(50, True, 7, 3, True).order(1) != order  # each epoch its own order


@pytest.mark.parametrize("old,new", [(2, 1), (4, 2), (1, 2), (2, 3)])
def test_resume_at_another_world_size_repeats_nothing_and_skips_at_most_a_global_batch(old, new):
    n, batch = 101, 2
    order = GlobalOrderSampler(n, True, 7, batch, True).order(0)
    for steps_done in range(0, n // (old * batch) + 1):
        consumed = steps_done * old * batch
        trained = set(order[:consumed])
        rest = deal(n, new, batch, consumed=consumed)
        after = [i for r in rest for i in r]
        assert len(after) == len(set(after)) and not trained & set(after)  # no window twice
        skipped = set(range(n)) - trained - set(after)
        assert len(skipped) < new * batch  # only the tail that fills no global batch
        assert sorted(after) == sorted(order[consumed : consumed + len(after)])  # the same order, continued


def test_evaluation_order_covers_every_window_once_over_ranks():
    r0, r1 = deal(11, 2, 4, drop_last=False)
    s = GlobalOrderSampler(11, False, 0, 4, False, rank=1, world_size=2)
    assert sorted(r0 + r1) == list(range(11)) and list(s) == [1, 3, 5, 7, 9]


def test_a_new_epoch_starts_at_its_beginning():
    s = GlobalOrderSampler(20, True, 7, 2, True, rank=0, world_size=1)
    s.resume(0, 10)
    assert len(list(s)) == 10
    s.set_epoch(0)  # Lightning re-announces the resumed epoch: the position stays
    assert len(list(s)) == 10
    s.set_epoch(1)
    assert list(s) == s.order(1)
