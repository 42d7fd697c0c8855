"""rule <evaluation>: every rule generated from archbench.evaluation.registry runs this one adapter.

A rule generated in a loop cannot name its own entry: Snakemake evaluates the `script:` path when the
job runs, when the loop variable holds the last evaluation. So this adapter looks its entry up by rule
name and calls its function with the run's paths (Evaluation.call_kwargs), its threads and its
arguments (Evaluation.build_args, the rule's params), then the entry's pipeline-only `after` step."""

import os

from archbench.evaluation.registry import get_evaluation
from archbench.locks import one_writer
from archbench.logs import job_logging

one_writer(snakemake)  # noqa: F821 - before the log is opened: one job per evaluation output
job_logging(snakemake)  # stderr -> the rule's log; timestamped records
evaluation = get_evaluation(snakemake.rule)
evaluation.function(
    **evaluation.call_kwargs(dict(snakemake.input.items()), dict(snakemake.output.items())),
    threads=snakemake.threads,
    **snakemake.params.args,
)
if evaluation.after:
    evaluation.after(os.path.dirname(snakemake.input.model), snakemake.output[0])
