"""archbench.training.cluster without a cluster: resources from config, Lightning plugins, resume."""

import os
import time

import pytest
from lightning.fabric.plugins.environments import SLURMEnvironment

from archbench.config import schema_defaults
from archbench.training import cluster

TRAINING = schema_defaults()["training"]  # the functions take a validated section: every key present


@pytest.mark.parametrize(
    "training, expected",
    [
        ({"accelerator": "cpu", "devices": 2}, {"gpu": 0}),
        ({"accelerator": "gpu", "devices": 4}, {"gpu": 4}),
        ({"accelerator": "auto", "devices": "auto"}, {"gpu": 0}),
        (
            {"accelerator": "gpu", "devices": 4, "num_nodes": 2},
            {"mpi": "srun", "nodes": 2, "tasks_per_node": 4, "gres": "gpu:4", "tasks_per_gpu": 1},
        ),
        (
            {"accelerator": "gpu", "devices": 1, "num_nodes": 3},  # the plugin rejects tasks_per_node: 1
            {"mpi": "srun", "nodes": 3, "tasks": 3, "gres": "gpu:1", "tasks_per_gpu": 1},
        ),
    ],
)
def test_train_resources_follow_config(training, expected):
    assert cluster.train_resources({**TRAINING, **training}) == expected


def test_srun_flags_start_one_task_per_device():
    assert cluster.srun_flags({**TRAINING, "devices": 4, "num_nodes": 2}) == "--nodes=2 --ntasks-per-node=4"


def test_plugins_outside_slurm_are_lightnings_default(monkeypatch):
    for var in [v for v in os.environ if v.startswith("SLURM_")]:
        monkeypatch.delenv(var)
    assert cluster.trainer_plugins({**TRAINING, "devices": 2, "num_nodes": 1}) == []


def _job_step(monkeypatch, ntasks):  # the environment srun gives a task
    monkeypatch.setenv("SLURM_NTASKS", str(ntasks))
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", str(ntasks))
    monkeypatch.setenv("SLURM_JOB_NAME", "0f3c-run-uuid")
    monkeypatch.setenv("SLURM_JOB_ID", "42")


def test_plugin_job_step_with_several_devices_spawns_and_keeps_requeue(monkeypatch):
    _job_step(monkeypatch, 1)
    [env] = cluster.trainer_plugins({**TRAINING, "devices": 2, "num_nodes": 1})
    assert isinstance(env, SLURMEnvironment) and env.auto_requeue and env.requeue_signal == cluster.REQUEUE_SIGNAL
    assert not env.creates_processes_externally  # Lightning launches the second process
    env.set_world_size(2)
    assert env.world_size() == 2


def test_one_device_or_srun_ranks_use_slurms_topology(monkeypatch):
    _job_step(monkeypatch, 1)
    [env] = cluster.trainer_plugins({**TRAINING, "devices": 1, "num_nodes": 1})
    assert type(env) is SLURMEnvironment and env.creates_processes_externally
    _job_step(monkeypatch, 8)
    [env] = cluster.trainer_plugins({**TRAINING, "devices": 4, "num_nodes": 2})
    assert type(env) is SLURMEnvironment and env.world_size() == 8


def test_resume_checkpoint_takes_the_newest_of_last_and_hpc(tmp_path):
    import torch

    assert cluster.resume_checkpoint(str(tmp_path)) is None
    torch.save({"global_step": 1}, tmp_path / "last.ckpt")
    assert cluster.resume_checkpoint(str(tmp_path)) == str(tmp_path / "last.ckpt")
    hpc = tmp_path / "hpc_ckpt_1.ckpt"
    torch.save({"global_step": 2}, hpc)
    os.utime(hpc, (time.time() + 5, time.time() + 5))
    assert cluster.resume_checkpoint(str(tmp_path)) == str(hpc)


def test_several_processes_get_ddp_with_the_process_group_timeout():
    from datetime import timedelta

    from lightning.pytorch.strategies import DDPStrategy

    assert cluster.trainer_strategy({**TRAINING, "devices": 1, "num_nodes": 1}) == "auto"
    for layout in ({"devices": 1, "num_nodes": 2}, {"devices": 2, "num_nodes": 1}):
        strategy = cluster.trainer_strategy({**TRAINING, **layout, "dist_timeout_s": 42})
        assert type(strategy) is DDPStrategy and strategy._timeout == timedelta(seconds=42)
    assert cluster.trainer_strategy({**TRAINING, "devices": 2})._timeout == timedelta(seconds=1800)  # the schema's


def test_srun_reports_of_dead_tasks_are_passed_on_and_named(tmp_path, capsys):
    script = "echo 'rank output' >&2; echo 'srun: error: ab-node2: task 1: Killed' >&2; exit 137"
    rc, dead = cluster.run_srun(["sh", "-c", script])
    assert rc == 137 and dead == [{"node": "ab-node2", "tasks": "1", "cause": "Killed"}]
    assert capsys.readouterr().err == "rank output\nsrun: error: ab-node2: task 1: Killed\n"
