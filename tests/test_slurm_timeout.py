"""A node that never comes up: rank 0 of a two-node run (as `srun` starts it, `python -m
archbench.training.cluster ARGS`) whose partner never starts fails after `training.dist_timeout_s`,
with a message naming the setting and the address it waited on, instead of hanging. No cluster needed:
the environment is the one srun gives a task."""

import json
import socket
import subprocess
import sys
import time

import pytest

from test_training import settings

pytestmark = pytest.mark.faults  # one training process that waits out a 5 s timeout (~20 s)


def test_a_rank_whose_partner_never_arrives_fails_naming_the_timeout(tmp_path, tiny_tokens):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = {
        "arch": "retnet",
        "seed": 0,
        "settings": settings(accelerator="cpu", devices=1, num_nodes=2, dist_timeout_s=5),
        "tokens": tiny_tokens["tokens"],
        "tokenizer_dir": tiny_tokens["tokenizer"],
        "run_dir": str(tmp_path / "run"),
        "scratch_dir": str(tmp_path / "scratch"),
        "emissions": {"enabled": False},
        "threads": 1,
    }
    env = {
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        **{k: v for k, v in __import__("os").environ.items() if k in ("PYTHONPATH", "HOME")},
        # task 0 of 2 on the first of two nodes; task 1 never starts
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "SLURM_NODELIST": "ab-node[1-2]",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "archbench.training.cluster", json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    seconds = time.perf_counter() - start
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert last.startswith(
        f"rank 0 of 2: the other ranks did not join the process group at 127.0.0.1:{port} within "
        "training.dist_timeout_s = 5 s (a node that never came up"
    ), proc.stderr[-3000:]
    assert "1/2 clients joined" in last, last
    assert not (tmp_path / "run" / "metrics.json").exists()
    print(f"\nfailed after {seconds:.0f} s: {last}")
