"""Quiet, readable job logs (issue 34): third-party noise filtered in one place (archbench.logs), named
job tags, elapsed time and ETA on progress lines. (A real lm-eval run's log: test_logs_harness.py.)"""

import logging
import re
import warnings

import pytest

from archbench import logs


@pytest.fixture
def job_log(capfd):
    """configure() a job's logging onto the captured stderr; the handler is removed afterwards."""
    with warnings.catch_warnings():
        logs.configure(logs.job_name("train", {"arch": "retnet", "learning_rate": 0.003, "seed": 0}))
        yield lambda: capfd.readouterr().err
    logging.captureWarnings(False)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, logs._StderrHandler)]


def test_listed_third_party_noise_is_dropped_and_the_rest_kept(job_log):
    warnings.warn(
        "`torch.jit.script_method` is deprecated. Please switch to `torch.compile`.", FutureWarning, stacklevel=1
    )
    warnings.warn("this checkpoint has no optimizer state", UserWarning, stacklevel=1)  # information: kept
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    rank_zero.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
    logging.getLogger("codecarbon").warning("Multiple instances of codecarbon are allowed to run at the same time.")
    seed = logging.getLogger("lightning.fabric.utilities.seed")
    seed.info("Seed set to 0")
    seed.info("Seed set to 0")
    seed.info("Seed set to 1")
    text = job_log()
    assert "torch.jit" not in text and "litlogger" not in text and "Multiple instances" not in text
    assert text.count("Seed set to 0") == 1 and text.count("Seed set to 1") == 1
    records = [line for line in text.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert len(records) == 3 and "UserWarning: this checkpoint has no optimizer state" in records[0]
    assert all(" train[arch=retnet learning_rate=0.003 seed=0] " in line for line in records)


def test_progress_lines_carry_elapsed_time_and_eta(job_log, monkeypatch):
    clock = iter([0.0, 30.0, 30.0, 60.0, 60.0, 90.0, 90.0, 90.0])  # start, then per item: now, line
    monkeypatch.setattr(logs.time, "perf_counter", lambda: next(clock))
    assert list(logs.progress(range(3), "tokenize train", total=3, unit="doc", every_s=10)) == [0, 1, 2]
    lines = [line.split("archbench: ", 1)[1] for line in job_log().splitlines()]
    assert lines == [
        "tokenize train: 1/3 doc (33%), 0.03333 doc/s, elapsed 30 s, ETA 1 min 00 s",
        "tokenize train: 2/3 doc (67%), 0.03333 doc/s, elapsed 1 min 00 s, ETA 30 s",
        "tokenize train: 3/3 doc (100%), 0.03333 doc/s, elapsed 1 min 30 s, ETA 0 s",
        "tokenize train: 3/3 doc (100%), 0.03333 doc/s, done in 90.0 s",
    ]
    assert logs.duration(7260) == "2 h 01 min" and logs.timing(0, None, 5) == "elapsed 5 s"
