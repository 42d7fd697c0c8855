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


def test_each_argument_reads_one_config_key_the_same_for_rule_and_cli():
    cfg = _config(latency={"batch_sweep": [1, 2], "trials": 5}, generate={"seed": 7})
    assert get_evaluation("throughput").build_args(cfg) == {
        "batch_sizes": [1, 2],
        "context": 256,
        "new_tokens": 16,
        "trials": 5,
        "warmup": 1,
        "seed": cfg["seed"],
        "device": "auto",
        "dtype": "fp32",
    }
    assert get_evaluation("generate").build_args(cfg)["seed"] == 7
    assert get_evaluation("recall").build_args(cfg)["mqar_cfg"] is cfg["data"]["mqar"]


def test_schema_fragments_are_the_keys_each_evaluation_owns():
    """Each fragment is its section's schema for those keys in the composed schema, the base file does not
    spell them (one home), and no two evaluations own one key."""
    import yaml

    from archbench.config import SCHEMA_PATH, load_schema

    schema, owners = load_schema()["properties"], {}
    base = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]
    for e in EVALUATIONS.values():
        section = e.section
        for key, prop in (e.schema_fragment or {}).items():
            want = dict(schema[section]["properties"][key])
            want["description"] = " ".join(want["description"].split())
            assert prop == want, (e.name, key)
            assert key not in base[section].get("properties") or {}, (e.name, key)
            assert owners.setdefault(f"{section}.{key}", e.name) == e.name
    assert owners["latency.batch_sweep"] == "throughput" and owners["eval.limit"] == "harness"
    assert "eval.device" not in owners  # every evaluation's: the base schema's


def test_the_report_flattens_a_file_through_its_entry(tmp_path):
    """collect reads an evaluation's columns from its entry's `flatten`; a name without an entry gives
    its scalar keys."""
    from archbench.report.collect import collect, run_record

    (tmp_path / "m.json").write_text('{"arch": "retnet", "seed": 0, "hparams": {}, "test_loss": 2.5}')
    (tmp_path / "toy.json").write_text('{"score": 3, "nested": {"x": 1}}')
    (tmp_path / "other.json").write_text('{"score": 4}')
    entry = Evaluation(
        "toy", print, {}, {"json": "toy.json"}, help="x", flatten=lambda d: {"toy/double": 2 * d["score"]}
    )
    EVALUATIONS["toy"] = entry
    try:
        row = collect(
            [
                run_record(
                    "retnet",
                    0,
                    "p",
                    {},
                    metrics=str(tmp_path / "m.json"),
                    toy=str(tmp_path / "toy.json"),
                    other=str(tmp_path / "other.json"),
                )
            ]
        ).iloc[0]
    finally:
        del EVALUATIONS["toy"]
    assert (row["toy/double"], row["toy_status"], row["other/score"]) == (6, "ok", 4)
    assert "toy/score" not in row.index
