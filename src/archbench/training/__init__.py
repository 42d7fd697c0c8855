"""Training: the LightningModule (`module`), one run end to end (`run`), exact resume (`resume`),
carbon tracking (`emissions`), Slurm/multi-GPU launch (`cluster`).

`train_run` is imported on first use: the rule files import `cluster` at parse time, which must not
pay for torch and Lightning.
"""


def __getattr__(name):
    if name == "train_run":
        from archbench.training.run import train_run

        return train_run
    raise AttributeError(f"module 'archbench.training' has no attribute {name!r}")


__all__ = ["train_run"]
