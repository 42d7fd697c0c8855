"""rule recall: one run's model/ (trained on data.source mqar) -> recall accuracy per number of pairs."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.evaluation.recall import run_recall  # noqa: E402

run_recall(
    model_dir=os.path.dirname(snakemake.input.model),
    out_json=snakemake.output[0],
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.recall_args
)
