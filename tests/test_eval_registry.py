"""The evaluation registry: the seven built-in entries, when each applies, which get a GPU, and the call
arguments the generic adapter passes (no torch needed to read any of it)."""

import pytest

from archbench.config import validate_config
from archbench.evaluation.registry import EVALUATIONS, Evaluation, applicable, eval_gpus, get_evaluation

GRID = {"learning_rate": [1.0e-3], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [128]}


def _config(**sections):
    return validate_config({"grid": GRID, **sections})


def test_builtin_entries_and_their_files():
    assert list(EVALUATIONS)[:7] == ["harness", "latency", "generate", "length", "throughput", "recall", "retrieval"]
    files = {name: e.files for name, e in EVALUATIONS.items()}
    assert files["harness"] == ["harness.json"] and files["generate"] == ["samples.txt", "samples.csv"]
    assert [e.name for e in EVALUATIONS.values() if e.question] == ["length", "throughput", "recall", "retrieval"]
    with pytest.raises(KeyError, match="unknown evaluation 'nope'"):
        get_evaluation("nope")


def test_what_applies_follows_the_config():
    assert [e.name for e in applicable(_config())] == ["harness", "latency", "generate", "length", "throughput"]
    cfg = _config(data={"source": "mqar"}, length={"enabled": False}, latency={"batch_sweep": []})
    assert [e.name for e in applicable(cfg)] == ["harness", "latency", "generate", "recall"]


@pytest.mark.parametrize(
    "device, accelerator, gpus",
    [("auto", "auto", 0), ("cpu", "gpu", 0), ("cuda", "cpu", 1), ("auto", "gpu", 1), ("auto", "cuda", 1)],
)
def test_eval_gpus(device, accelerator, gpus):
    assert eval_gpus(_config(eval={"device": device}, training={"accelerator": accelerator})) == gpus


def test_call_kwargs_of_the_generic_adapter():
    inputs = {"model": "r/runs/x/model/config.json", "tasks": ["r/eval/tasks/a.yaml"], "include": [], "tokens": "t"}
    assert get_evaluation("harness").call_kwargs(inputs, {"json": "h.json"}) == {
        "model_dir": "r/runs/x/model",
        "out_json": "h.json",
        "task_dirs": ["r/eval/tasks"],
    }
    assert get_evaluation("length").call_kwargs(inputs, {"json": "l.json"})["tokens"] == "t"
    with pytest.raises(ValueError, match="unknown inputs"):
        Evaluation("x", print, {}, {"json": "x.json"}, help="x", inputs={"a": "weights"})
