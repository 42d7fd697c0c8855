"""Training: the LightningModule (`module`), one run end to end (`run`), carbon tracking (`emissions`)."""

from archbench.training.run import train_run

__all__ = ["train_run"]
