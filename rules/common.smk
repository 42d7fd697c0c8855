# Validation, the grid and path helpers shared by every rule file.
import os
import sys

import pandas as pd
from snakemake.utils import Paramspace, min_version

from archbench.config import check_plain_yaml, grid_axes, grid_points, run_settings, validate_config
from archbench.errors import ConfigError
from archbench.evaluation.registry import timing_point
from archbench.evaluation.tasks import task_yamls
from archbench.hub import push_settings
from archbench.layout import SPLITS, Layout, run_name
from archbench.models.registry import arch_names

min_version("9.0")

ENV = "../envs/archbench.yaml"  # for --sdm conda; see envs/archbench.yaml

try:
    check_plain_yaml(workflow.config_settings.configfiles or [])  # no YTE: a config runs no code
    # the package's schema plus every registered component's fragment (archbench.config.load_schema)
    validate_config(config, overrides=workflow.config_settings.config)  # --config values: read by the schema's types
except ConfigError as err:
    # One readable line for the user, no traceback: this is their input, not our bug.
    sys.exit(f"archbench: invalid config: {err}")

R = config["results"]
L = Layout(R)  # every results path (archbench.layout)
ARCHS = config["archs"]
SEEDS = config["seeds"]

paramspace = Paramspace(pd.DataFrame(grid_points(config)), filename_params="*")
# One folder per grid point (filename_params="*"): learning_rate~{learning_rate}_embed_dim~{embed_dim}_...
POINT = paramspace.wildcard_pattern
RUN = run_name(POINT)


wildcard_constraints:
    arch="|".join(arch_names()),
    split="|".join(SPLITS),
    seed=r"\d+",


def run_dirs(pattern, timed=False):
    """Every architecture x grid point x seed instance of a run path pattern; `timed`: only the runs a
    timed evaluation measures (one per architecture x shape, first seed: TIMED_POINT)."""
    if timed:
        return expand(pattern, arch=ARCHS, point=list(dict.fromkeys(TIMED_POINT.values())), seed=SEEDS[:1])
    return expand(
        pattern,
        arch=ARCHS,
        point=paramspace.instance_patterns,
        seed=SEEDS,
    )


def run_records(timed=(), **patterns):
    """Every expected run as the report reads it: arch, seed, grid point label and values (from the
    config, never parsed back from folder names) and its files, one `name=pattern` each (the names in
    `timed`: the file of the run that was timed for this run's shape)."""
    from archbench.report.collect import run_record

    def path(name, pattern, arch, point, seed):
        if name in timed:
            point, seed = TIMED_POINT[point], SEEDS[0]
        return pattern.format(arch=arch, point=point, seed=seed)

    return [
        run_record(arch, seed, point, values, **{n: path(n, p, arch, point, seed) for n, p in patterns.items()})
        for arch in ARCHS
        for point, values in _POINTS.items()
        for seed in SEEDS
    ]


def reported(pattern, timed=False):
    """Every run's file; with report.partial only those that exist, so that after a `--keep-going` run
    in which some grid points failed the report can still be built (the missing runs are marked)."""
    paths = run_dirs(pattern, timed)
    return [p for p in paths if os.path.exists(p)] if config["report"]["partial"] else paths


def scratch_dir(wildcards):
    """Resumable checkpoints of a run: outside the declared outputs, which Snakemake deletes on failure."""
    return L.scratch_dir(RUN.format(**dict(wildcards.items())))


# Grid point of each instance path, built once: paramspace.instance() per job costs ~3 ms, which
# adds up to seconds of DAG building on the 648-run paper grid.
_POINTS = dict(zip(paramspace.instance_patterns, grid_points(config)))
# Timed evaluations (latency, throughput) measure one run per architecture x shape: each point's timed
# point has the same model axes and the first value of every training axis (evaluation.registry).
_BY_VALUES = {repr(sorted(v.items())): p for p, v in _POINTS.items()}
TIMED_POINT = {p: _BY_VALUES[repr(sorted(timing_point(config, v).items()))] for p, v in _POINTS.items()}


def settings(wildcards):
    """Model + training settings of the run named by the wildcards (plain Python types)."""
    return run_settings(config, _POINTS[POINT.format(**dict(wildcards.items()))])


def eval_inputs(evaluation):
    """Inputs of an evaluation's rule, by name: the run's model and the extra inputs the entry names."""
    files = {
        "tokens": rules.train.input.test,
        "tasks": rules.eval_tasks.output.yaml,
        "task_includes": task_yamls(config["eval"]["include_path"]),  # edit one: the harness reruns
    }
    return {"model": rules.train.output.model, **{name: files[kind] for name, kind in evaluation.inputs.items()}}


# Opt-in publishing (hub.push, rules/publish.smk): every finished run's Hub record, or nothing.
PUSH = push_settings(config)


def push_targets():
    return run_dirs(L.hub_record(run_name())) if PUSH["enabled"] else []
