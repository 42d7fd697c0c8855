"""rule harness: one run's model/ -> lm-evaluation-harness scores (harness.json)."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.evaluation.harness import run_harness  # noqa: E402

run_harness(
    model_dir=os.path.dirname(snakemake.input.model),
    out_json=snakemake.output[0],
    task_dirs=[os.path.dirname(snakemake.input.tasks[0])],
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.harness_args
)
