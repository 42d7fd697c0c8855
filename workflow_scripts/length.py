"""rule length: one run's model/ + the test tokens -> loss per position bucket at k x the training length."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.evaluation.length import run_length  # noqa: E402

run_length(
    model_dir=os.path.dirname(snakemake.input.model),
    tokens=snakemake.input.tokens,
    out_json=snakemake.output[0],
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.length_args
)
