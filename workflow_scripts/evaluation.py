"""rule <evaluation>: every rule generated from archbench.evaluation.registry runs this one adapter.

A rule generated in a loop cannot name its own script: Snakemake evaluates the `script:` path when the
job runs, when the loop variable holds the last evaluation. So this adapter looks its entry up by rule
name and runs that entry's own adapter (harness.py, ...) in place, or, for a plugin without one, calls
its function with the run's paths (Evaluation.call_kwargs) and its arguments."""

import os
import runpy

from archbench.evaluation.registry import GENERIC_SCRIPT, get_evaluation
from archbench.locks import one_writer

one_writer(snakemake)  # noqa: F821 - before the log is opened: one job per evaluation output
evaluation = get_evaluation(snakemake.rule)
if evaluation.script != GENERIC_SCRIPT:
    runpy.run_path(os.path.join(os.path.dirname(__file__), evaluation.script), init_globals={"snakemake": snakemake})
else:
    from archbench.logs import job_logging

    job_logging(snakemake)  # stderr -> the rule's log; timestamped records
    evaluation.call()(
        **evaluation.call_kwargs(dict(snakemake.input.items()), dict(snakemake.output.items())),
        threads=snakemake.threads,
        **snakemake.params.args,
    )
