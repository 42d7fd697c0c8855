"""Adding a data source is one module plus one registry entry: a toy source defined outside the package,
registered through the ``archbench.sources`` entry point, is checked, planned and read with no edit to
archbench; its run through the tiny pipeline into the report is in test_plugins_pipeline.py."""

import os
import subprocess
import sys
import textwrap

import pytest

from workflow_helpers import dry_run_counts, tiny_config

# Documents from a seeded grammar: sentences over a small vocabulary (learnable by a tiny model).
TOY_SOURCE = '''
"""A toy data source for archbench's plugin test."""
import random

from archbench.data.sources import DataSource
from archbench.errors import ConfigError

ANIMALS = ["cat", "dog", "horse", "goat", "sheep", "mouse"]
VERBS = ["sees", "chases", "follows", "feeds", "hears"]
PLACES = ["field", "barn", "river", "hill", "garden"]


class ToySource(DataSource):
    name = "toy"
    description = "seeded sentences about animals"

    def check_config(self, data, settings):
        if not isinstance(data["options"].get("documents"), int) or data["options"]["documents"] < 20:
            raise ConfigError("config key 'data.options.documents': the toy source needs an integer >= 20")

    def plan(self, data, results):
        return {f"{i:05d}-toy": {"name": f"{i:05d}-toy", "source": "toy", "path": None, "format": "toy",
                                 "compression": None, "range": [i]} for i in range(2)}

    def download_params(self, data):
        return {"options": data["options"]}

    def read(self, shard, data, limits):
        n = data["options"]["documents"] // 2
        docs = []
        for d in range(n):
            rng = random.Random(shard["range"][0] * 100_000 + d)
            docs.append(" ".join(
                f"the {rng.choice(ANIMALS)} {rng.choice(VERBS)} the {rng.choice(ANIMALS)} in the {rng.choice(PLACES)} ."
                for _ in range(40)))
        yield docs, 0
'''


def write_plugin(site):
    """The toy package as pip would install it: a module plus a dist-info folder declaring the entry point."""
    files = {
        "toysource.py": textwrap.dedent(TOY_SOURCE),
        "toysource-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: toysource\nVersion: 0.1\n",
        "toysource-0.1.dist-info/entry_points.txt": "[archbench.sources]\ntoy = toysource:ToySource\n",
    }
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)


@pytest.fixture
def plugin_env(tmp_path, monkeypatch):
    """The toy package in a folder put first on the jobs' PYTHONPATH."""
    site = tmp_path / "site"
    write_plugin(site)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return site


GRID = "'grid': {'learning_rate': [0.01], 'embed_dim': [32], 'ffn_dim': [64], 'heads': [2], 'seq_len': [32]}"


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_entry_point_registers_the_toy_source_and_its_config_rule(plugin_env, tmp_path):
    base = (
        "from archbench.config import validate_config; from archbench.data.sources import source_names; "
        "from archbench.data.sources import plan_shards, read_shard; "
        "cfg = validate_config({'data': {'source': 'toy', 'options': {'documents': N}}, " + GRID + "}); "
    )
    proc = run(base.replace("N", "5"))
    assert "config key 'data.options.documents': the toy source needs an integer >= 20" in proc.stderr, proc.stderr
    ok = base.replace("N", "40") + (
        "shards = plan_shards(cfg['data']); print(source_names()); print(list(shards)); "
        "docs, _ = next(read_shard(shards['00001-toy'], cfg['data'])); print(len(docs), docs[0][:12])"
    )
    proc = run(ok)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [
        "['default', 'hub', 'local', 'mqar', 'toy']",
        "['00000-toy', '00001-toy']",
        "20 the cat feed",
    ]
    # an unknown source is one error naming the key and the registered sources
    proc = run(
        "from archbench.config import validate_config; validate_config({'data': {'source': 'nope'}, " + GRID + "})"
    )
    assert "config key 'data.source': 'nope' is not one of ['default', 'hub', 'local', 'mqar', 'toy']" in proc.stderr


def test_the_toy_source_plans_one_download_job_per_shard(plugin_env, tmp_path):
    cfg = tiny_config(tmp_path, data={"source": "toy", "options": {"documents": 40}})
    counts = dry_run_counts(tmp_path, str(tmp_path / "results/tokens/train/index.json"), configfile=cfg)
    assert counts == {
        "download": 2,
        "split_plan": 1,
        "split": 2,
        "train_tokenizer": 1,
        "tokenize": 2,
        "gather_tokens": 1,
    }
