"""Training under Slurm: what a train job asks for, how Lightning finds its processes, how it resumes.

snakemake-executor-plugin-slurm runs a job as `sbatch` → `srun -n1 ... snakemake` (one task), so
Lightning's auto-detected SLURMEnvironment reports world size 1 and ignores `devices > 1`. Hence:

- one node, one device:   SLURMEnvironment (world size 1 is right) — it brings auto-requeue;
- one node, N devices:    Lightning's own launcher spawns the N processes (LightningEnvironment
                          topology), still a SLURMEnvironment so that auto-requeue stays on;
- several nodes:          the job (plugin resource `mpi`: run in the batch script) starts `srun
                          --nodes=.. --ntasks-per-node=..`, one process per device, each running
                          `python -m archbench.training.cluster ARGS`; SLURMEnvironment reads the ranks.

The one `rule train` calls `run_train_job(train_args(...), log)` for both; `train_args` is the one
place that turns a job (wildcards, inputs, outputs, params) into `train_run`'s arguments.

Requeue signal: Slurm's `--signal=SIG@secs` reaches EVERY process of the job step, Snakemake's too,
and SIGUSR1 (Lightning's default) kills a Python process without a handler — the job step dies before
the checkpoint is written. SIGURG is ignored by default by everything but our handler, so the profile
asks for `--signal=URG@<secs>`; Lightning then writes `hpc_ckpt_N.ckpt` into the scratch directory and
calls `scontrol requeue`, and the requeued job resumes from the newest checkpoint (`resume_checkpoint`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

REQUEUE_SIGNAL = signal.SIGURG
# srun's line for a task that ended badly, e.g. "srun: error: ab-node2: task 1: Killed"
SRUN_TASK_ERROR = re.compile(r"srun: error: (?P<node>\S+): tasks? (?P<tasks>[0-9,-]+): (?P<cause>.+)")


# Every function here takes the validated `training` section (or a run's settings): its defaults are the
# schema's, filled at parse time, and not repeated here.
def _devices(training: dict) -> int:
    devices = training["devices"]
    return devices if isinstance(devices, int) and devices > 0 else 1  # "auto" / lists: one per job


def gpus_per_node(training: dict) -> int:
    return _devices(training) if training.get("accelerator") in ("gpu", "cuda") else 0


def is_multinode(training: dict) -> bool:
    return int(training["num_nodes"]) > 1


def train_resources(training: dict) -> dict:
    """Resources of one train job that follow from config (the profile adds runtime, mem_mb, CPUs).

    Several nodes: `mpi` makes the plugin run the job's command in the batch script, where the
    rule's `srun` starts one task per device. The plugin rejects `tasks_per_node: 1`, so one device
    per node is written as `tasks: nodes`; `tasks_per_gpu: 1` keeps the plugin from turning `tasks`
    into `--ntasks-per-gpu`. GPUs per node go through `gres` (`--gpus` would count the whole job).
    """
    gpus, nodes, devices = gpus_per_node(training), int(training["num_nodes"]), _devices(training)
    if nodes == 1:
        return {"gpu": gpus}
    res = {"mpi": "srun", "nodes": nodes}
    if devices > 1:
        res["tasks_per_node"] = devices
    else:
        res["tasks"] = nodes
    if gpus:
        res.update(gres=f"gpu:{gpus}", tasks_per_gpu=1)
    return res


def srun_flags(training: dict) -> str:
    """Task layout of the multi-node `srun`: one task (one Lightning rank) per device."""
    return f"--nodes={int(training['num_nodes'])} --ntasks-per-node={_devices(training)}"


def dist_timeout_s(settings: dict) -> int:
    return int(settings["dist_timeout_s"])


def trainer_strategy(settings: dict):
    """ "auto" for one process; with several (devices x num_nodes > 1), Lightning's DDP with the process
    group timeout `training.dist_timeout_s`: a rank that never arrives ends the run after that long."""
    if _devices(settings) * int(settings["num_nodes"]) == 1:
        return "auto"
    import datetime

    from lightning.pytorch.strategies import DDPStrategy

    return DDPStrategy(timeout=datetime.timedelta(seconds=dist_timeout_s(settings)))


def trainer_plugins(settings: dict) -> list:
    """Lightning cluster-environment plugins for this process ([] outside Slurm: Lightning's default)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if not SLURMEnvironment.detect():
        return []
    if int(settings["num_nodes"]) == 1 and int(os.environ.get("SLURM_NTASKS", "1")) == 1 and _devices(settings) > 1:
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


def resume_checkpoint(scratch_dir: str, identity: dict | None = None) -> str | None:
    """The newest usable resumable state in `scratch_dir`: the periodic `last.ckpt` (or the one before
    it), or the `hpc_ckpt_N.ckpt` Lightning writes on the requeue signal, whichever was written last
    and loads; with `identity`, only a checkpoint of that run (see training/resume.py)."""
    from archbench.training.resume import resume_checkpoint as usable

    return usable(scratch_dir, identity)


def train_args(wildcards, input, output, threads, params) -> dict:
    """`train_run`'s keyword arguments for one train job (the only place they are assembled)."""
    return {
        "arch": wildcards.arch,
        "seed": int(wildcards.seed),
        "settings": params.settings,
        "tokens": {s: input[s] for s in ("train", "validation", "test")},
        "tokenizer_dir": os.path.dirname(input.tokenizer),
        "run_dir": os.path.dirname(output.metrics),
        "scratch_dir": params.scratch,
        "emissions": params.emissions,
        "threads": threads,
    }


def launch_command(args: dict) -> list[str]:
    """Several nodes: `srun` starting one rank per device, each running this module's `main`."""
    return [
        "srun",
        *srun_flags(args["settings"]).split(),
        sys.executable,
        "-m",
        "archbench.training.cluster",
        json.dumps(args),
    ]


def stderr_to(log_path: str) -> None:
    """Point this process' stderr (file descriptor 2, so the processes it starts inherit it) at the
    rule's log, in append mode: every rank writes at the end, none overwrites another's lines. Ranks
    that Lightning starts re-run the job's script: only the first process empties the log."""
    child_rank = os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"
    if not child_rank:
        open(log_path, "w").close()
    fh = open(log_path, "a", buffering=1)
    os.dup2(fh.fileno(), 2)
    sys.stderr = fh


def run_train_job(args: dict, log_path: str, on_start=None) -> None:
    """The train rule's job: train in this process (Lightning starts the other local ranks), or on
    several nodes through `srun`, all ranks writing to the rule's log. ``on_start()`` runs once the log
    is in place (the job's ``start: inputs ...`` line)."""
    stderr_to(log_path)
    if on_start is not None and os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
        on_start()
    if not is_multinode(args["settings"]):
        from archbench.training import train_run

        train_run(**args)
        return
    rc, dead = run_srun(launch_command(args))
    if rc:
        causes = "; ".join(f"rank {m['tasks']} on {m['node']}: {m['cause']}" for m in dead) or "no task error reported"
        sys.exit(f"srun exited with status {rc} ({causes}); each failing rank's traceback is above in {log_path}")


def run_srun(command: list[str]) -> tuple[int, list[dict]]:
    """Run `srun`, its output passed on to our stderr (the rule's log) line by line; its status and
    srun's reports of tasks that ended badly (a SIGKILLed rank prints nothing itself: this is its cause)."""
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace")
    dead = []
    for line in proc.stderr:
        sys.stderr.write(line)
        if m := SRUN_TASK_ERROR.search(line):
            dead.append(m.groupdict())
    return proc.wait(), dead


def main(argv: list[str] | None = None) -> None:
    """`python -m archbench.training.cluster ARGS_JSON`: one rank of a multi-node run (under srun)."""
    from archbench.training import train_run

    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        sys.exit("usage: python -m archbench.training.cluster '<train_run keyword arguments as JSON>'")
    job = json.loads(args[0])
    try:
        train_run(**job)
    except Exception as err:
        if not is_rendezvous_timeout(err):
            raise
        rank, world = os.environ.get("SLURM_PROCID", "?"), os.environ.get("SLURM_NTASKS", "?")
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        sys.exit(
            f"rank {rank} of {world}: the other ranks did not join the process group at {where} within "
            f"training.dist_timeout_s = {dist_timeout_s(job['settings'])} s (a node that never came up, or "
            f"one that cannot reach {where}): {type(err).__name__}: {err}"
        )


def is_rendezvous_timeout(err: BaseException) -> bool:
    """A failure to form the process group in time (torch's store timeout), also as another's cause."""
    while err is not None:
        text = f"{type(err).__name__}: {err}"
        if "DistStoreError" in text or ("Timed out" in text and "clients joined" in text):
            return True
        err = err.__cause__ or err.__context__
    return False


if __name__ == "__main__":
    main()
