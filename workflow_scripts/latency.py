"""rule latency: one run's model/ -> prefill / per-token decode time and memory vs context (latency.json)."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.evaluation.latency import run_latency  # noqa: E402

run_latency(
    model_dir=os.path.dirname(snakemake.input.model),
    out_json=snakemake.output[0],
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.latency_args
)
