"""Training/evaluation data: fixed windows over packed token shards (nanoGPT style), in an order that
resumes exactly at any world size.

Window ``i`` of a shard is ``tokens[i*seq_len : i*seq_len + seq_len + 1]``: consecutive windows share
one token so that ``x = w[:-1], y = w[1:]`` covers every next-token target of the shard exactly once.
Windows span document boundaries (documents are separated by ``</s>``) but never shards; there is no
padding. The dataset's index space is the concatenation of every shard's windows, in shard order.

Order (:class:`GlobalOrderSampler`): epoch ``e``'s global order is a pure function of ``(seed, e)``;
the data-parallel rank ``r`` of ``W`` reads ``remaining[r::W]``, so each global batch of ``W *
batch_size`` windows is a contiguous block of the global order. The position is one number, the
global samples consumed in the epoch; a resumed run (at any world size) deals the rest of the same
order again, so nothing repeats and at most the tail that does not fill a global batch is left out.
"""

from __future__ import annotations

import bisect
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


def shard_paths(tokens) -> list[str]:
    """The ``.bin`` shards of ``tokens``: an ``index.json``, a split directory (its ``index.json``, else
    its ``*.bin`` in name order), a single ``.bin`` or a list of ``.bin`` paths."""
    if isinstance(tokens, (list, tuple)):
        paths = [str(p) for p in tokens]
    else:
        tokens = Path(tokens)
        if tokens.is_dir():
            index = tokens / "index.json"
            paths = _index_shards(index) if index.is_file() else sorted(str(p) for p in tokens.glob("*.bin"))
        elif tokens.suffix == ".json":
            if not tokens.is_file():
                raise DataError(f"token index not found: {tokens}")
            paths = _index_shards(tokens)
        else:
            paths = [str(tokens)]
    if not paths:
        raise DataError(f"{tokens}: no token shards (*.bin)")
    return paths


def _index_shards(index: Path) -> list[str]:
    try:
        shards = json.loads(index.read_text(encoding="utf-8"))["shards"]
        return [str(index.parent / s["bin"]) for s in shards]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{index}: not a token index (expected {{'shards': [{{'bin': ...}}, ...]}}): {err}") from err


def load_token_shards(tokens) -> list[np.ndarray]:
    """Memory maps of every shard of ``tokens`` (see :func:`shard_paths`), in order."""
    return [load_tokens(p) for p in shard_paths(tokens)]


class TokenWindows(Dataset):
    """All ``seq_len + 1`` windows of every shard, concatenated, as int64 tensors.

    Shards are memory-mapped lazily in each process, so DataLoader workers never pickle the data.
    """

    def __init__(self, tokens, seq_len: int):
        if seq_len < 1:
            raise DataError(f"seq_len must be >= 1, got {seq_len}")
        self.paths, self.seq_len = shard_paths(tokens), int(seq_len)
        sizes = [len(t) for t in load_token_shards(self.paths)]  # validates every shard against its .json
        self.n_tokens = sum(sizes)
        self.bounds = np.cumsum([0] + [max(0, n - 1) // self.seq_len for n in sizes]).tolist()
        self._shards = None
        if len(self) == 0:
            raise DataError(
                f"{tokens}: {self.n_tokens} tokens in {len(sizes)} shard(s), but one window of seq_len="
                f"{self.seq_len} needs {self.seq_len + 1} in one shard; use more data or a shorter seq_len"
            )

    def __len__(self) -> int:
        return self.bounds[-1]

    def __getitem__(self, i: int) -> torch.Tensor:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range ({len(self)} windows)")
        i %= len(self)
        if self._shards is None:
            self._shards = load_token_shards(self.paths)
        shard = bisect.bisect_right(self.bounds, i) - 1
        start = (i - self.bounds[shard]) * self.seq_len
        return torch.from_numpy(self._shards[shard][start : start + self.seq_len + 1].astype(np.int64))

    def __getstate__(self):
        return {**self.__dict__, "_shards": None}


def _distributed() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class GlobalOrderSampler(Sampler[int]):
    """This rank's share of epoch ``epoch``'s global order, from ``consumed`` on (see the module doc).

    ``rank`` / ``world_size`` default to torch.distributed's (read when iterated, i.e. after Lightning
    set up the process group). ``len()`` is this rank's share of the WHOLE epoch, as Lightning counts
    batches per epoch (its learning-rate schedule and epoch end depend on it); after a resume the
    iteration yields only the rest, and Lightning's restored batch counter covers the difference.
    """

    def __init__(
        self,
        n: int,
        shuffle: bool,
        seed: int,
        batch_size: int,
        drop_last: bool,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        self.n, self.shuffle, self.seed = int(n), bool(shuffle), int(seed)
        self.batch_size, self.drop_last = int(batch_size), bool(drop_last)
        self._rank, self._world = rank, world_size
        self.epoch, self.consumed = 0, 0

    @property
    def world(self) -> tuple[int, int]:
        rank, world = _distributed()
        return (self._rank if self._rank is not None else rank), (self._world or world)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before every epoch; a new epoch starts from its beginning."""
        if int(epoch) != self.epoch:
            self.epoch, self.consumed = int(epoch), 0

    def resume(self, epoch: int, consumed: int) -> None:
        self.epoch, self.consumed = int(epoch), int(consumed)

    def order(self, epoch: int | None = None) -> list[int]:
        """The global order of ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return list(range(self.n))
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()

    def _share(self, remaining: int) -> int:
        rank, world = self.world
        if self.drop_last:
            return remaining // (world * self.batch_size) * self.batch_size
        return len(range(rank, remaining, world))

    def batches_left(self) -> int:
        """Batches per rank still to come in this epoch."""
        share = self._share(self.n - self.consumed)
        return share // self.batch_size if self.drop_last else -(-share // self.batch_size)

    def __len__(self) -> int:
        return self._share(self.n)

    def __iter__(self):
        rank, world = self.world
        rest = self.order()[self.consumed :]
        if self.drop_last:
            rest = rest[: len(rest) // (world * self.batch_size) * world * self.batch_size]
        return iter(rest[rank::world])


def make_dataloader(
    tokens,
    seq_len: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """DataLoader over :class:`TokenWindows` of ``tokens`` (index.json, split dir, ``.bin`` or list of
    ``.bin``); batches are ``(batch_size, seq_len + 1)`` int64, in the order of
    :class:`GlobalOrderSampler`. Under DDP pass ``use_distributed_sampler=False`` to the Trainer: the
    sampler shards itself (Lightning's wrapper would index a resumed sampler with the wrong length).
    """
    dataset = TokenWindows(tokens, seq_len)
    if drop_last and len(dataset) < batch_size:
        raise DataError(
            f"{tokens}: {len(dataset)} windows of seq_len={seq_len} make no full batch of "
            f"batch_size={batch_size}; use more data or a smaller batch_size/seq_len"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=GlobalOrderSampler(len(dataset), shuffle, seed, batch_size, drop_last),
        num_workers=num_workers,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
    )
