"""`archbench evaluate|latency|generate MODEL_DIR`: the evaluation functions outside Snakemake."""

import json
import re

import pytest

from archbench.cli import main
from test_eval_fixtures import tiny_model_dir


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    tiny_model_dir(root, "retnet")  # also writes root/split, the parquet test split
    return root


@pytest.fixture(scope="module")
def model(root):
    return str(root / "retnet-model")


def test_generate_prints_and_writes(model, tmp_path, capsys):
    out_csv = tmp_path / "s.csv"
    assert (
        main(
            [
                "generate",
                model,
                "--prompt",
                "river",
                "--max-new-tokens",
                "4",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--out-csv",
                str(out_csv),
                "--out-txt",
                str(tmp_path / "s.txt"),
            ]
        )
        == 0
    )
    assert "## 'river'" in capsys.readouterr().out
    assert out_csv.read_text().splitlines()[0].startswith("timestamp,architecture,prompt,completion")


def test_latency_writes_json_and_prints_the_table(model, tmp_path, capsys):
    out = tmp_path / "latency.json"
    assert (
        main(
            [
                "latency",
                model,
                "--contexts",
                "8",
                "16",
                "--new-tokens",
                "2",
                "--trials",
                "1",
                "--warmup",
                "0",
                "--recompute-max-context",
                "8",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    entries = json.loads(out.read_text())["entries"]
    assert [(e["mode"], e["context"]) for e in entries] == [("recurrent", 8), ("recompute", 8), ("recurrent", 16)]
    assert re.search(r"^\|\s+16 \|", capsys.readouterr().out, re.M)


def test_evaluate_builds_the_offline_tasks_from_a_test_split(root, model, tmp_path, capsys):
    split = root / "split"
    out = tmp_path / "harness.json"
    assert (
        main(
            [
                "evaluate",
                model,
                "--test-split",
                str(split),
                "--tasks",
                "archbench_cloze",
                "--limit",
                "2",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert 0 <= json.loads(out.read_text())["results"]["archbench_cloze"]["acc"] <= 1
    assert "archbench_cloze" in capsys.readouterr().out


def test_user_errors_are_one_line(model, capsys):
    assert main(["evaluate", model]) == 2  # the default tasks need a test split
    assert "--test-split" in capsys.readouterr().err
    assert main(["generate", str(model) + "-missing"]) == 2
    assert "not a saved model" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "latency", "generate"])
def test_cli_defaults_build_the_rules_arguments(command):
    """One builder per call: with no options the CLI passes exactly what the rule passes for a config
    file that leaves the section at its schema defaults (the latency seed once drifted: 0 vs 1234)."""
    from archbench.cli import _config, _parser
    from archbench.config import validate_config
    from archbench.evaluation import calls

    config = validate_config(
        {"grid": {"learning_rate": [1.0e-3], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]}}
    )
    build = {"evaluate": calls.harness_args, "latency": calls.latency_args, "generate": calls.generate_args}[command]
    cli = build(_config(_parser().parse_args([command, "MODEL"])))
    assert cli == build(config)
    if command == "latency":
        assert cli["seed"] == config["seed"] == 1234
