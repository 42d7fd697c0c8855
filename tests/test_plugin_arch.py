"""Adding an architecture is one model module plus one registry entry: a toy architecture defined
outside the package, registered through the `archbench.archs` entry point, runs through the tiny
pipeline beside RetNet (train, evaluate, report) with no other change."""

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from workflow_helpers import snakemake, tiny_config

# The model module: a Transformer under another name (its own config class and model type).
TOY_MODULE = '''
"""A toy architecture for archbench's plugin test."""
from archbench.models.registry import Arch, register_arch

register_arch(Arch("toy", "toyarch_models:ToyConfig", "toyarch_models:ToyForCausalLM", state="kv_cache",
                   width_knob="ffn_dim", color="tab:brown", display="Toy",
                   constraints="archbench.models.constraints:transformer"))
'''
TOY_MODELS = """
from archbench.models.transformer.modeling import TransformerConfig, TransformerForCausalLM


class ToyConfig(TransformerConfig):
    model_type = "archbench_toy"


class ToyForCausalLM(TransformerForCausalLM):
    config_class = ToyConfig
    arch = "toy"
"""


def write_plugin(site):
    """A package as pip would install it: modules plus a dist-info folder declaring the entry point."""
    (site / "toyarch.py").write_text(textwrap.dedent(TOY_MODULE))
    (site / "toyarch_models.py").write_text(textwrap.dedent(TOY_MODELS))
    info = site / "toyarch-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyarch\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[archbench.archs]\ntoy = toyarch\n")


@pytest.fixture
def plugin_env(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    write_plugin(site)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return site


def test_the_entry_point_registers_the_toy_architecture_without_torch(plugin_env):
    code = (
        "import sys; from archbench.models.registry import ARCHS, get_arch; "
        "from archbench.config import validate_config; "
        "a = get_arch('toy'); assert a.display == 'Toy' and a.state == 'kv_cache'; "
        "cfg = validate_config({'archs': ['toy'], 'grid': {'learning_rate': [0.01], "
        "'embed_dim': [24], 'ffn_dim': [64], 'heads': [8], 'seq_len': [32]}})"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    # the toy's rules are the Transformer's: 24 / 8 = 3 is an odd head dimension, rejected at parse time
    assert "(arch toy)" in proc.stderr and "head dimension" in proc.stderr, proc.stderr[-2000:]
    ok = code.replace("'embed_dim': [24]", "'embed_dim': [32]").replace("'heads': [8]", "'heads': [2]")
    ok += "; assert 'torch' not in sys.modules and list(ARCHS)[-1] == 'toy'"
    proc = subprocess.run([sys.executable, "-c", ok], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_toy_architecture_runs_through_the_tiny_pipeline(plugin_env, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    cfg = tiny_config(
        work,
        archs=["retnet", "toy"],
        grid={"learning_rate": [1.0e-2], "embed_dim": [32], "ffn_dim": [64], "heads": [2], "seq_len": [32]},
    )
    snakemake(work, "--cores", "2", configfile=cfg, timeout=2400)
    report = work / "results" / "report"
    grid = pd.read_csv(report / "grid_results.csv")
    assert sorted(grid["arch"]) == ["retnet", "toy"] and set(grid["status"]) == {"ok"}
    assert (grid["test_loss"] < 0.85 * grid["uniform_loss"]).all()
    comparison = pd.read_csv(report / "comparison.csv")
    assert "diff_retnet_minus_toy" in comparison  # compared against the baseline like any architecture
    run = next((work / "results" / "eval" / "toy").glob("*/seed~0"))
    latency = json.loads((run / "latency.json").read_text())
    assert {e["mode"] for e in latency["entries"]} >= {"kv_cache"} and latency["summary"]["arch"] == "toy"
    assert "- Toy has the lowest mean test loss" in (report / "summary.md").read_text()  # registry display name
