"""Timing honesty (issues 29 / 34): load and CPU count in provenance, the noisy / under-load flag, the
per-run timing_flag in grid_results.csv, and training tokens/s from the training steps alone."""

import json
import os
import time

import pytest

from archbench.provenance import NOISY_SPREAD, machine_load, provenance_block, timing_flag, worst_flag
from archbench.report.collect import collect, run_record


def test_load_average_and_cpu_count_are_in_every_provenance_block():
    load = machine_load()
    assert len(load["load_avg"]) == 3 and all(x >= 0 for x in load["load_avg"])
    assert load["cpu_count"] == os.cpu_count()
    block = provenance_block(load={"load_avg": [3.0, 2.0, 1.0], "cpu_count": 2})
    assert block["load"] == {"load_avg": [3.0, 2.0, 1.0], "cpu_count": 2}
    assert set(provenance_block()["load"]) == {"load_avg", "cpu_count"}


@pytest.mark.parametrize(
    "load,threads,p10,p90,flag",
    [
        (2.3, 2, 1.0, 1.2, ""),  # the job's own two threads and a little noise
        (2.6, 2, 1.0, 1.2, "under load"),  # more than half a core busy besides the job
        (4.0, 2, 1.0, 25.0, "under load"),  # the cause named, not the symptom
        (0.5, 2, 21.0, 534.0, "noisy"),  # the default run's batch-64 decode spread (p10 21 ms, p90 534 ms)
        (0.5, 2, 1.0, NOISY_SPREAD, ""),  # at the threshold: clean
        (None, 2, None, None, ""),  # nothing known: no flag
    ],
)
def test_timing_flag(load, threads, p10, p90, flag):
    assert timing_flag(load, threads, p10, p90) == flag


def test_worst_flag_orders_under_load_before_noisy():
    assert worst_flag(["", "noisy", None, float("nan")]) == "noisy"
    assert worst_flag(["noisy", "under load", ""]) == "under load"
    assert worst_flag([]) == ""


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return str(path)


def test_timing_flag_reaches_grid_results_per_run(tmp_path):
    def metrics(lr, flag):
        return {"arch": "retnet", "seed": 0, "hparams": {"learning_rate": lr}, "val_loss": 3.0, "timing_flag": flag}

    entry = {"mode": "recurrent", "context": 64, "batch_size": 1, "decode_ms_median": 2.0}
    timed = _write(tmp_path / "timed/latency.json", {"entries": [{**entry, "timing_flag": "noisy"}]})
    runs = [
        # two learning rates of one shape: both report the one timing of the shape
        run_record("retnet", 0, "lr~1", {"learning_rate": 1}, metrics=_write(tmp_path / "a/metrics.json", metrics(1, "")), latency=timed),
        run_record("retnet", 0, "lr~2", {"learning_rate": 2}, metrics=_write(tmp_path / "b/metrics.json", metrics(2, "under load")), latency=timed),
    ]  # fmt: skip
    frame = collect(runs)
    assert list(frame["latency/timing_flag"]) == ["noisy", "noisy"]
    assert list(frame["train_timing_flag"]) == ["", "under load"]
    assert list(frame["timing_flag"]) == ["noisy", "under load"]
    assert list(frame["latency/recurrent/decode_ms_median@64"]) == [2.0, 2.0]


def test_step_timer_counts_training_batches_only():
    from archbench.training.timing import StepTimer

    timer = StepTimer()
    for seconds in (0.01, 0.02, 0.01):
        timer.on_train_batch_start(None, None, None, 0)
        time.sleep(seconds)
        timer.on_train_batch_end(None, None, None, None, 0)
        time.sleep(0.03)  # validation, a checkpoint write: between batches, not timed
    speed = timer.summary(tokens_per_batch=100)
    assert speed["timed_batches"] == 3
    assert 300 / 0.09 < speed["tokens_per_s"] <= 300 / 0.04  # 0.04 s of batches (+ scheduling), not 0.13 s
    assert speed["train_step_ms_p10"] <= speed["train_step_ms_median"] <= speed["train_step_ms_p90"]
