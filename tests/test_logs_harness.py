"""A real lm-eval run (archbench.evaluation.harness on a tiny model) logs without progress bars or
git chatter when its stderr is a job log (issue 34)."""

import logging
import re
import warnings

import pytest

from archbench import logs

pytestmark = pytest.mark.slow  # lm-eval's import and a tiny model: about 30 s on 2 busy cores


@pytest.fixture
def job_log(capfd):
    """configure() a job's logging onto the captured stderr; the handler is removed afterwards."""
    with warnings.catch_warnings():
        logs.configure(logs.job_name("train", {"arch": "retnet", "learning_rate": 0.003, "seed": 0}))
        yield lambda: capfd.readouterr().err
    logging.captureWarnings(False)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, logs._StderrHandler)]


def test_a_real_harness_job_log_has_no_progress_bars_or_git_chatter(job_log, tmp_path, monkeypatch):
    from archbench.evaluation.harness import run_harness
    from archbench.evaluation.tasks import TASKS, build_tasks
    from test_eval_fixtures import tiny_model_dir, tiny_split

    build_tasks(str(tiny_split(tmp_path / "split")), str(tmp_path / "tasks"), context_words=24, choice_words=8)
    model = tiny_model_dir(tmp_path, "transformer")
    job_log()  # the set-up's output is not the job's
    monkeypatch.chdir(tmp_path)  # not a git repository: lm-eval's `git describe` fails here
    run_harness(str(model), None, list(TASKS), task_dirs=[str(tmp_path / "tasks")], limit=4, device="cpu")
    text = job_log()
    assert (
        "lm-eval: tasks archbench_ppl, archbench_cloze, archbench_lastword, limit 4" in text
        and "lm-eval: done in " in text
    )
    assert not re.search(r"\d+%\|| it/s\]|\d+/\d+ \[\d", text), text  # tqdm's bar, rate and counter
    assert "fatal:" not in text and "\r" not in text
