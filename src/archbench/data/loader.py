"""Training/evaluation data: fixed windows over a packed token file (nanoGPT style).

Window ``i`` is ``tokens[i*seq_len : i*seq_len + seq_len + 1]``: consecutive windows share one
token so that ``x = w[:-1], y = w[1:]`` covers every next-token target exactly once. Windows span
document boundaries (documents are separated by ``</s>``), so there is never any padding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from archbench.errors import DataError


def load_tokens(bin_path: str) -> np.ndarray:
    """Memory-map a ``.bin`` token file with the dtype recorded in its sibling ``.json``."""
    bin_path = Path(bin_path)
    meta_path = bin_path.with_suffix(".json")
    if not bin_path.is_file():
        raise DataError(f"token file not found: {bin_path}")
    if not meta_path.is_file():
        raise DataError(f"{bin_path}: metadata {meta_path} is missing (incomplete tokenize output?)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    dtype = np.dtype(meta["dtype"]).newbyteorder("<")
    expected = int(meta["n_tokens"]) * dtype.itemsize
    if bin_path.stat().st_size != expected:
        raise DataError(
            f"{bin_path}: {bin_path.stat().st_size} bytes, but {meta_path} records "
            f"{meta['n_tokens']} {dtype.name} tokens ({expected} bytes); re-run the tokenize stage"
        )
    if expected == 0:  # mmap cannot map an empty file
        return np.zeros(0, dtype=dtype)
    return np.memmap(bin_path, dtype=dtype, mode="r")


def token_files(tokens) -> list[str]:
    """The ``.bin`` shards named by ``tokens``: an ``index.json``, a split directory holding one, a single
    ``.bin`` or a list of ``.bin`` paths. (Minimal multi-shard support; issue 12 replaces this loader.)"""
    if isinstance(tokens, (list, tuple)):
        return [str(t) for t in tokens]
    path = Path(tokens)
    if path.is_dir():
        path = path / "index.json"
    if path.suffix == ".json":
        if not path.is_file():
            raise DataError(f"token index not found: {path}")
        index = json.loads(path.read_text(encoding="utf-8"))
        return [str(path.parent / s["bin"]) for s in index["shards"]]
    return [str(path)]


def load_token_shards(tokens) -> list[np.ndarray]:
    """Memory-maps of every shard of ``tokens`` (see :func:`token_files`), in order."""
    return [load_tokens(f) for f in token_files(tokens)]


class TrainWindows(Dataset):
    """All non-overlapping ``seq_len + 1`` windows of each token shard, as int64 tensors; no window
    crosses a shard. The memmaps are opened lazily in each process, so workers never pickle data.
    """

    def __init__(self, bin_path, seq_len: int):
        if seq_len < 1:
            raise DataError(f"seq_len must be >= 1, got {seq_len}")
        self.files, self.seq_len = token_files(bin_path), int(seq_len)
        self.bin_path = str(bin_path) if not isinstance(bin_path, (list, tuple)) else self.files[0]
        self._tokens = load_token_shards(self.files)
        self.n_tokens = sum(len(t) for t in self._tokens)
        per_shard = [max(0, (len(t) - 1) // self.seq_len) for t in self._tokens]
        self._ends = np.cumsum(per_shard)
        if self._ends[-1] == 0:
            raise DataError(
                f"{self.bin_path}: {self.n_tokens} tokens, but one window of seq_len={self.seq_len} "
                f"needs {self.seq_len + 1}; use more data or a shorter seq_len"
            )

    def __len__(self) -> int:
        return int(self._ends[-1])

    def __getitem__(self, i: int) -> torch.Tensor:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range ({len(self)} windows)")
        i %= len(self)
        if self._tokens is None:
            self._tokens = load_token_shards(self.files)
        shard = int(np.searchsorted(self._ends, i, side="right"))
        start = (i - (int(self._ends[shard - 1]) if shard else 0)) * self.seq_len
        return torch.from_numpy(self._tokens[shard][start : start + self.seq_len + 1].astype(np.int64))

    def __getstate__(self):
        return {**self.__dict__, "_tokens": None}


EvalWindows = TrainWindows  # evaluation uses every window, in order (shuffle=False)


class ResumableSampler(Sampler[int]):
    """Window indices whose order in epoch ``e`` is a pure function of ``(seed, e)``.

    A killed run resumes mid-epoch exactly where it stopped: :meth:`resume` sets the epoch and how
    many samples of it were already trained on, and the next pass skips them (once). A single
    generator seeded at start-up would instead replay epoch 0's order after every restart.
    """

    def __init__(self, n: int, shuffle: bool, seed: int):
        self.n, self.shuffle, self.seed = int(n), bool(shuffle), int(seed)
        self.epoch, self._skip = 0, 0

    def set_epoch(self, epoch: int) -> None:  # called by Lightning at each epoch start
        self.epoch = int(epoch)

    def resume(self, epoch: int, samples_done: int) -> None:
        self.epoch, self._skip = int(epoch), int(samples_done)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.n)
        skip, self._skip = self._skip, 0
        return iter(order[skip:].tolist())


def make_dataloader(
    bin_path,
    seq_len: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """DataLoader over :class:`TrainWindows`; batches are ``(batch_size, seq_len + 1)`` int64.

    The order depends only on ``seed`` and the epoch (see :class:`ResumableSampler`), not on
    global RNG state, so a resumed or repeated run sees the same batches.
    """
    dataset = TrainWindows(bin_path, seq_len)
    if drop_last and len(dataset) < batch_size:
        raise DataError(
            f"{bin_path}: {len(dataset)} windows of seq_len={seq_len} make no full batch of "
            f"batch_size={batch_size}; use more data or a smaller batch_size/seq_len"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ResumableSampler(len(dataset), shuffle, seed),
        num_workers=num_workers,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
    )
