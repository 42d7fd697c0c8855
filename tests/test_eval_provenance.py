"""Every evaluation output carries the one provenance block, with the hash of what it measured with and
the sha256 of the model's saved tokenizer; recall.json carries state size, a validation stream apart
from the test stream, and the generator's settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from archbench.data import mqar
from archbench.provenance import file_sha256, settings_hash
from test_eval_fixtures import mqar_model_dir, tiny_model_dir


def _check(result: dict, out, model_dir, expected_settings: dict) -> None:
    assert json.loads(out.read_text())["provenance"] == json.loads(json.dumps(result["provenance"]))
    block = result["provenance"]
    # every evaluation also measures with a dtype (eval.dtype, fp32 unless given)
    assert block["settings_hash"] == settings_hash({"dtype": "fp32", **expected_settings})
    assert block["tokenizer_sha256"] == file_sha256(model_dir / "tokenizer.json")
    assert block["precision"] == "float32" and block["device"] == "cpu" and block["gpu"] is None
    assert block["versions"]["torch"] == torch.__version__.split("+")[0]
    assert block["started"] <= block["finished"] and block["git"]["commit"]


def test_latency_throughput_length_harness_carry_provenance(tmp_path, one_thread):
    from archbench.evaluation.harness import run_harness
    from archbench.evaluation.latency import run_latency
    from archbench.evaluation.length import run_length
    from archbench.evaluation.tasks import build_tasks
    from archbench.evaluation.throughput import run_throughput
    from test_eval_fixtures import tiny_split

    model = tiny_model_dir(tmp_path, "transformer", max_seq_len=32)
    kw = dict(new_tokens=1, trials=1, warmup=0, seed=0)
    out = tmp_path / "latency.json"
    res = run_latency(str(model), str(out), [16], [1], recompute_max_context=0, device="cpu", threads=1, **kw)
    _check(
        res,
        out,
        model,
        {"evaluation": "latency", "contexts": [16], "batch_sizes": [1], "recompute_max_context": 0, **kw},
    )

    out = tmp_path / "throughput.json"
    res = run_throughput(str(model), str(out), [1, 2], context=16, device="cpu", threads=1, **kw)
    _check(res, out, model, {"evaluation": "throughput", "batch_sizes": [1, 2], "context": 16, **kw})

    tokens = tmp_path / "test.bin"
    (np.arange(2000) % 200).astype("<u2").tofile(tokens)
    (tmp_path / "test.json").write_text(json.dumps({"dtype": "uint16", "n_tokens": 2000}))
    out = tmp_path / "length.json"
    res = run_length(str(model), str(tokens), str(out), multipliers=[1], max_tokens=64, batch_size=2, device="cpu")
    expected = {"evaluation": "length", "multipliers": [1], "max_tokens": 64, "batch_size": 2}
    _check(res, out, model, expected)

    build_tasks(str(tiny_split(tmp_path / "split")), str(tmp_path / "tasks"), context_words=24, choice_words=8)
    out = tmp_path / "harness.json"
    task_dirs = [str(tmp_path / "tasks")]
    res = run_harness(
        str(model), str(out), ["archbench_ppl"], task_dirs=task_dirs, limit=2, batch_size=2, device="cpu", threads=1
    )
    expected = {
        "evaluation": "harness",
        "tasks": ["archbench_ppl"],
        "task_dirs": task_dirs,
        "include_path": None,
        "num_fewshot": None,
        "limit": 2,
        "batch_size": 2,
        "bootstrap_iters": 100,
        "seed": 0,
    }
    _check(res, out, model, expected)
    assert res["provenance"]["settings_hash"] != settings_hash({"dtype": "fp32", **expected, "limit": 3})


MQAR = {
    "pairs": [2, 4],
    "eval_pairs": [1],
    "queries": None,
    "vocab_size": 32,
    "seq_len": 24,
    "documents": 10,
    "eval_examples": 8,
    "seed": 0,
    "power_a": 0.01,
    "random_fillers": True,
    "answers_in_input": True,
}


def _mqar_model(root, arch):
    return mqar_model_dir(root, arch, MQAR["vocab_size"], max_seq_len=24)


@pytest.mark.parametrize(
    "arch,state",
    [
        ("transformer", 2 * 2 * 23 * 32 * 4),  # K and V, 2 layers, 23 tokens, width 32, float32
        ("retnet", 2 * 2 * 16 * 32 * 4),  # 2 layers x 2 heads x key 16 x value 32 (value_embed_dim 64), float32
        ("mamba2", 2 * (96 * 4 + 64 * 16) * 4),  # 2 layers x (conv window 4 x (64 + 2 x 16) + SSM 64 x 16)
    ],
)
def test_recall_reports_state_validation_and_generator(tmp_path, arch, state, one_thread):
    from archbench.evaluation.recall import run_recall

    model = _mqar_model(tmp_path, arch)
    out = tmp_path / "recall.json"
    res = run_recall(str(model), str(out), MQAR, batch_size=4, device="cpu", threads=1)
    _check(res, out, model, {"evaluation": "recall", "mqar_cfg": MQAR, "batch_size": 4})
    assert res["state_bytes"] == state
    assert res["generator"] == {
        "power_a": 0.01,
        "random_fillers": True,
        "answers_in_input": True,
        "vocab_size": 32,
        "seq_len": 24,
        "pairs": [2, 4],
        "queries": None,
    }
    assert [e["pairs"] for e in res["entries"]] == [1, 2, 4] and set(res["validation"]) == {"1", "2", "4"}
    assert all(0 <= v <= 1 for v in res["validation"].values())


def test_validation_and_test_streams_never_share_an_example():
    for pairs in (1, 2, 4):
        test, _ = mqar.eval_examples(MQAR, 0, pairs, 64)
        val, _ = mqar.eval_examples(MQAR, 0, pairs, 64, mqar.VALIDATION_STREAM)
        assert not {tuple(r) for r in test} & {tuple(r) for r in val}
        assert val.tolist() == mqar.eval_examples(MQAR, 0, pairs, 64, mqar.VALIDATION_STREAM)[0].tolist()
