"""Runs `train_run` as the train rule's job does (stderr to a log, every rank appending), for the DDP tests.

`python tests/ddp_driver.py JOB.json`; Lightning re-runs this same command for every other local rank.
JOB: tokens, tokenizer, run_dir, scratch_dir, log, settings (overrides), and optionally
`record` (write every trained batch's rows, per rank), `exit_at_step` (every rank dies there, as a
killed job), `fail` ({"rank", "step"}: that rank raises ValueError there).
"""

import json
import os
import sys

import lightning as L

from archbench.training import cluster


class Probe(L.Callback):
    def __init__(self, job):
        self.job = job

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        fail = self.job.get("fail")
        if fail and trainer.global_rank == fail["rank"] and trainer.global_step == fail["step"]:
            raise ValueError(f"boom from rank {trainer.global_rank} at step {trainer.global_step}")
        if self.job.get("record"):
            with open(f"{self.job['record']}.rank{trainer.global_rank}", "a") as fh:
                fh.write(
                    json.dumps({"step": trainer.global_step + 1, "world": trainer.world_size, "rows": batch.tolist()})
                    + "\n"
                )

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.job.get("exit_at_step"):
            os._exit(137)  # as SIGKILL: no clean-up, no traceback


def main(path):
    job = json.loads(open(path).read())
    sys.path.insert(0, os.path.dirname(__file__))
    from test_training import settings

    cluster.stderr_to(job["log"])
    from archbench.training import train_run

    train_run(
        arch="retnet",
        seed=0,
        settings=settings(**job["settings"]),
        tokens=job["tokens"],
        tokenizer_dir=job["tokenizer"],
        run_dir=job["run_dir"],
        scratch_dir=job["scratch_dir"],
        emissions={"enabled": False},
        threads=1,
        callbacks=[Probe(job)],
    )


if __name__ == "__main__":
    main(sys.argv[1])
