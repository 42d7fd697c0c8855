"""CI-sized versions of the reproduce-* presets through the real pipeline (Snakemake, Lightning, the
evaluations), up to report/reproduction.csv: each preset's claim gets a verdict by its own rule, the
other claims read "not measured". Shrunk only in size (steps, data, widths, contexts); the claim, its rule
and the evaluations it reads are the preset's, so a preset that stops producing its row fails here."""

import copy

import pandas as pd
import pytest
import yaml

from archbench.report.claims import CLAIMS
from workflow_helpers import REPO, snakemake

pytestmark = pytest.mark.slow

PRESETS = REPO / "config" / "presets"
TRAIN = {"max_steps": 8, "warmup_steps": 2, "val_check_interval": 8, "checkpoint_every_n_steps": 8, "batch_size": 8}


def shrink(cfg: dict, tmp_path) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["results"] = str(tmp_path / "results")
    cfg["training"] = {**cfg.get("training", {}), **TRAIN, "limit_val_batches": 2}
    grid = cfg.setdefault("grid", {})
    grid["learning_rate"] = grid.get("learning_rate", [1.0e-3])[-1:]
    if "ssm_state_size" in grid:
        grid["ssm_state_size"] = [16]
    data = cfg.setdefault("data", {})
    if data.get("source") == "mqar":
        data["mqar"] = {**data["mqar"], "documents": 400, "eval_examples": 8}
        grid["embed_dim"] = [16]
    else:
        data["max_documents"] = 40
        cfg["tokenizer"] = {"vocab_size": 512}
        grid["embed_dim"] = [32]
    # one run per preset (its claim's own model: the preset's first arch), two for RetNet's cost (RetNet
    # vs a KV cache); the verdicts' logic on both sides of each rule is tests/test_reproduce.py's
    cfg["archs"] = [a for a in cfg["archs"] if a != "transformer"][
        : 2 if cfg["reproduce"]["claim"] == "retnet_cost" else 1
    ]
    if cfg.get("length", {}).get("enabled"):
        cfg["length"] = {"enabled": True, "multipliers": [1, 2], "max_tokens": 512}
    cfg["latency"] = {**cfg.get("latency", {}), "trials": 1, "new_tokens": 2}
    if len(cfg["latency"].get("contexts", [])) > 2:
        cfg["latency"]["contexts"] = [16, 64]
    return cfg


@pytest.mark.parametrize("name", ["reproduce-zoology", "reproduce-mamba2", "reproduce-length", "reproduce-retnet-cost"])
def test_ci_sized_preset_fills_its_claims_row(tmp_path, name):
    preset = yaml.safe_load((PRESETS / f"{name}.yaml").read_text())
    cfg = shrink(preset, tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    target = f"{cfg['results']}/report/reproduction.csv"
    snakemake(tmp_path, "--cores", "2", target, configfile=path)
    table = pd.read_csv(target).set_index("claim")
    claim = preset["reproduce"]["claim"]
    assert list(table.index) == list(CLAIMS)
    assert table.loc[claim, "verdict"] in ("reproduced", "not reproduced", "inconclusive")
    assert table.loc[claim, "rule"] == " ".join(preset["reproduce"]["rule"]["text"].split())
    assert isinstance(table.loc[claim, "ours"], str) and table.loc[claim, "ours"]
    assert (table.drop(index=claim)["verdict"] == "not measured").all()
    assert (tmp_path / "results" / "report" / "plots" / f"reproduction_{claim}.png").stat().st_size > 0
