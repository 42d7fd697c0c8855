"""lm-eval harness on tiny random models with the pipeline-made offline tasks."""

import json
import math
import random

import pytest
import yaml

from archbench.evaluation.common import EvalError
from archbench.evaluation.harness import run_harness
from archbench.evaluation.tasks import TASKS, build_tasks
from test_eval_fixtures import tiny_model_dir, tiny_split


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("harness")
    counts = build_tasks(str(tiny_split(root / "split")), str(root / "tasks"), context_words=24, choice_words=8)
    return root, counts


def test_task_files_are_offline_and_absolute(setup):
    root, counts = setup
    assert set(counts) == set(TASKS) and all(n > 0 for n in counts.values())
    for name in TASKS:
        cfg = yaml.safe_load((root / "tasks" / f"{name}.yaml").read_text())
        data = cfg["dataset_kwargs"]["data_files"]["test"]
        assert cfg["dataset_path"] == "json" and data.startswith("/") and data.endswith(f"{name}.jsonl")
    cloze = [json.loads(line) for line in (root / "tasks" / "archbench_cloze.jsonl").read_text().splitlines()]
    assert all(len(set(c["choices"])) == len(c["choices"]) >= 2 and 0 <= c["label"] < len(c["choices"]) for c in cloze)
    last = [json.loads(line) for line in (root / "tasks" / "archbench_lastword.jsonl").read_text().splitlines()]
    assert all(d["target"].lower() in d["context"].lower() for d in last)  # LAMBADA's criterion


def test_default_tasks_give_finite_scores_in_range(setup):
    root, _ = setup
    model = tiny_model_dir(root, "retnet")
    out = run_harness(
        str(model),
        str(root / "harness.json"),
        list(TASKS),
        task_dirs=[str(root / "tasks")],
        limit=4,
        batch_size=4,
        device="cpu",
        threads=1,
    )
    assert json.loads((root / "harness.json").read_text()) == out
    res = out["results"]
    ppl, cloze, last = res["archbench_ppl"], res["archbench_cloze"], res["archbench_lastword"]
    for value in (ppl["word_perplexity"], ppl["byte_perplexity"], ppl["bits_per_byte"], last["perplexity"]):
        assert math.isfinite(value) and value > 0
    assert ppl["byte_perplexity"] >= 1 and ppl["word_perplexity"] >= ppl["byte_perplexity"]
    assert ppl["bits_per_byte"] == pytest.approx(math.log2(ppl["byte_perplexity"]), rel=1e-6)
    for value in (cloze["acc"], cloze["acc_norm"], last["acc"]):
        assert 0.0 <= value <= 1.0
    assert out["config"]["arch"] == "retnet" and out["config"]["n_samples"]["archbench_cloze"] == 4
    assert out["config"]["max_length"] == 64


def test_include_path_task_is_picked_up(setup, tmp_path):
    root, _ = setup
    data = root / "tasks" / "archbench_ppl.jsonl"
    (tmp_path / "mine.yaml").write_text(
        yaml.safe_dump(
            {
                "task": "my_rolling_task",
                "dataset_path": "json",
                "dataset_kwargs": {"data_files": {"test": str(data)}},
                "test_split": "test",
                "output_type": "loglikelihood_rolling",
                "doc_to_text": "",
                "doc_to_target": "{{text}}",
                "metric_list": [{"metric": "bits_per_byte"}],
            }
        )
    )
    model = tiny_model_dir(root, "transformer")
    out = run_harness(
        str(model),
        None,
        ["my_rolling_task"],
        task_dirs=[str(root / "tasks")],
        include_path=str(tmp_path),
        limit=2,
        device="cpu",
        threads=1,
    )
    assert out["results"]["my_rolling_task"]["bits_per_byte"] > 0


def test_unknown_task_is_a_clear_error_before_loading_the_model(setup):
    root, _ = setup
    with pytest.raises(EvalError, match=r"unknown lm-eval task.*'archbench_pp'.*did you mean archbench_ppl"):
        run_harness(str(root / "no-model-needed"), None, ["archbench_pp"], task_dirs=[str(root / "tasks")])


def test_hub_task_offline_fails_fast_with_a_clear_message(setup, monkeypatch):
    root, _ = setup
    monkeypatch.setattr("archbench.evaluation.harness._cached", lambda dataset: False)
    with pytest.raises(EvalError, match=r"hellaswag \(Rowan/hellaswag\).*Hugging Face hub.*offline"):
        run_harness(str(root / "no-model-needed"), None, ["hellaswag"], task_dirs=[str(root / "tasks")])


def test_continuations_longer_than_the_context_are_a_clear_error(setup, tmp_path):
    root, _ = setup
    model = tiny_model_dir(tmp_path, "retnet", max_seq_len=4)
    with pytest.raises(EvalError, match="longer than the model's context"):
        run_harness(
            str(model), None, ["archbench_cloze"], task_dirs=[str(root / "tasks")], limit=2, device="cpu", threads=1
        )


def test_short_documents_get_shorter_task_contexts(tmp_path):
    """MQAR documents are 63 words: the offline tasks shorten their 64-word contexts to fit rather than
    failing; only documents no longer than the continuation leave no items (a clear error)."""
    import pandas as pd

    split = tmp_path / "test"
    split.mkdir()
    rng = random.Random(0)
    vocab = ["".join(rng.choice("abcdefghij") for _ in range(5)) for _ in range(150)]
    docs = [" ".join(rng.choice(vocab) for _ in range(40)) for _ in range(20)]
    pd.DataFrame({"text": docs}).to_parquet(split / "00000.parquet")
    counts = build_tasks(str(split), str(tmp_path / "tasks"))
    assert counts["archbench_ppl"] == 20 and counts["archbench_cloze"] == 20 and counts["archbench_lastword"] > 0
    rows = [json.loads(line) for line in open(tmp_path / "tasks" / "archbench_cloze.jsonl")]
    assert {len(r["context"].split()) for r in rows} == {32}  # 40 words - 8 continuation words
    assert {len(c.split()) for r in rows for c in r["choices"]} == {8}

    pd.DataFrame({"text": ["a b c", "d e f g"]}).to_parquet(split / "00000.parquet")
    with pytest.raises(Exception, match="no archbench_cloze items could be made"):
        build_tasks(str(split), str(tmp_path / "tasks2"))
