"""rule eval_tasks: the test split -> the offline lm-eval tasks (.jsonl + .yaml with absolute paths)."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.evaluation.tasks import build_tasks  # noqa: E402

build_tasks(
    test_dir=os.path.dirname(snakemake.input[0]),
    out_dir=os.path.dirname(snakemake.output.yaml[0]),
    seed=snakemake.params.seed,
)
