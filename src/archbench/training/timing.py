"""What a run's counts and speed are measured on (issue 29).

- :class:`FinalValidation`: Lightning validates only at multiples of ``val_check_interval``, so a run
  of 73 steps validated every 50 exported step 50 while counting 73 steps of tokens. The callback asks
  the loop to stop after the last training step (``max_steps`` reached, or the last batch of the last
  epoch); Lightning then validates at that step (a stop request always validates) and the best-checkpoint
  callback sees it. A run whose last step is a multiple of the interval validates once, as before.
- :class:`StepTimer`: training throughput from the training steps alone (forward, backward, optimizer),
  not validation, checkpoint writes or carbon tracking, which ``trainer.fit``'s wall time included. The
  timer's hooks run before the checkpoint callbacks' (Lightning orders those last), so a periodic
  checkpoint written at a step is not counted in it.
"""

from __future__ import annotations

import statistics
import time

import lightning as L


def last_step(trainer) -> bool:
    """Whether the optimizer step just taken is the run's last (step budget or last epoch's last batch)."""
    if trainer.max_steps is not None and trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
        return True
    epochs = trainer.max_epochs
    return (
        epochs is not None
        and epochs > 0
        and trainer.current_epoch + 1 >= epochs
        and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
    )


class FinalValidation(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if last_step(trainer):
            trainer.should_stop = True  # every rank decides the same: no reduction needed


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (inclusive method, as the latency benchmark's p10 / p90)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


class StepTimer(L.Callback):
    """Seconds of every training batch of this session (batch start to batch end, the batch fetched)."""

    def __init__(self):
        self.seconds: list[float] = []
        self._t0 = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._t0 is not None:
            self.seconds.append(time.perf_counter() - self._t0)
            self._t0 = None

    def summary(self, tokens_per_batch: int) -> dict:
        """tokens/s over the timed batches, and the median / p10 / p90 batch time in ms (None when none ran)."""
        if not self.seconds:
            return {
                "tokens_per_s": None,
                "train_step_ms_median": None,
                "train_step_ms_p10": None,
                "train_step_ms_p90": None,
            }
        ms = [s * 1e3 for s in self.seconds]
        return {
            "tokens_per_s": len(ms) * tokens_per_batch / sum(self.seconds),
            "timed_batches": len(ms),
            "train_step_ms_median": statistics.median(ms),
            "train_step_ms_p10": quantile(ms, 0.1),
            "train_step_ms_p90": quantile(ms, 0.9),
        }
