"""rule harness: one run's model/ -> lm-evaluation-harness scores (harness.json)."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.evaluation.harness import run_harness  # noqa: E402
from archbench.training.modelcard import add_harness_scores  # noqa: E402

run_harness(
    model_dir=os.path.dirname(snakemake.input.model),
    out_json=snakemake.output[0],
    task_dirs=[os.path.dirname(snakemake.input.tasks[0])],
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.harness_args
)
add_harness_scores(os.path.dirname(snakemake.input.model), snakemake.output[0])  # the card's model-index
