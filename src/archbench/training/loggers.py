"""The Trainer's experiment trackers (``training.loggers``) and its progress display.

- ``tensorboard``, ``csv``: ``<run>/logs/{tensorboard,csv}/`` (the report reads the CSV).
- ``mlflow`` (extra ``mlflow``): a local file store ``<run>/logs/mlflow/`` unless ``MLFLOW_TRACKING_URI``
  names a server; experiment ``MLFLOW_EXPERIMENT_NAME`` or ``archbench``.
- ``wandb`` (extra ``wandb``): offline, into ``<run>/logs/wandb/``, unless ``WANDB_MODE=online``
  (then ``wandb sync`` is not needed); project ``WANDB_PROJECT`` or ``archbench``.

Where to send runs is the lab's, not the experiment's: it comes from the trackers' own environment
variables, so a config names only which trackers record. MLflow and W&B also get the run's full
settings (under ``run/``) as parameters.

When stderr is not a terminal (a job log), Lightning's progress bar is switched off (its carriage
returns would fill the log) and :class:`ProgressLog` logs one line every ``log_every_n_steps`` instead.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from archbench.errors import ConfigError
from archbench.logs import adopt, duration

log = logging.getLogger(__name__)
EXTRAS = {"mlflow": "mlflow", "wandb": "wandb"}  # tracker -> the pip extra that installs it


class ProgressLog(Logger):
    """Training progress as log lines (``step 40/300 (13%) train_loss=4.1234 ... | 2.10 steps/s, elapsed
    20 s, ETA 2 min 04 s``), at the Trainer's ``log_every_n_steps`` and at every validation."""

    def __init__(self, max_steps: int | None = None):
        super().__init__()
        self.max_steps = max_steps if max_steps and max_steps > 0 else None
        self._start = self._last_step = None
        self._created = time.perf_counter()

    @property
    def name(self) -> str:
        return "progress"

    @property
    def version(self) -> str:
        return "0"

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        now = time.perf_counter()
        if self._start is None:
            self._start, self._last_step = now, step or 0
        step = step or 0
        done = f"{step}/{self.max_steps} ({100 * step / self.max_steps:.0f}%)" if self.max_steps else str(step)
        values = " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if k != "epoch")
        rate = (step - self._last_step) / (now - self._start) if now > self._start and step > self._last_step else None
        when = f"elapsed {duration(now - self._created)}"
        if rate and self.max_steps:
            when += f", ETA {duration((self.max_steps - step) / rate)}"
        log.info("step %s %s | %s%s", done, values, f"{rate:.2f} steps/s, " if rate else "", when)


def _mlflow(run_dir: str, run_name: str):
    from lightning.pytorch.loggers import MLFlowLogger

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:  # the local store; MLflow 3 keeps it working but asks to opt in (a database needs a server)
        uri = "file:" + os.path.abspath(os.path.join(run_dir, "logs", "mlflow"))
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MLFlowLogger(
        experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME", "archbench"), run_name=run_name, tracking_uri=uri
    )


def _wandb(run_dir: str, run_name: str):
    from lightning.pytorch.loggers import WandbLogger

    save_dir = os.path.join(run_dir, "logs")
    os.makedirs(os.path.join(save_dir, "wandb"), exist_ok=True)
    online = os.environ.get("WANDB_MODE") == "online"
    return WandbLogger(
        project=os.environ.get("WANDB_PROJECT", "archbench"), name=run_name, save_dir=save_dir, offline=not online
    )


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def build_loggers(settings: dict, run_dir: str) -> list[Logger]:
    """The Lightning loggers ``training.loggers`` names (ConfigError for a tracker that is not installed,
    naming the extra to install)."""
    names = settings["loggers"]
    missing = [n for n in names if n in EXTRAS and not _installed(n)]
    if missing:
        extras = ",".join(EXTRAS[n] for n in missing)
        raise ConfigError(
            f"training.loggers names {', '.join(missing)}, which is not installed: "
            f'pip install -e ".[{extras}]" -c constraints.txt'
        )
    run_name = os.path.relpath(run_dir, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(run_dir)))))
    make = {
        "tensorboard": lambda: TensorBoardLogger(run_dir, name="logs", version="tensorboard"),
        "csv": lambda: CSVLogger(run_dir, name="logs", version="csv"),
        "mlflow": lambda: _mlflow(run_dir, run_name),
        "wandb": lambda: _wandb(run_dir, run_name),
    }
    loggers = [make[n]() for n in names]
    for logger in loggers:
        if not isinstance(logger, (TensorBoardLogger, CSVLogger)):
            logger.log_hyperparams({"run": {k: settings[k] for k in sorted(settings)}})
    return loggers


def trainer_logging(settings: dict, run_dir: str) -> dict:
    """The Trainer's ``logger`` and ``enable_progress_bar`` arguments: the trackers, and on a non-terminal
    stderr a :class:`ProgressLog` in place of the progress bar."""
    import codecarbon.external.logger  # noqa: F401  (installs its console handler: adopted below)

    adopt("lightning", "lightning.pytorch", "lightning.fabric", "codecarbon")
    loggers = build_loggers(settings, run_dir)
    terminal = sys.stderr.isatty()
    if not terminal:
        loggers.append(ProgressLog(settings.get("max_steps")))
    return {"logger": loggers, "enable_progress_bar": terminal}
