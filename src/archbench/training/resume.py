"""Exact resume after a kill, and only of the same run.

Data position, RNG state and accumulated train time travel in the Lightning checkpoint (Lightning
itself restores weights, optimizer, scheduler and step counters). Checkpoints are written atomically,
so a full disk or a kill mid-write keeps the previous one; the one before the newest `last.ckpt` is
kept as `last.prev.ckpt`, so a corrupt newest one (a node crash) falls back to it.

A run's identity is the hash of its settings (those that change what is trained: not the device
layout, exact resume works at any world size, nor logging / checkpoint cadence), the tokenizer's
sha256 and the token data's fingerprint. The scratch folder records it (`run.json`, with the
settings, so that a change can be named key by key) and every checkpoint carries it. A rerun whose
identity differs never continues the old state: the old scratch folder is moved aside to
`<scratch>.previous` (replacing an older one) with one warning naming what changed, and training
starts from step 0. Checkpoints are loaded with `weights_only=True`: a scratch folder others can
write to must not be a way to run code.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from archbench.data.loader import GlobalOrderSampler
from archbench.io import atomic_file, write_json
from archbench.provenance import data_fingerprint, settings_hash, tokenizer_sha256

log = logging.getLogger(__name__)

# Settings that do not change what is trained: a run continues across them.
LAYOUT_KEYS = frozenset(
    {
        "devices",
        "num_nodes",
        "dist_timeout_s",
        "num_workers",
        "checkpoint_every_n_steps",
        "checkpoint_every_minutes",
        "log_every_n_steps",
        "loggers",  # adding a tracker records the same training elsewhere too
        "gradient_checkpointing",  # recomputes activations: the same gradients
    }
)
RUN_RECORD = "run.json"
PREVIOUS_SUFFIX = ".previous"  # where a different run's scratch folder is moved
REJECTED_SUFFIX = ".rejected"  # an unreadable checkpoint is renamed to this, so it is never picked again
LAST, PREVIOUS_LAST = "last.ckpt", "last.prev.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's local writer truncates `last.ckpt` in place: on a full disk the only resumable state
    is left corrupt (measured). Ours writes a temporary and renames it, with umask permissions, keeps
    the previous `last.ckpt` as `last.prev.ckpt`, and loads with `weights_only=True` whatever the caller
    asks (Lightning 2.6 passes None, which leaves the choice to torch's default and its env variables)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        previous = os.path.join(os.path.dirname(path), PREVIOUS_LAST) if os.path.basename(path) == LAST else None
        with atomic_file(path, keep_previous=previous) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(path, map_location=map_location or (lambda storage, loc: storage), weights_only=True)


def run_identity(settings: dict, tokenizer_dir: str, tokens: dict) -> dict:
    """What makes two trainings the same run (see the module docstring)."""
    return {
        "settings_hash": settings_hash(resume_settings(settings)),
        "tokenizer_sha256": tokenizer_sha256(tokenizer_dir),
        "data_fingerprint": data_fingerprint(*(tokens[s] for s in sorted(tokens))),
    }


def resume_settings(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in LAYOUT_KEYS}


def changes(old: dict | None, identity: dict, settings: dict) -> list[str]:
    """What differs from the run recorded in a scratch folder, one phrase each."""
    if old is None:
        return ["no run record (state of an unknown or older run)"]
    before, now = old.get("settings", {}), json.loads(json.dumps(resume_settings(settings), default=str))
    keys = sorted(k for k in set(before) | set(now) if before.get(k, "<unset>") != now.get(k, "<unset>"))
    out = [f"{k} {before.get(k, '<unset>')!r} -> {now.get(k, '<unset>')!r}" for k in keys]
    if not keys and old["identity"]["settings_hash"] != identity["settings_hash"]:
        out.append("settings")
    if old["identity"]["tokenizer_sha256"] != identity["tokenizer_sha256"]:
        out.append("tokenizer (tokenizer.json sha256)")
    if old["identity"]["data_fingerprint"] != identity["data_fingerprint"]:
        out.append("token data (index fingerprint)")
    return out


def _read_record(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        return record if isinstance(record.get("identity"), dict) else None
    except (OSError, ValueError, AttributeError):
        return None


def _first_process() -> bool:
    """Rank 0 before any trainer exists: Lightning's children and srun's tasks say who they are."""
    return all(os.environ.get(k, "0") == "0" for k in ("LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def claim_scratch(scratch_dir: str, identity: dict, settings: dict, wait_s: float = 60.0) -> str | None:
    """Make `scratch_dir` hold only this run's state. Returns where a different run's state was moved
    (None if there was none). The first process decides; the others wait until the record is theirs."""
    record_path = os.path.join(scratch_dir, RUN_RECORD)
    if not _first_process():
        deadline = time.time() + wait_s
        while (_read_record(record_path) or {}).get("identity") != identity and time.time() < deadline:
            time.sleep(0.2)
        return None
    old = _read_record(record_path)
    aside = None
    if os.path.isdir(scratch_dir) and any(os.scandir(scratch_dir)) and (old is None or old["identity"] != identity):
        aside = scratch_dir.rstrip("/") + PREVIOUS_SUFFIX
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(scratch_dir, aside)
        log.warning(
            "not resuming %s: %s changed since its checkpoints were written; training starts from step 0 "
            "(the old state is in %s)",
            scratch_dir,
            "; ".join(changes(old, identity, settings)),
            aside,
        )
    if old is None or aside is not None:
        record = {"identity": identity, "settings": resume_settings(settings)}
        write_json(json.loads(json.dumps(record, default=str)), record_path)
    return aside


def resume_checkpoint(scratch_dir: str, identity: dict | None = None) -> str | None:
    """The newest usable resumable state in `scratch_dir`: `hpc_ckpt_N.ckpt` (Slurm requeue),
    `last.ckpt` or `last.prev.ckpt`, newest first. One that cannot be read (truncated, or holding
    pickled objects that a weights-only load refuses) is renamed `*.rejected` with a warning naming
    it, and the next is tried; one of another run (its recorded identity differs) is skipped."""
    names = [n for n in _listdir(scratch_dir) if n in (LAST, PREVIOUS_LAST) or _is_hpc(n)]
    paths = sorted(  # newest first; on a tie (coarse timestamps) last.ckpt before last.prev.ckpt
        (os.path.join(scratch_dir, n) for n in names),
        key=lambda p: (os.path.getmtime(p), not p.endswith(PREVIOUS_LAST)),
        reverse=True,
    )
    for path in paths:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            state = ckpt.get("archbench_resume") or {}
        except Exception as err:  # noqa: BLE001 - any failure to read means: not resumable
            if not _first_process():  # the other ranks see the same files: one renames
                continue
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            os.replace(path, path + REJECTED_SUFFIX)
            log.warning("checkpoint %s cannot be resumed (%s); renamed to %s%s", path, reason, path, REJECTED_SUFFIX)
            continue
        if identity is not None and state.get("identity") != identity:
            log.warning("checkpoint %s belongs to another run (its settings, tokenizer or data differ): skipped", path)
            continue
        return path
    return None


def _listdir(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def _is_hpc(name: str) -> bool:
    return name.startswith("hpc_ckpt_") and name.endswith(".ckpt") and name[9:-5].isdigit()


class ResumeState(L.Callback):
    """Saves how far the current epoch got (global samples, so any world size can resume it), the
    world size and the RNG states; restores them before training goes on.

    The data position is taken from the trainer's own progress counter, not from the loader: the
    loader has already prefetched the next batch when a checkpoint is written. Only rank 0 writes the
    checkpoint; the counter and the global position are the same on every rank.
    """

    def __init__(self, sampler: GlobalOrderSampler, identity: dict | None = None):
        self.sampler = sampler
        self.identity = identity  # recorded in every checkpoint: a resume checks it (resume_checkpoint)
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
            "identity": self.identity,
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
