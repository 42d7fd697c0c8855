"""Data-parallel training (Lightning DDP over gloo, 2 CPU processes: the multi-GPU code path).

Killed after its first checkpoint and resumed, a 2-process run ends where an uninterrupted one does;
resumed on 1 process it continues the same global order (no window twice, none skipped); a rank that
raises has its exception in the log. Each run is a separate `python tests/ddp_driver.py` process,
because Lightning starts the second rank by re-running the command that started the first.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archbench.data.loader import GlobalOrderSampler, TokenWindows

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]  # ~1.5 min per training process on the shared 2-core machine

DRIVER = Path(__file__).with_name("ddp_driver.py")
SEQ, BATCH = 32, 4  # test_training.settings(); checkpoints every 4 steps, 12 steps in all


def train(tmp_path, tiny_tokens, name, devices=2, expect_rc=0, **job):
    job = {
        "tokens": tiny_tokens["tokens"],
        "tokenizer": tiny_tokens["tokenizer"],
        "run_dir": str(tmp_path / name / "run"),
        "scratch_dir": str(tmp_path / name / "scratch"),
        "log": str(tmp_path / f"{name}.log"),
        "record": str(tmp_path / f"{name}.rec"),
        "settings": {"accelerator": "cpu", "devices": devices},
        **job,
    }
    (tmp_path / f"{name}.json").write_text(json.dumps(job))
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(tmp_path / f"{name}.json")], capture_output=True, text=True, timeout=600
    )
    log = Path(job["log"]).read_text()
    assert proc.returncode == expect_rc, log[-4000:] + proc.stderr[-2000:]
    return log


def batches(tmp_path, name, windows):
    """{(step, rank): [window index, ...]} of every batch a run trained on."""
    out = {}
    for rec in sorted(tmp_path.glob(f"{name}.rec.rank*")):
        rank = int(rec.name.rsplit("rank", 1)[1])
        for line in rec.read_text().splitlines():
            entry = json.loads(line)
            out[(entry["step"], rank)] = [windows[tuple(row)] for row in entry["rows"]]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_tokens):
    """Reference (2 processes, 12 steps); killed at step 6 (checkpoint at step 4) and resumed on 2 and on 1."""
    tmp = tmp_path_factory.mktemp("ddp")
    train(tmp, tiny_tokens, "ref")
    train(tmp, tiny_tokens, "killed", exit_at_step=6, expect_rc=137)
    for target in ("same", "fewer"):
        shutil.copytree(tmp / "killed", tmp / target)
    train(tmp, tiny_tokens, "same", record=str(tmp / "same.rec"))
    train(tmp, tiny_tokens, "fewer", devices=1, record=str(tmp / "fewer.rec"))
    dataset = TokenWindows(tiny_tokens["tokens"]["train"], SEQ)
    windows = {tuple(dataset[i].tolist()): i for i in range(len(dataset))}
    assert len(windows) == len(dataset)  # every window is recognisable by its tokens
    order = GlobalOrderSampler(len(dataset), True, 0, BATCH, True).order(0)
    metrics = {n: json.loads((tmp / n / "run" / "metrics.json").read_text()) for n in ("ref", "same", "fewer")}
    recs = {n: batches(tmp, n, windows) for n in ("ref", "killed", "same", "fewer")}
    return {"metrics": metrics, "batches": recs, "order": order}


def test_reference_deals_each_global_batch_over_the_ranks(runs):
    ref, order = runs["batches"]["ref"], runs["order"]
    assert sorted(ref) == [(step, rank) for step in range(1, 13) for rank in (0, 1)]
    for step in range(1, 13):  # global batch = the next 8 windows of the epoch's order, rank r takes [r::2]
        block = order[(step - 1) * 8 : step * 8]
        assert ref[(step, 0)] == block[0::2] and ref[(step, 1)] == block[1::2]
    assert runs["metrics"]["ref"]["world_sizes"] == [2] and runs["metrics"]["ref"]["resumed_from_step"] == 0


def test_resumed_on_two_processes_matches_the_uninterrupted_run(runs):
    ref, killed, same = (runs["batches"][n] for n in ("ref", "killed", "same"))
    assert {k: v for k, v in killed.items() if k[0] <= 4} == {k: v for k, v in ref.items() if k[0] <= 4}
    assert same == {k: v for k, v in ref.items() if k[0] > 4}  # steps 5..12, the same windows on the same rank
    a, b = runs["metrics"]["ref"], runs["metrics"]["same"]
    assert b["resumed_from_step"] == 4 and b["global_step"] == a["global_step"] == 12
    assert b["world_sizes"] == [2, 2] and b["world_size"] == 2
    assert b["val_loss"] == pytest.approx(a["val_loss"], abs=1e-5)
    assert b["test_loss"] == pytest.approx(a["test_loss"], abs=1e-5)


def test_resumed_on_one_process_continues_the_global_order(runs):
    killed, fewer, order = runs["batches"]["killed"], runs["batches"]["fewer"], runs["order"]
    before = [i for step in range(1, 5) for rank in (0, 1) for i in killed[(step, rank)]]  # saved in the checkpoint
    after = [i for step in range(5, 13) for i in fewer[(step, 0)]]
    assert sorted(fewer) == [(step, 0) for step in range(5, 13)]
    assert sorted(before) == sorted(order[:32])
    assert after == order[32:64]  # the next 32 windows of the same order: none repeated, none skipped
    assert not set(before) & set(after)
    m = runs["metrics"]["fewer"]
    assert m["resumed_from_step"] == 4 and m["global_step"] == 12 and m["world_sizes"] == [2, 1]


def test_a_failing_rank_shows_its_exception_in_the_log(tmp_path, tiny_tokens):
    log = train(tmp_path, tiny_tokens, "fail", fail={"rank": 1, "step": 2}, expect_rc=1)
    block = log[log.index("===== rank 1 of 2 failed =====") :]
    block = block[: block.index("===== end of rank 1 =====")]
    assert "Traceback (most recent call last)" in block and "ValueError: boom from rank 1 at step 2" in block
    # the rule's log ends with the first failing rank's exception, not rank 0's consequence
    last = [line for line in log.splitlines() if line.strip()][-1].removeprefix("[rank0]: ")  # torch's label
    assert last.startswith(
        "archbench.training.failures.RankFailure: rank 1 of 2 failed first: ValueError: boom from rank 1 at step 2"
    ), log[-3000:]
