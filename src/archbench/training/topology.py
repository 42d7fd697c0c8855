"""How Lightning finds its processes: the strategy (DDP with the process group timeout when there are
several) and the Slurm cluster environment of one training process. `training.cluster` turns the same
settings into Slurm resources and launches the job; `training.run` builds its Trainer from these.

Requeue signal: SIGURG (see `training.cluster`): ignored by default by everything but Lightning's handler.
"""

from __future__ import annotations

import os
import signal

REQUEUE_SIGNAL = signal.SIGURG


# Every function here takes the validated `training` section (or a run's settings): its defaults are the
# schema's, filled at parse time, and not repeated here.
def devices_per_node(training: dict) -> int:
    devices = training["devices"]
    return devices if isinstance(devices, int) and devices > 0 else 1  # "auto" / lists: one per job


def dist_timeout_s(settings: dict) -> int:
    return int(settings["dist_timeout_s"])


def trainer_strategy(settings: dict):
    """ "auto" for one process; with several (devices x num_nodes > 1), Lightning's DDP with the process
    group timeout `training.dist_timeout_s`: a rank that never arrives ends the run after that long."""
    if devices_per_node(settings) * int(settings["num_nodes"]) == 1:
        return "auto"
    import datetime

    from lightning.pytorch.strategies import DDPStrategy

    return DDPStrategy(timeout=datetime.timedelta(seconds=dist_timeout_s(settings)))


def trainer_plugins(settings: dict) -> list:
    """Lightning cluster-environment plugins for this process ([] outside Slurm: Lightning's default)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if not SLURMEnvironment.detect():
        return []
    if (
        int(settings["num_nodes"]) == 1
        and int(os.environ.get("SLURM_NTASKS", "1")) == 1
        and devices_per_node(settings) > 1
    ):
        return [spawning_slurm_environment(auto_requeue=True, requeue_signal=REQUEUE_SIGNAL)]
    return [SLURMEnvironment(auto_requeue=True, requeue_signal=REQUEUE_SIGNAL)]


def _spawning_environment_class():
    from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment

    class SpawningSlurmEnvironment(SLURMEnvironment):
        """A SLURMEnvironment (so the signal connector wires auto-requeue) whose processes are
        launched by Lightning, with the topology of LightningEnvironment."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self._local = LightningEnvironment()

        @property
        def creates_processes_externally(self) -> bool:
            return self._local.creates_processes_externally

        @property
        def main_address(self) -> str:
            return self._local.main_address

        @property
        def main_port(self) -> int:
            return self._local.main_port

        def world_size(self) -> int:
            return self._local.world_size()

        def set_world_size(self, size: int) -> None:
            self._local.set_world_size(size)

        def global_rank(self) -> int:
            return self._local.global_rank()

        def set_global_rank(self, rank: int) -> None:
            self._local.set_global_rank(rank)

        def local_rank(self) -> int:
            return self._local.local_rank()

        def node_rank(self) -> int:
            return self._local.node_rank()

        def validate_settings(self, num_devices: int, num_nodes: int) -> None:
            pass  # SLURM_NTASKS is 1 by construction: the processes are ours, not srun's

    return SpawningSlurmEnvironment


def spawning_slurm_environment(**kwargs):
    """An instance of the class above (built on first use: importing Lightning is slow)."""
    return _spawning_environment_class()(**kwargs)
