"""Every rank's failure reaches the log whole, and the log ends with the FIRST failure.

With several processes (DDP), one failing rank makes the others fail too, with secondary errors
("Connection closed by peer"), and Lightning's clean-up may kill a rank before it printed anything.
So a failing rank writes its complete traceback, labelled with its rank, in ONE write (whole even
when every rank shares the rule's log) from Lightning's `on_exception` hook, i.e. before Lightning
tears the process group down, and records it in `scratch_dir/errors/rank{N}.json`. Rank 0, whose
exit ends the job, waits briefly for the others' records and re-raises the earliest as `RankFailure`.

Lightning's launcher SIGKILLs rank 0 as soon as it sees a child rank exit non-zero (its process
observer), before rank 0 could say anything. So a failing child rank closes its connections (rank 0's
collective then fails at once) and stays alive until rank 0 has exited (at most `CHILD_WAIT_S`),
then exits without printing its traceback a second time.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback

import lightning as L

from archbench.causes import last_error_line, print_causes  # noqa: F401 - their home (torch-free, for onerror)
from archbench.io import write_json


class RankFailure(RuntimeError):
    """Another rank failed first; its exception is in the message, its traceback in the log."""


CHILD_WAIT_S = 30.0


class RankFailures(L.Callback):
    def __init__(self, scratch_dir: str):
        self.errors = os.path.join(scratch_dir, "errors")
        self.reported = False
        self._parent = os.getppid()

    def setup(self, trainer, pl_module, stage):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path(trainer.global_rank))  # from an earlier attempt

    def path(self, rank: int) -> str:
        return os.path.join(self.errors, f"rank{rank}.json")

    def on_exception(self, trainer, pl_module, exception):
        self.report(trainer, exception)
        if trainer.world_size > 1 and trainer.global_rank != 0:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()  # rank 0, blocked in a collective, fails now

    def report(self, trainer, err: BaseException) -> None:
        """This rank's first failure, whole and labelled, to the log and to its record."""
        rank, world = trainer.global_rank, trainer.world_size
        if world == 1 or self.reported:
            return
        self.reported = True
        text = "".join(traceback.format_exception(err))
        sys.stderr.write(f"\n===== rank {rank} of {world} failed =====\n{text}===== end of rank {rank} =====\n")
        sys.stderr.flush()
        write_json(
            {
                "rank": rank,
                "time": time.time(),
                "traceback": text,
                "error": traceback.format_exception_only(err)[-1].strip(),
            },
            self.path(rank),
        )

    @contextlib.contextmanager
    def first_failure(self, trainer, wait_s: float = 10.0):
        """Around the work of all ranks: rank 0 re-raises the failure of the rank that failed first."""
        try:
            yield
        except Exception as err:
            if trainer.world_size == 1:
                raise
            self.report(trainer, err)  # failures outside Lightning's hooks
            if trainer.global_rank != 0:
                deadline = time.time() + CHILD_WAIT_S
                while os.getppid() == self._parent and time.time() < deadline:
                    time.sleep(0.2)  # until rank 0 (our parent, if Lightning started us) has exited
                sys.stderr.flush()
                os._exit(1)  # quietly: our traceback is in the log already, the log ends with rank 0's
            first = self._first(trainer.world_size, wait_s)
            if first and first["rank"] != 0:
                raise RankFailure(
                    f"rank {first['rank']} of {trainer.world_size} failed first: {first['error']} "
                    f"(its traceback is above; rank 0 then failed with {type(err).__name__})"
                ) from err
            raise

    def _first(self, world: int, wait_s: float) -> dict | None:
        """The earliest failure record, waiting up to `wait_s` for every rank's."""
        deadline = time.time() + wait_s
        while True:
            records = []
            for rank in range(world):
                with contextlib.suppress(OSError, ValueError):
                    with open(self.path(rank), encoding="utf-8") as fh:
                        records.append(json.load(fh))
            if len(records) == world or time.time() >= deadline:
                return min(records, key=lambda rec: rec["time"]) if records else None
            time.sleep(0.2)
