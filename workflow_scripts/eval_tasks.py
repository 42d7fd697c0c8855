"""rule eval_tasks: the test split -> the offline lm-eval tasks (.jsonl + .yaml with absolute paths)."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.evaluation.tasks import build_tasks  # noqa: E402

build_tasks(
    test_dir=os.path.dirname(snakemake.input[0]),
    out_dir=os.path.dirname(snakemake.output.yaml[0]),
    seed=snakemake.params.seed,
)
