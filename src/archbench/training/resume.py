"""Exact resume after a kill: data position, RNG state and accumulated train time travel in the
Lightning checkpoint (Lightning itself restores weights, optimizer, scheduler and step counters)."""

from __future__ import annotations

import random
import time

import lightning as L
import numpy as np
import torch

from archbench.data.loader import ResumableSampler


class ResumeState(L.Callback):
    """Saves how far the current epoch got and the RNG states; restores them before training goes on.

    The data position is taken from the trainer's own progress counter, not from the sampler: the
    loader has already prefetched the next batch when a checkpoint is written.
    """

    def __init__(self, sampler: ResumableSampler, batch_size: int):
        self.sampler, self.batch_size = sampler, batch_size
        self.resumed_from_step = 0
        self.previous_train_time = 0.0  # seconds trained before the last restart
        self._start = self._end = None
        self._rng = None

    def on_train_start(self, trainer, pl_module):
        self._start = time.perf_counter()
        if self._rng is not None:  # restore last, so nothing in set-up consumes the restored streams
            random.setstate(self._rng["python"])
            np.random.set_state(tuple(self._rng["numpy"]))
            torch.set_rng_state(self._rng["torch"])
            if torch.cuda.is_available() and self._rng.get("cuda") is not None:
                torch.cuda.set_rng_state_all(self._rng["cuda"])
            self._rng = None

    def on_train_end(self, trainer, pl_module):
        self._end = time.perf_counter()

    def train_time(self) -> float:
        if self._start is None:
            return self.previous_train_time
        return self.previous_train_time + (self._end or time.perf_counter()) - self._start

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["archbench_resume"] = {
            "epoch": trainer.current_epoch,
            # batches of this epoch whose training step has run (the one being saved included)
            "batches_done": trainer.fit_loop.epoch_loop.batch_progress.current.processed,
            "train_time": self.train_time(),
            "rng": {
                # plain Python types: Lightning reloads checkpoints with torch.load(weights_only=True)
                "python": random.getstate(), "numpy": _plain(np.random.get_state()), "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        state = checkpoint.get("archbench_resume")
        self.resumed_from_step = int(checkpoint.get("global_step", 0))
        if not state:
            return
        epoch, done = state["epoch"], state["batches_done"]
        if done >= len(self.sampler) // self.batch_size:  # saved at an epoch's end (train drops the last partial batch)
            epoch, done = epoch + 1, 0
        self.sampler.resume(epoch, done * self.batch_size)
        self.previous_train_time = state["train_time"]
        self._rng = state["rng"]


def _plain(state):
    return [x.tolist() if isinstance(x, np.ndarray) else x for x in state]
