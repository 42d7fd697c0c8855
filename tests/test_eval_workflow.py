"""The evaluation stage in the DAG: one harness / latency / generate job per run, the offline tasks once."""

import re

import pytest

from archbench.config import validate_config
from archbench.errors import ConfigError
from workflow_helpers import dry_run_counts, tiny_config


def test_every_run_is_evaluated_and_include_path_yamls_are_inputs(tmp_path):
    extra = tmp_path / "tasks"
    extra.mkdir()
    (extra / "mine.yaml").write_text("task: mine\n")
    cfg = tiny_config(tmp_path, seeds=[0, 1], eval={"include_path": str(extra), "tasks": ["archbench", "mine"]})
    counts = dry_run_counts(tmp_path, configfile=cfg)
    runs = 2 * 2 * 2  # archs x learning rates x seeds
    assert counts["eval_tasks"] == 1
    assert counts["harness"] == counts["generate"] == counts["train"] == runs
    assert counts["latency"] == 2  # timed once per architecture x shape: first learning rate, first seed


@pytest.mark.parametrize(
    "section,value,key",
    [
        ("eval", {"tasks": []}, "eval.tasks"),
        ("eval", {"device": "tpu"}, "eval.device"),
        ("latency", {"contexts": [0]}, "latency.contexts[0]"),
        ("latency", {"trials": 0}, "latency.trials"),
        ("generate", {"top_p": 1.5}, "generate.top_p"),
        ("generate", {"temperature": 0}, "generate.temperature"),
    ],
)
def test_bad_eval_settings_are_rejected_naming_the_key(section, value, key):
    config = {
        "grid": {"learning_rate": [1.0e-3], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
        section: value,
    }
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}'")):
        validate_config(config)


def test_eval_defaults_are_filled():
    config = {"grid": {"learning_rate": [1.0e-3], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]}}
    validate_config(config)
    assert config["eval"]["tasks"] == ["archbench_ppl", "archbench_cloze", "archbench_lastword"]
    assert config["latency"]["contexts"] == [64, 256, 1024, 2048] and config["generate"]["do_sample"] is False
