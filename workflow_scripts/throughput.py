"""rule throughput: one run's model/ -> decode tokens/s and state memory vs batch size at a fixed context."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.evaluation.throughput import run_throughput  # noqa: E402

run_throughput(
    model_dir=os.path.dirname(snakemake.input.model),
    out_json=snakemake.output[0],
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.throughput_args
)
