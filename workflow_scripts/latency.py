"""rule latency: one run's model/ -> prefill / per-token decode time and memory vs context (latency.json)."""

import os

from archbench.logs import job_logging

job_logging(snakemake)  # stderr -> the rule's log; timestamped records

from archbench.evaluation.latency import run_latency  # noqa: E402

run_latency(
    model_dir=os.path.dirname(snakemake.input.model),
    out_json=snakemake.output[0],
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.latency_args
)
