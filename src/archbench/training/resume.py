"""Exact resume after a kill: data position, RNG state and accumulated train time travel in the
Lightning checkpoint (Lightning itself restores weights, optimizer, scheduler and step counters).
Checkpoints are written atomically, so a full disk or a kill mid-write keeps the previous one."""

from __future__ import annotations

import random
import time

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from archbench.data.loader import GlobalOrderSampler
from archbench.io import atomic_file


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's local writer truncates `last.ckpt` in place: on a full disk the only resumable state
    is left corrupt (measured). Ours writes a temporary and renames it, with umask permissions."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_file(path) as tmp:
            torch.save(checkpoint, tmp)


class ResumeState(L.Callback):
    """Saves how far the current epoch got (global samples, so any world size can resume it), the
    world size and the RNG states; restores them before training goes on.

    The data position is taken from the trainer's own progress counter, not from the loader: the
    loader has already prefetched the next batch when a checkpoint is written. Only rank 0 writes the
    checkpoint; the counter and the global position are the same on every rank.
    """

    def __init__(self, sampler: GlobalOrderSampler):
        self.sampler = sampler
        self.resumed_from_step = 0
        self.world_sizes: list[int] = []  # at the first start, then at every resume
        self.previous_train_time = 0.0  # seconds trained before the last restart
        self._start = self._end = None
        self._rng = None
        self._offset = 0  # Lightning's batch counter in this epoch when the sampler's position was set

    def setup(self, trainer, pl_module, stage):
        if stage == "fit":
            self.world_sizes.append(trainer.world_size)

    def on_train_start(self, trainer, pl_module):
        self._start = time.perf_counter()
        if self._rng is not None:  # restore last, so nothing in set-up consumes the restored streams
            random.setstate(self._rng["python"])
            np.random.set_state(tuple(self._rng["numpy"]))
            torch.set_rng_state(self._rng["torch"])
            if torch.cuda.is_available() and self._rng.get("cuda") is not None:
                torch.cuda.set_rng_state_all(self._rng["cuda"])
            self._rng = None

    def on_train_epoch_start(self, trainer, pl_module):
        if self.sampler.consumed == 0:
            self._offset = 0

    def on_train_end(self, trainer, pl_module):
        self._end = time.perf_counter()

    def train_time(self) -> float:
        if self._start is None:
            return self.previous_train_time
        return self.previous_train_time + (self._end or time.perf_counter()) - self._start

    def samples_done(self, trainer) -> int:
        """Global samples of this epoch whose training step has run (the one being saved included)."""
        batches = trainer.fit_loop.epoch_loop.batch_progress.current.processed - self._offset
        return self.sampler.consumed + batches * trainer.world_size * self.sampler.batch_size

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["archbench_resume"] = {
            "epoch": trainer.current_epoch,
            "samples_done": self.samples_done(trainer),
            "world_size": trainer.world_size,
            "world_sizes": self.world_sizes,
            "train_time": self.train_time(),
            "rng": {
                # plain Python types: Lightning reloads checkpoints with torch.load(weights_only=True)
                "python": random.getstate(),
                "numpy": _plain(np.random.get_state()),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        state = checkpoint.get("archbench_resume")
        self.resumed_from_step = int(checkpoint.get("global_step", 0))
        if not state:
            return
        self.world_sizes = [*state["world_sizes"], *self.world_sizes[-1:]]
        self.sampler.resume(state["epoch"], state["samples_done"])
        self.previous_train_time = state["train_time"]
        self._rng = state["rng"]
        # Lightning resumes its per-epoch batch counter as saved, in batches of the OLD world size, and
        # ends the epoch when it reaches len(loader). Restate it in batches of this world size, so the
        # counter plus the batches still to come never exceeds the epoch (same world size: unchanged).
        progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
        done = progress["processed"]
        global_batch = trainer.world_size * self.sampler.batch_size
        if state["world_size"] != trainer.world_size:
            done = state["samples_done"] // global_batch
            for key in progress:
                progress[key] += done - progress["processed"]
        self._offset = done
        # the data position itself is exact: `samples_done` is re-dealt over this world size's ranks
        self.sampler.consumed = state["samples_done"]


def _plain(state):
    return [x.tolist() if isinstance(x, np.ndarray) else x for x in state]
