"""rule throughput: one run's model/ -> decode tokens/s and state memory vs batch size at a fixed context."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from archbench.evaluation.throughput import run_throughput  # noqa: E402

run_throughput(
    model_dir=os.path.dirname(snakemake.input.model),
    out_json=snakemake.output[0],
    threads=snakemake.threads,
    **snakemake.params.args,  # archbench.evaluation.calls.throughput_args
)
