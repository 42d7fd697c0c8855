"""config/presets/*.yaml: the dry run lists exactly one train job per architecture x grid point x seed,
exactly as many jobs of every per-run evaluation rule, and the paper grid's DAG is built quickly."""

import itertools
import re

import yaml

from archbench.evaluation.registry import EVALUATIONS, timing_point
from workflow_helpers import REPO, snakemake, tiny_config

PRESETS = REPO / "config" / "presets"
ONCE = {"train_tokenizer": 1, "gather_tokens": 3, "collect": 1, "plots": 1, "summary": 1, "all": 1}
PER_SHARD = {"download": 1, "split": 1, "tokenize": 3}  # data jobs per corpus shard (tokenize: per split)
RUN_KEYS = ("arch", "seed")  # wildcards that make a job per-run


def expected_runs(preset: dict) -> set[tuple]:
    """(arch, seed, grid values in config order) of every run the preset declares."""
    grid = preset["grid"]
    return {
        (arch, seed, *map(float, values))
        for arch in preset["archs"]
        for seed in preset["seeds"]
        for values in itertools.product(*grid.values())
    }


def parse_dry_run(text: str, grid_keys) -> tuple[dict, dict]:
    """({rule: count} from the job-stats table, {rule: [run tuple per job]} from each job's wildcards)."""
    counts, runs, rule = {}, {}, None
    for line in text.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = m.group(1)
            runs.setdefault(rule, [])
        elif (m := re.match(r"^\s+wildcards: (.*)$", line)) and rule:
            wc = dict(part.split("=", 1) for part in m.group(1).split(", "))
            if all(k in wc for k in RUN_KEYS):
                runs[rule].append((wc["arch"], int(wc["seed"]), *(float(wc[k]) for k in grid_keys)))
        elif m := re.match(r"^(\w+)\s+(\d+)$", line.strip()):
            if m.group(1) != "total":
                counts[m.group(1)] = int(m.group(2))
    return counts, {r: v for r, v in runs.items() if v}


def dry_run(tmp_path, *presets: str) -> str:
    proc = snakemake(tmp_path, "--configfile", *(str(PRESETS / p) for p in presets), "-n")
    return proc.stdout + proc.stderr


def load(*presets: str) -> dict:
    """The presets merged as Snakemake merges them (later files win; only top-level keys overlap here)."""
    merged = {}
    for name in presets:
        merged.update(yaml.safe_load((PRESETS / name).read_text()))
    return merged


def expected_timed_runs(preset: dict) -> set[tuple]:
    """The runs a timed evaluation measures: one per architecture x shape (registry.timing_point: every
    training axis at its first value), on the first seed."""
    grid = preset["grid"]
    config = {"grid": grid, "training": preset.get("training", {})}
    first = preset["seeds"][0]
    return {
        (arch, first, *map(float, timing_point(config, dict(zip(grid, values))).values()))
        for arch in preset["archs"]
        for values in itertools.product(*grid.values())
    }


def check_counts(text: str, preset: dict, shards: int = 1) -> dict:
    counts, runs = parse_dry_run(text, list(preset["grid"]))
    expected = expected_runs(preset)
    assert counts["train"] == len(expected)
    # Every per-run rule (train, and each untimed evaluation rule that exists) has one job per run, no
    # more; a timed one (latency, throughput) one job per architecture x shape.
    assert "train" in runs
    for rule, jobs in runs.items():
        want = expected_timed_runs(preset) if rule in EVALUATIONS and EVALUATIONS[rule].timed else expected
        assert counts[rule] == len(want), rule
        assert sorted(jobs) == sorted(want), rule
    for rule, count in ONCE.items():
        assert counts.get(rule) == count, rule
    for rule, count in PER_SHARD.items():
        assert counts.get(rule) == count * shards, rule
    assert counts.get("plot_latency", 1) == 1  # present once when an evaluation rule writes latency.json
    return counts


def test_paper_grid_lists_every_run(tmp_path):
    """Its DAG's build time is a benchmark's target (benchmarks/dag_scale.py), not a timed test's."""
    preset = load("paper-grid.yaml")
    assert len(list(itertools.product(*preset["grid"].values()))) == 72
    assert preset["archs"] == ["retnet", "transformer", "longnet"]
    assert preset["data"]["source"] == "hub" and preset["data"]["hub"]["name"] == "allenai/c4"
    assert preset["training"]["precision"] == "bf16-mixed" and preset["training"]["accelerator"] == "gpu"
    text = dry_run(tmp_path, "paper-grid.yaml")
    counts = check_counts(text, preset, shards=3)  # data.hub.files: 3 of C4's files, listed without the network
    assert counts["train"] == 72 * 3 * len(preset["seeds"]) == 216
    assert counts["split_plan"] == 1  # max_documents over 3 shards: one plan file
    assert not (tmp_path / "results").exists()  # a dry run writes (and downloads) nothing


def test_single_gpu_preset_validates_and_lists_every_run(tmp_path):
    text = dry_run(tmp_path, "single-gpu.yaml")
    assert check_counts(text, load("single-gpu.yaml"))["train"] == 3 * 2 * 3


def test_three_seeds_preset_stacks_over_another_config(tmp_path):
    """`--configfile A three-seeds.yaml`: the later file wins, every run is trained once per seed."""
    base = tiny_config(tmp_path)
    proc = snakemake(tmp_path, "--configfile", str(base), str(PRESETS / "three-seeds.yaml"), "-n")
    preset = {**yaml.safe_load(base.read_text()), **load("three-seeds.yaml")}
    assert check_counts(proc.stdout + proc.stderr, preset)["train"] == 2 * 2 * 3
