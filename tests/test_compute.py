"""Compute beside parameters (issue 29 item 7): model.match: flops, and the compute question."""

import json
import math

import pytest

from archbench.config import validate_config
from archbench.errors import ConfigError
from archbench.models.flops import train_flops_per_token
from archbench.models.sizing import count

# the default config's model settings (config/config.yaml) and its 4096-word tokenizer
DEFAULT = dict(
    embed_dim=128,
    ffn_dim=256,
    heads=4,
    layers=2,
    seq_len=128,
    dropout=0.0,
    match_params=True,
    match="params",
    match_by="width",
    match_to="retnet",
    ssm_state_size=16,
    block="transformer",
    accelerator="cpu",
)


def test_match_flops_matches_training_flops_per_token_within_two_percent():
    from archbench.training.run import model_kwargs

    reference = train_flops_per_token("retnet", model_kwargs("retnet", DEFAULT, 4096))
    by_params = model_kwargs("mamba2", DEFAULT, 4096)
    assert train_flops_per_token("mamba2", by_params) / reference == pytest.approx(3.95, abs=0.01)  # params != compute
    flops = {**DEFAULT, "match": "flops"}
    assert model_kwargs("mamba2", flops, 4096)["ssm_state_size"] == 13
    for arch in ("mamba2", "llama", "transformer"):
        kwargs = model_kwargs(arch, flops, 4096)
        assert abs(train_flops_per_token(arch, kwargs) / reference - 1) <= 0.02, arch
    assert model_kwargs("transformer", flops, 4096)["ffn_dim"] == 671  # 628 when parameters are matched
    # match: flops turns matching on by itself; params without match_params leaves the widths as given
    assert model_kwargs("transformer", {**flops, "match_params": False}, 4096)["ffn_dim"] == 671
    assert model_kwargs("transformer", {**DEFAULT, "match_params": False}, 4096)["ffn_dim"] == 256
    assert count("retnet", model_kwargs("retnet", flops, 4096), False) == 459392  # the reference is untouched


GRID = {"learning_rate": [1.0e-3], "embed_dim": [128], "ffn_dim": [256], "heads": [4], "seq_len": [128]}


def test_match_flops_with_layer_matching_is_refused_before_work_starts():
    def config(**model):
        return {"archs": ["retnet", "mamba2"], "grid": dict(GRID), "model": model}

    with pytest.raises(ConfigError, match="model.match': flops turns the width knob; model.match_by must be width"):
        validate_config(config(match="flops", match_by="layers"))
    assert validate_config(config(match="flops"))["model"]["match"] == "flops"
    assert validate_config(config())["model"]["match"] == "params"
    with pytest.raises(ConfigError, match="model.match"):
        validate_config(config(match="time"))


def _metrics(root, arch, lr, seed, val_loss, flops_per_token, tokens, params):
    path = root / arch / f"lr{lr}" / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True)
    data = {
        "arch": arch,
        "seed": seed,
        "hparams": {"learning_rate": lr, "embed_dim": 128},
        "params_non_embedding": params,
        "tokens_seen": tokens,
        "train_flops_per_token": flops_per_token,
        "val_loss": val_loss,
        "test_loss": val_loss + 0.01,
        # nats per token / ln 2 / bytes per token (4 bytes of validation text per token)
        "val_bits_per_byte": val_loss / math.log(2) / 4.0,
    }
    path.write_text(json.dumps(data))
    return str(path)


def test_compute_question_marks_the_pareto_frontier_and_reports_bits_per_byte(tmp_path):
    import pandas as pd

    from archbench.report.questions import compute, runs_frame

    paths = [
        _metrics(tmp_path, "retnet", 0.001, 0, 4.0, 6e6, 1e6, 4.6e5),  # 6e12 FLOPs: frontier
        _metrics(tmp_path, "retnet", 0.003, 0, 3.5, 6e6, 2e6, 4.6e5),  # 1.2e13: frontier
        _metrics(tmp_path, "mamba2", 0.001, 0, 3.8, 2.5e7, 1e6, 4.6e5),  # 2.5e13, worse than 3.5: dominated
        _metrics(tmp_path, "mamba2", 0.003, 0, 3.2, 2.5e7, 2e6, 4.6e5),  # 5e13: frontier
    ]
    png, csv = str(tmp_path / "compute.png"), str(tmp_path / "compute.csv")
    result = compute.answer(None, runs_frame(paths), png, csv)
    table = pd.read_csv(csv)
    assert list(table.sort_values("train_flops")["pareto"]) == [True, True, False, True]
    row = table[(table["arch"] == "mamba2") & (table["val_loss"] == 3.2)].iloc[0]
    assert row["train_flops"] == pytest.approx(5e13)
    assert row["val_bits_per_byte"] == pytest.approx(3.2 / math.log(2) / 4.0)
    assert result["sentence"] == (
        "Validation loss vs training FLOPs (every run; Pareto frontier: lowest loss at no more compute): "
        "3 of 4 runs on the frontier (RetNet 2, Mamba-2 1); Mamba-2 best 3.200 nats/token (1.154 bits/byte) "
        "at 50T FLOPs; RetNet best 3.500 nats/token (1.262 bits/byte) at 12T FLOPs."
    )
    assert open(png, "rb").read(4) == b"\x89PNG" and "<svg" in open(png.removesuffix(".png") + ".svg").read()[:500]


def test_a_timed_evaluation_measures_each_shape_once_at_the_first_training_values():
    from archbench.evaluation.registry import EVALUATIONS, timing_point

    config = validate_config(
        {"grid": {**GRID, "learning_rate": [1.0e-3, 3.0e-3], "embed_dim": [64, 128], "weight_decay": [0.0, 0.1]}}
    )
    point = {"learning_rate": 3.0e-3, "embed_dim": 128, "ffn_dim": 256, "heads": 4, "seq_len": 128, "weight_decay": 0.1}
    assert timing_point(config, point) == {**point, "learning_rate": 1.0e-3, "weight_decay": 0.0}
    assert {name for name, e in EVALUATIONS.items() if e.timed} == {"latency", "throughput"}
