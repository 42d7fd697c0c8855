"""`archbench <evaluation> MODEL_DIR`: the registered evaluation functions outside Snakemake."""

import argparse
import json
import re

import pytest

from archbench.cli import main
from archbench.evaluation.registry import EVALUATIONS, get_evaluation
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


@pytest.mark.parametrize("command", ["evaluate", *EVALUATIONS])
def test_cli_defaults_build_the_rules_arguments(command):
    """One builder per call: with no options the CLI passes exactly what the rule passes for a config
    file that leaves the section at its schema defaults (the latency seed once drifted: 0 vs 1234)."""
    from archbench.cli import _config, _parser
    from archbench.config import validate_config

    config = validate_config(
        {"grid": {"learning_rate": [1.0e-3], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]}}
    )
    argv = [command, "MODEL"] + (["--tokens", "index.json"] if command == "length" else [])
    args = _parser().parse_args(argv)
    evaluation = get_evaluation(args.command)
    cli = evaluation.build_args(_config(args))
    assert cli == evaluation.build_args(config)
    assert cli["device"] == "auto" and cli["dtype"] == "fp32"
    if command == "latency":
        assert cli["seed"] == config["seed"] == 1234


@pytest.mark.parametrize("command", list(EVALUATIONS))
def test_every_evaluation_takes_a_dtype_and_its_config_keys(command):
    from archbench.cli import _config, _parser

    argv = [command, "MODEL", "--dtype", "bf16", "--device", "cpu"] + (["--tokens", "x"] if command == "length" else [])
    args = _parser().parse_args(argv)
    built = get_evaluation(command).build_args(_config(args))
    assert (built["dtype"], built["device"]) == ("bf16", "cpu")
    with pytest.raises(SystemExit):
        _parser().parse_args([command, "MODEL", "--dtype", "fp8"])


def test_options_map_onto_config_keys():
    from archbench.cli import _config, _parser

    a = _parser().parse_args(["throughput", "M", "--batch-sweep", "1", "2", "--batch-context", "32", "--trials", "2"])
    assert get_evaluation("throughput").build_args(_config(a))["batch_sizes"] == [1, 2]
    assert get_evaluation("throughput").build_args(_config(a))["context"] == 32
    a = _parser().parse_args(["recall", "M", "--pairs", "2", "--eval-examples", "7"])
    mqar = get_evaluation("recall").build_args(_config(a))["mqar_cfg"]
    assert (mqar["pairs"], mqar["eval_examples"], mqar["vocab_size"]) == ([2], 7, 256)
    a = _parser().parse_args(["generate", "M", "--prompt", "a", "--prompt", "b", "--sample"])
    g = get_evaluation("generate").build_args(_config(a))
    assert (g["prompts"], g["do_sample"]) == (["a", "b"], True)
    assert _parser().parse_args(["evaluate", "M", "--limit", "0.5"]).command == "harness"


def test_help_is_clean_with_defaults_and_a_version(capsys):
    """Every option of every subcommand has help text and shows its default; no rst markup."""
    from archbench import __version__
    from archbench.cli import _parser

    parser = _parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--version"])
    assert capsys.readouterr().out.strip() == f"archbench {__version__}"
    assert "``" not in parser.format_help()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        text = sub.format_help()
        assert "``" not in text, name
        for action in sub._actions:
            assert action.help, (name, action.dest)
    latency = subparsers.choices["latency"].format_help()
    assert re.search(r"--trials TRIALS\s+.*\(default: 3\)", " ".join(latency.split()))
    assert "(default: fp32)" in latency and "{fp32,bf16,fp16}" in latency


def test_load_model_in_bf16(model):
    import torch

    from archbench.evaluation.common import EvalError, load_model

    loaded, _, _ = load_model(model, "cpu", "bf16")
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    with pytest.raises(EvalError, match="dtype 'fp8'"):
        load_model(model, "cpu", "fp8")
